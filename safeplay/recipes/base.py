"""What a recipe provides to the engine."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from safeplay.engine.config import TrainConfig
from safeplay.game.rollout import Game, Turn
from safeplay.generation.base import ChatPrompt
from safeplay.rl.batch import RoleSample
from safeplay.seeding import derive_seed


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
    return derive_seed(base, step, what)


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


def attacker_samples(games: Sequence[Game], reward_of: Callable[[Game], float | None]) -> list[RoleSample]:
    """One attacker sample per revision: games sharing an attacker turn (``extra["attack_slot"]``) give one sample
    whose reward is the mean of ``reward_of`` over them (None = no reward for that game; a revision with none is
    dropped), grouped by seed (``extra["attack_group"]``) — GRPO compares a seed's revisions with each other."""
    by_turn: dict[int, list[Game]] = {}
    for g in games:
        if g.attack is not None:
            by_turn.setdefault(id(g.attack), []).append(g)
    out = []
    for members in by_turn.values():
        rewards = [r for r in (reward_of(g) for g in members) if r is not None]
        if rewards:
            first = members[0]
            group = first.extra.get("attack_group", first.extra.get("group"))
            out.append(sample_from(first.attack, sum(rewards) / len(rewards), group=group, game=first))
    return out


COMMON_ARMS: dict[str, list[str]] = {
    "self-play": [],
    "defender-only": ["game.defender_only=true"],
}
"""Ablation arms every recipe has (``safeplay ablate``): the recipe as configured, and the same RL budget with
no attacker turns."""


class Recipe:
    """Base class: subclasses set ``name``, ``roles`` and ``default_share`` and implement ``play``.

    What the engine reads from the class besides playing: ``config_class`` (the run's typed config),
    :meth:`config_file` and :meth:`preset_file` (YAML layers), ``ablation_arms``, and the hooks :meth:`preflight`
    (checks before a run starts) and :meth:`warm_start_examples` (supervised examples for the recipe's own roles)."""

    name = ""
    """The recipe's name on the command line and in ``recipe:``."""
    roles: tuple[str, ...] = ("attacker", "defender")
    default_share: dict[str, str] = {}
    """Role → policy name used when the config's policy.share is empty."""
    config_class: type[TrainConfig] = TrainConfig
    """The run's config: ``TrainConfig`` or the recipe's subclass of it (with the recipe's own section)."""
    ablation_arms: dict[str, list[str]] = {}
    """Recipe-specific ablation arms (arm name → config overrides), beside ``COMMON_ARMS``."""

    @classmethod
    def folder(cls) -> Path:
        """The folder of the recipe's code, YAML and presets."""
        return Path(inspect.getfile(cls)).parent

    @classmethod
    def config_file(cls) -> Path | None:
        """The recipe's default settings (``recipe.yaml`` beside its code), if it has one."""
        path = cls.folder() / "recipe.yaml"
        return path if path.is_file() else None

    @classmethod
    def preset_file(cls, preset: str) -> Path | None:
        """The recipe's part of a shared preset (``presets/<preset>.yaml`` beside its code), if any."""
        path = cls.folder() / "presets" / f"{preset}.yaml"
        return path if path.is_file() else None

    @classmethod
    def arms(cls) -> dict[str, list[str]]:
        """Every ablation arm of the recipe: the common ones and its own."""
        return {**COMMON_ARMS, **cls.ablation_arms}

    @classmethod
    def preflight(cls, cfg: Any) -> None:
        """Check what the config's types cannot (files, model specs, judges) before anything is loaded; raise
        ``SafeplayError`` with one line."""

    @classmethod
    def warm_start_examples(cls, cfg: Any) -> list[tuple[str, ChatPrompt, str]]:
        """Supervised (role, prompt, target) examples the warm start adds for roles the engine does not build
        data for itself (it builds the attacker's and the defender's)."""
        return []

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

    def expand(self, seeds: Sequence[Any], step: int, attacked: Callable[[Any], bool] | None = None) -> list[Game]:
        """The step's games. ``attacked(seed)`` says which seeds the attacker rewrites (default: the seed's own
        mark; none in a defender-only run).

        With one sample per prompt (REINFORCE++: ``rl.group_size`` 1) a seed is one game. With groups (G =
        ``rl.group_size`` ≥ 2) every group compares answers to *one* prompt: a verbatim seed is answered G times
        (``extra["group"]``, the defender's group); an attacked seed gets ``rl.attack_group_size`` revisions (the
        attacker's group, ``extra["attack_group"]``), each answered G times (one defender group per revision,
        ``extra["attack_slot"]``: the games that share one attacker turn) — so an attacked seed costs
        attack_group_size × G games."""
        rl = self.cfg.rl
        g_def = rl.group_size
        g_att = rl.attack_group_size or g_def
        mark = attacked or (lambda s: s.attack)
        games = []
        for i, s in enumerate(seeds):
            is_attacked = not self.cfg.game.defender_only and bool(mark(s))
            for a in range(g_att if is_attacked else 1):
                slot = f"{step}:{i}:{a}" if is_attacked else f"{step}:{i}"
                for _ in range(g_def):
                    game = Game(step=step, seed_text=s.text, seed_harmful=s.harmful, marked_for_attack=is_attacked)
                    game.extra["group"] = slot
                    if is_attacked:
                        game.extra["attack_slot"] = slot
                        game.extra["attack_group"] = f"{step}:{i}"
                    games.append(game)
        return games
