"""What a recipe provides to the engine."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from safeplay.game.rollout import Game, Turn
from safeplay.rl.batch import RoleSample


@dataclass
class StepResult:
    """One step's games, the samples to learn from, and recipe-specific metrics."""

    games: list[Game]
    samples: list[RoleSample]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RecipeContext:
    """Everything a recipe plays with (built by the trainer)."""

    cfg: Any
    policies: Any
    judge: Any
    curriculum: Any
    tactics: list[str]
    embedder: Any = None


def step_seed(base: int, step: int, what: str) -> int:
    """A generation seed that depends only on (run seed, step, purpose) — resumed runs replay it exactly."""
    return (base * 1_000_003 + step * 7919 + zlib.crc32(what.encode())) % (2**31 - 1)


def game_kind(game: Game) -> str:
    """The kind of game a sample came from, for ``rl.baseline=class``: seed class and whether it was rewritten."""
    return f"{'harmful' if game.seed_harmful else 'benign'}:{'attacked' if game.attack is not None else 'verbatim'}"


def sample_from(turn: Turn, reward: float, group: object = None, game: Game | None = None, **meta) -> RoleSample:
    """A training sample of ``turn``; ``game`` (optional) labels it with its ``game_kind`` as ``baseline_key``."""
    if game is not None:
        meta.setdefault("baseline_key", game_kind(game))
    comp = turn.completion
    # A sampled turn is scored at its sampling temperature; the generator's own log-probs serve as the behaviour
    # log-probs only when they were taken at that temperature (vLLM reports the raw distribution's).
    temperature = turn.temperature if comp.sampled else comp.temperature
    behaviour = comp.sampled and comp.temperature == temperature
    return RoleSample(
        role=turn.role,
        prompt_ids=list(comp.prompt_ids),
        completion_ids=list(comp.token_ids),
        reward=float(reward),
        group=group,
        meta=meta,
        rollout_logprobs=list(comp.logprobs) if behaviour else None,
        temperature=temperature,
    )


class Recipe:
    """Base class: subclasses set ``roles`` and ``default_share`` and implement ``play``."""

    name = ""
    roles: tuple[str, ...] = ("attacker", "defender")
    default_share: dict[str, str] = {}
    """Role → policy name used when the config's policy.share is empty."""

    def __init__(self, ctx: RecipeContext):
        self.ctx = ctx
        self.cfg = ctx.cfg

    def play(self, step: int) -> StepResult:
        raise NotImplementedError

    def trains(self, step: int) -> Sequence[str]:
        """Roles whose policies are updated after this step (all by default)."""
        return self.roles

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def expand(self, seeds: Sequence[Any], step: int) -> list[Game]:
        """One game per seed, or G per seed when the RL algorithm groups samples (GRPO)."""
        g = self.cfg.rl.group_size
        attack = not self.cfg.game.defender_only
        games = []
        for i, s in enumerate(seeds):
            for _ in range(g):
                game = Game(step=step, seed_text=s.text, seed_harmful=s.harmful, attacked=attack and s.attack)
                game.extra["group"] = f"{step}:{i}"
                games.append(game)
        return games
