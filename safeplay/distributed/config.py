"""The ``rollout`` section of the training config: how a step's generation and judging are cut and where they run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from safeplay.config import check
from safeplay.generation.vllm import VLLMConfig


@dataclass
class RolloutConfig:
    """Sharding and placement of rollouts and judge calls (the same shards and seeds in every backend)."""

    shard_size: int = 64
    """Prompts per generation shard. Each generation call of a step (attacker turns, defender turns, …) is cut
    into shards of this size, each sampled with its own seed derived from the call's seed and the shard index,
    so a run gives the same games whether its shards run here or on Ray workers. A single-process run generates
    one shard per batch, so this is also its generation batch: 64 keeps every CPU preset's calls in one batch
    (the fast decoder is about twice as fast per token at batch 64 as at 16); lower it to spread a step over
    more Ray workers."""
    judge_chunk: int = 64
    """Items per judge call; a step's judging is cut into chunks of this size (one judge actor call each)."""
    workers: int = 2
    """Ray rollout actors (with ``--distributed ray``); ignored in a single-process run."""
    worker_threads: int = 1
    """torch CPU threads of each rollout actor. On a small machine, actors × threads should not exceed its cores."""
    worker_gpus: float = 0.0
    """GPUs reserved by each rollout actor (0 on CPU; 1 puts one actor per GPU; fractions share a GPU)."""
    judge_workers: int = 1
    """Ray judge actors serving verdicts in batches (with ``--distributed ray``)."""
    judge_gpus: float = 0.0
    """GPUs reserved by each judge actor (a local LLM judge on GPU; 0 for guard-mini or an HTTP judge)."""
    max_restarts: int = 3
    """Times Ray restarts a dead actor; the shard it was running is re-run once on the restarted actor."""
    restart_timeout_s: float = 900.0
    """How long the driver waits for a dead actor to come back (it rebuilds its model: minutes for a 7-8B one)."""
    generator: Literal["policy", "vllm"] = "policy"
    """Rollout generation backend: the policies' own generator (``policy.generator``), or a vLLM engine with the
    trained weights synced after each update (GPU only, ``safeplay[vllm]``)."""
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    """vLLM engine settings (used when generator is vllm)."""

    def __post_init__(self) -> None:
        check(self.shard_size >= 1, "shard_size", "must be >= 1")
        check(self.judge_chunk >= 1, "judge_chunk", "must be >= 1")
        check(self.workers >= 1, "workers", "must be >= 1")
        check(self.worker_threads >= 1, "worker_threads", "must be >= 1")
        check(self.worker_gpus >= 0, "worker_gpus", "must be >= 0")
        check(self.judge_workers >= 1, "judge_workers", "must be >= 1")
        check(self.judge_gpus >= 0, "judge_gpus", "must be >= 0")
        check(self.max_restarts >= 0, "max_restarts", "must be >= 0")
        check(self.restart_timeout_s > 0, "restart_timeout_s", "must be > 0")
        check(self.generator in ("policy", "vllm"), "generator", f"{self.generator!r} is not allowed; choose policy or vllm")
