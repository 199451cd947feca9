"""The game loop every recipe runs: play → reward → update per policy → log → evaluate → checkpoint."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from safeplay.config import to_dict
from safeplay.distributed.local import LocalExecutor
from safeplay.distributed.shards import ShardedJudge, ShardedPolicies
from safeplay.engine.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from safeplay.engine.config import TrainConfig
from safeplay.engine.curriculum import Curriculum
from safeplay.engine.game_metrics import attacker_diversity, game_metrics
from safeplay.engine.run_dir import RunDir
from safeplay.errors import SafeplayError
from safeplay.recipes import recipe_class
from safeplay.recipes.base import RecipeContext, StepResult
from safeplay.rl.update import PolicyUpdater

log = logging.getLogger("safeplay")


@dataclass
class Components:
    """What a run plays with. Built from the config by ``build_components``; tests inject their own."""

    policies: Any
    judge: Any
    seeds: list
    tactics: list[str]
    embedder: Any = None
    eval_fn: Callable[[Any, int, str], dict] | None = None
    """``eval_fn(policies, step, stage) -> flat metrics``; None disables held-out evaluation."""
    warm_start_fn: Callable[[Any, RunDir], dict] | None = None
    """``warm_start_fn(policies, run) -> metrics``; None skips the warm start."""
    executor: Any = None
    """Where rollout shards and judge chunks run (e.g. a ``RayExecutor``); None = in this process. Whoever builds
    it closes it."""
    after_warm_start: Callable[[RunDir], None] | None = None
    """Called once the warm start's step-0 checkpoint is written (e.g. to keep it for reuse)."""


