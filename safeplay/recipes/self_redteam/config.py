"""Self-RedTeam's own setting (its reward table) and the run config that carries it."""

from __future__ import annotations

from dataclasses import dataclass

from safeplay.config import check
from safeplay.engine.config import TrainConfig

REWARD_TABLES = ("general_sum", "general_sum_all_one", "zero_sum")


@dataclass
class SelfRedTeamTrainConfig(TrainConfig):
    """A Self-RedTeam run: every recipe's settings plus the reward table."""

    reward_table: str = "general_sum"
    """Self-RedTeam reward table: general_sum (the code's, default), general_sum_all_one, zero_sum."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.reward_table in REWARD_TABLES, "reward_table",
              f"{self.reward_table!r} is not allowed; choose one of {', '.join(map(repr, REWARD_TABLES))}")
