"""Experience replay: the SSP pool of failure cases and its UCB sampler."""

from safeplay.replay.pool import ExperiencePool, PoolEntry

__all__ = ["ExperiencePool", "PoolEntry"]
