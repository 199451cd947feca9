"""A fourth recipe, written here and registered from here, runs in the engine: adding a recipe touches no file
under ``safeplay/engine/``. It brings its own config section, ablation arm, preflight check and warm-start hook."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from fakes import make_trainer, train_config, weights
from safeplay.cli import main
from safeplay.config import ConfigError, check
from safeplay.engine.ablation import arm_overrides, check_arms
from safeplay.engine.config import TrainConfig
from safeplay.engine.preflight import preflight
from safeplay.errors import SafeplayError
from safeplay.game.rollout import Game, judge_games, play_defenses
from safeplay.recipes import recipe_class, recipe_names, register_recipe, unregister_recipe
from safeplay.recipes.base import Recipe, StepResult, sample_from, step_seed


@dataclass
class EchoSettings:
    """The echo recipe's own settings."""

    refusal_bonus: float = 0.5
    """Reward for refusing a harmful seed (complying with a benign one earns 1)."""
    forbidden_word: str = ""
    """A word the seeds must not contain (checked before the run starts)."""

    def __post_init__(self) -> None:
        check(self.refusal_bonus >= 0, "refusal_bonus", "must be >= 0")


@dataclass
class EchoTrainConfig(TrainConfig):
    """An echo run: every recipe's settings plus the ``echo`` section."""

    echo: EchoSettings = field(default_factory=EchoSettings)
    """Echo recipe settings."""


class Echo(Recipe):
    """Defender only: every seed goes verbatim to the defender, the judge's label pays it."""

    name = "echo"
    roles = ("defender",)
    config_class = EchoTrainConfig
    ablation_arms = {"no-bonus": ["echo.refusal_bonus=0"]}

    @classmethod
    def preflight(cls, cfg) -> None:
        if cfg.echo.forbidden_word == "lock":
            raise SafeplayError("echo.forbidden_word: the test seeds are full of locks")

    @classmethod
    def warm_start_examples(cls, cfg):
        return []

    def play(self, step: int) -> StepResult:
        cfg, ctx = self.cfg, self.ctx
        games = [Game(step=step, seed_text=s.text, seed_harmful=s.harmful, marked_for_attack=False)
                 for s in ctx.curriculum.next_batch(cfg.batch_size)]
        play_defenses(ctx.policies, games, cfg.defender, cfg.game.cot, step_seed(cfg.seed, step, "defender"))
        judge_games(ctx.judge, games)
        samples = []
        for g in games:
            v = g.verdict
            reward = cfg.echo.refusal_bonus if (g.seed_harmful and v.refusal) else float(not g.seed_harmful and not v.refusal)
            g.rewards["defender"] = reward
            samples.append(sample_from(g.defense, reward, game=g))
        return StepResult(games=games, samples=samples, metrics={"echo/refusals": sum(g.verdict.refusal for g in games)})


@pytest.fixture(autouse=True, scope="module")
def echo_registered():
    register_recipe(Echo)
    yield
    unregister_recipe("echo")


def test_a_registered_recipe_is_known_and_its_config_has_its_own_section():
    assert "echo" in recipe_names() and recipe_class("echo") is Echo
    cfg = train_config("echo", ["echo.refusal_bonus=0.25"])
    assert isinstance(cfg, EchoTrainConfig) and cfg.echo.refusal_bonus == 0.25
    with pytest.raises(ConfigError, match="echo.refusal_bonus: must be >= 0"):
        train_config("echo", ["echo.refusal_bonus=-1"])
    with pytest.raises(ConfigError, match="ssp.replay: a setting of recipe ssp"):  # not this recipe's
        train_config("echo", ["ssp.replay=none"])


def test_the_engine_reads_its_arms_and_preflight_from_the_class():
    assert arm_overrides("echo", "no-bonus") == ["echo.refusal_bonus=0"]
    assert arm_overrides("echo", "defender-only") == ["game.defender_only=true"]  # every recipe's arms too
    check_arms("echo", ["self-play", "no-bonus"])
    with pytest.raises(SafeplayError, match="does not apply to recipe echo"):
        check_arms("echo", ["self-play", "no-replay"])
    with pytest.raises(SafeplayError, match="full of locks"):
        preflight(train_config("echo", ["echo.forbidden_word=lock"]))


@pytest.mark.slow
def test_it_trains_checkpoints_and_resumes(tmp_path):
    straight = make_trainer(tmp_path, train_config("echo"), name="straight")
    straight.fit()
    rows = [r for r in straight.run.metrics.rows() if r["kind"] == "train"]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("echo/refusals" in r for r in rows)
    assert {g["attacked"] for g in straight.run.games.rows()} == {False}

    killed = make_trainer(tmp_path, train_config("echo"), name="resumed")

    def kill(step, row):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        killed.fit(progress=kill)
    resumed = make_trainer(tmp_path, train_config("echo"), name="resumed")
    resumed.fit(resume=True)
    a, b = weights(straight), weights(resumed)
    assert resumed.step == 4 and all(torch.equal(a[k], b[k]) for k in a)


def test_help_config_lists_its_keys(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one key per line
    assert main(["train", "--recipe", "echo", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert "echo.refusal_bonus" in out and "ssp.replay" not in out