class Trainer:
    def __init__(self, cfg: TrainConfig, run: RunDir, components: Components):
        self.cfg, self.run, self.c = cfg, run, components
        self.policies = components.policies
        self.curriculum = Curriculum(components.seeds, cfg.seeds.harmful_share, cfg.seed)
        # Recipes play through sharded views: the same shards and seeds whether they run here or on Ray actors.
        self.executor = components.executor or LocalExecutor(self.policies, components.judge)
        play_policies = ShardedPolicies(self.policies, self.executor, cfg.rollout.shard_size)
        play_judge = (
            ShardedJudge(components.judge, self.executor, cfg.rollout.judge_chunk) if components.judge is not None else None
        )
        ctx = RecipeContext(cfg, play_policies, play_judge, self.curriculum, components.tactics, components.embedder)
        self.recipe = recipe_class(cfg.recipe)(ctx)
        missing = [r for r in self.recipe.roles if r not in self.policies.roles]
        if missing:
            raise SafeplayError(f"recipe {cfg.recipe} needs roles {missing} that the policies do not hold")
        self.updaters: dict[str, PolicyUpdater] = {}
        for role in self.recipe.roles:
            name = self.policies.policy_name(role)
            if name not in self.updaters:
                # Each schedule spans the steps its policy trains (TriPlay trains one role per phase), not all steps.
                roles = {r for r in self.recipe.roles if self.policies.policy_name(r) == name}
                steps = sum(1 for s in range(1, cfg.steps + 1) if roles & set(self.recipe.trains(s)))
                total_updates = max(1, steps * cfg.rl.minibatches)
                self.updaters[name] = PolicyUpdater(self.policies, role, cfg.rl, cfg.optim, total_updates)
        self.step = 0
        self.warm_started = False
        self.judge_failures = 0
        self.skipped_steps = 0
        self._last_eval: tuple[int, str, dict] | None = None
        """(step, stage, metrics) of this process's latest held-out evaluation."""
        self.elapsed = 0.0
        self._aux_data: list | None = None

    # -- state ----------------------------------------------------------------------------------------

    def trainer_state(self) -> dict:
        return {
            "curriculum": self.curriculum.state_dict(),
            "recipe": self.recipe.state_dict(),
            "warm_started": self.warm_started,
            "skipped_steps": self.skipped_steps,
            "elapsed": self.elapsed,
        }

    def checkpoint(self) -> Path:
        path = save_checkpoint(
            self.run.checkpoints, self.step, self.policies, self.updaters, self.trainer_state(), self.cfg.keep_checkpoints
        )
        log.info("checkpoint %s", path.name)
        return path

    def resume(self, step: int | None = None) -> bool:
        path = find_checkpoint(self.run.checkpoints, step)
        if path is None:
            return False
        state = load_checkpoint(path, self.policies, self.updaters)
        self.step = state["step"]
        self.curriculum.load_state_dict(state["curriculum"])
        self.recipe.load_state_dict(state["recipe"])
        self.warm_started = state["warm_started"]
        self.skipped_steps = state.get("skipped_steps", 0)
        self.elapsed = state.get("elapsed", 0.0)
        dropped = self.run.metrics.truncate_after(self.step) + self.run.games.truncate_after(self.step)
        log.info("resumed from %s (step %d; %d log rows after it dropped)", path.name, self.step, dropped)
        return True

    @property
    def needs_reference(self) -> bool:
        """Whether the update reads a reference policy (a KL term, or DPO's π_ref)."""
        return self.cfg.rl.kl_beta > 0 or self.cfg.rl.algorithm == "online_dpo"

    # -- evaluation -----------------------------------------------------------------------------------

    def evaluate(self, stage: str) -> dict[str, float]:
        if self.c.eval_fn is None:
            return {}
        last = self._last_eval
        if stage == "end" and last is not None and last[0] == self.step:
            # No update since that evaluation (e.g. steps=0 after a warm start): the same weights, not re-scored.
            row = {"step": self.step, "kind": "eval", "stage": stage, "eval_seconds": 0.0, "same_as_stage": last[1],
                   **last[2]}
            self.run.log_metrics(row)
            return last[2]
        t0 = time.time()
        metrics = self.c.eval_fn(self.policies, self.step, stage)
        row = {"step": self.step, "kind": "eval", "stage": stage, "eval_seconds": time.time() - t0, **metrics}
        self.run.log_metrics(row)
        self._last_eval = (self.step, stage, metrics)
        return metrics

    # -- one step -------------------------------------------------------------------------------------

    def play_step(self, step: int) -> StepResult | None:
        try:
            result = self.recipe.play(step)
        except SafeplayError:
            raise
        except Exception as e:  # a judge that times out or answers garbage must not kill the run
            self.judge_failures += 1
            self.skipped_steps += 1
            log.warning("step %d skipped: %s: %s", step, type(e).__name__, e)
            self.run.log_metrics({"step": step, "kind": "skip", "error": f"{type(e).__name__}: {e}"})
            if self.judge_failures >= self.cfg.judge.max_failures:
                raise SafeplayError(
                    f"{self.judge_failures} consecutive steps failed (last: {type(e).__name__}: {e}); "
                    f"the run stopped at step {step - 1}; resume with --resume once the cause is fixed"
                ) from e
            return None
        self.judge_failures = 0
        return result

    def aux_sft_batch(self, step: int, roles: list[str]) -> list:
        """Auxiliary SFT examples for a policy playing ``roles`` (§1.7): a seeded draw from the warm start's
        defender data, the same on a resumed run."""
        rl = self.cfg.rl
        if rl.aux_sft_coef <= 0 or "defender" not in roles:
            return []
        if self._aux_data is None:
            from safeplay.engine.warm_start import SFT_FILE, load_sft_samples

            self._aux_data = load_sft_samples(self.run.root / SFT_FILE)
        rng = random.Random(f"{self.cfg.seed}:aux-sft:{step}")
        return rng.sample(self._aux_data, min(rl.aux_sft_batch, len(self._aux_data)))

    def update(self, step: int, result: StepResult) -> dict[str, float]:
        stats: dict[str, float] = {}
        training = set(self.recipe.trains(step))
        for name, updater in self.updaters.items():
            roles = [r for r in self.recipe.roles if self.policies.policy_name(r) == name and r in training]
            samples = [s for s in result.samples if s.role in roles]
            if not samples:
                continue
            for k, v in updater.step(samples, self.aux_sft_batch(step, roles)).items():
                stats[f"update/{name}/{k}"] = v
        return stats

    def train_step(self, step: int) -> dict[str, float] | None:
        t0 = time.time()
        before = self.executor.stats()
        result = self.play_step(step)
        if result is None:
            return None
        t_play = time.time() - t0
        rollout = {k: v - before.get(k, 0.0) for k, v in self.executor.stats().items()}  # this step's shards
        stats = self.update(step, result)
        if stats:
            self.executor.publish(self.policies)  # rollout workers take the new weights before the next shard
        row: dict[str, Any] = {"step": step, "kind": "train"}
        row.update(game_metrics(result.games))
        if self.c.embedder is not None and self.cfg.log.diversity_every and step % self.cfg.log.diversity_every == 0:
            row.update(attacker_diversity(result.games, self.c.embedder))
        row.update(result.metrics)
        row.update(stats)
        row.update(rollout)
        row["samples"] = len(result.samples)
        row["time/play_s"] = t_play
        row["time/step_s"] = time.time() - t0
        self.run.log_metrics(row)
        if self.cfg.log.log_games:
            for g in result.games:
                self.run.games.append(g.record())
        return row

    # -- the run --------------------------------------------------------------------------------------

    def fit(self, resume: bool = False, progress: Callable[[int, dict | None], None] | None = None) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        if resume and self.resume():
            pass
        else:
            self.run.write_config(to_dict(cfg))
            self.evaluate("start")
        if not self.warm_started and self.c.warm_start_fn is not None:
            metrics = self.c.warm_start_fn(self.policies, self.run)
            self.run.log_metrics({"step": 0, "kind": "warm_start", **metrics})
            self.warm_started = True
            if cfg.rl.kl_reference == "initial" and self.needs_reference:
                self.policies.freeze_reference()  # RL's KL anchor: the warm-started weights (saved in checkpoints)
            self.evaluate("after_warm_start")
            self.checkpoint()
            if self.c.after_warm_start is not None:
                self.c.after_warm_start(self.run)
        self.warm_started = True
        if (self.step == 0 and self.c.warm_start_fn is not None and cfg.rl.kl_reference == "initial"
                and self.needs_reference and not self.policies.frozen_reference_names()):
            # Resumed at step 0 from a checkpoint written without a reference: these weights are RL's start.
            self.policies.freeze_reference()
        self.executor.publish(self.policies)  # fresh, resumed or warm-started weights
        started = time.time() - self.elapsed
        while self.step < cfg.steps:
            if cfg.max_minutes is not None and (time.time() - started) / 60 >= cfg.max_minutes:
                log.info("time budget of %.1f min reached at step %d", cfg.max_minutes, self.step)
                break
            self.step += 1
            row = self.train_step(self.step)
            self.elapsed = time.time() - started
            if progress:
                progress(self.step, row)
            if cfg.eval.enabled and cfg.eval.every and self.step % cfg.eval.every == 0 and self.step < cfg.steps:
                self.evaluate("periodic")
            if self.step % cfg.checkpoint_every == 0:
                self.checkpoint()
        self.evaluate("end")
        if self.step % cfg.checkpoint_every != 0:  # the loop already saved this step otherwise
            self.checkpoint()
        self.run.close()
