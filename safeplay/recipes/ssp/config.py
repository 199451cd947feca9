"""Safety Self-Play's own settings (the ``ssp:`` section of its YAML) and the run config that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from safeplay.config import check
from safeplay.engine.config import TrainConfig


@dataclass
class SSPConfig:
    """Safety Self-Play specifics (papers.md §2)."""

    replay: Literal["ucb", "uniform", "none"] = "ucb"
    """Reflective experience replay mode (ablation: uniform, none)."""
    replay_share: float = 0.25
    """Share of each defender batch drawn from the experience pool."""
    pool_cap: int = 512
    """Maximum entries in the pool."""
    insert_threshold: float = 0.5
    """A game enters the pool when the defender's reward is below this."""
    ucb_c: float = 0.5
    """Exploration constant c of the UCB priority (1 − mean reward) + c·sqrt(ln N / (n + 1))."""
    evict_success_threshold: float = 0.75
    """Entries whose mean defender reward rises above this (after min_visits) are no longer failures: removed."""
    min_visits: int = 2
    """Visits before an entry can be removed as solved."""
    benign_share: float = 0.25
    """Share of benign seeds sent verbatim to the defender (guards against over-refusal; 0 = paper-pure)."""

    def __post_init__(self) -> None:
        check(0 <= self.replay_share <= 1, "replay_share", "must be in [0, 1]")
        check(0 <= self.benign_share <= 1, "benign_share", "must be in [0, 1]")
        check(self.pool_cap >= 1, "pool_cap", "must be >= 1")
        check(self.ucb_c >= 0, "ucb_c", "must be >= 0")
        check(self.min_visits >= 0, "min_visits", "must be >= 0")


@dataclass
class SSPTrainConfig(TrainConfig):
    """A Safety Self-Play run: every recipe's settings plus the ``ssp`` section."""

    ssp: SSPConfig = field(default_factory=SSPConfig)
    """SSP recipe settings."""
