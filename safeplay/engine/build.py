"""Build a run's components (model + role policies, judge, seeds, tactics, evaluation) from its config."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from safeplay.engine.config import TrainConfig
from safeplay.engine.run_dir import eval_dir
from safeplay.engine.trainer import Components
from safeplay.errors import SafeplayError
from safeplay.paths import data_dir
from safeplay.recipes import recipe_class

log = logging.getLogger("safeplay")


def resolve_share(cfg: TrainConfig) -> None:
    """Fill policy.share from the recipe's default role → policy mapping when the config leaves it empty."""
    if not cfg.policy.share:
        cfg.policy.share = dict(recipe_class(cfg.recipe).default_share)


def load_training_seeds(cfg: TrainConfig) -> list:
    """The run's seeds, cleaned and with the attacker's share marked (``seeds.attack_share`` per class).

    From ``seeds.file`` when it is set (every row kept, the batch mix left to the curriculum), else from the data
    directory (or the built-in set). Either way near-duplicates of the evaluation prompts are dropped when the
    data directory holds them: a seed must never be a held-out item."""
    from safeplay.data.seeds import CONTEXTUAL_SOURCES, load_seed_file, load_seeds, prepare_seeds

    root = data_dir()
    exclude: list[str] = []
    if root is not None:
        from safeplay.data.benchmarks import eval_prompt_texts

        exclude = eval_prompt_texts(root)
    exclude += custom_eval_prompts(cfg)
    if cfg.seeds.file:
        seeds = prepare_seeds(
            load_seed_file(Path(cfg.seeds.file)),
            exclude=exclude,
            harmful_share=None,
            attack_share=cfg.seeds.attack_share,
            max_per_class=cfg.seeds.max_per_class,
            seed=cfg.seed,
        )
    else:
        seeds = load_seeds(
            root,
            exclude=exclude,
            attack_share=cfg.seeds.attack_share,
            max_per_class=cfg.seeds.max_per_class,
            seed=cfg.seed,
        )
        # A contextual seed is a long context paragraph and a request: the attacker cannot copy it into a revision
        # within its token budget, so such seeds always go to the defender verbatim.
        seeds = [replace(s, attack=False) if s.source in CONTEXTUAL_SOURCES else s for s in seeds]
    if cfg.seeds.attack_share > 0 and not cfg.game.defender_only and not any(s.attack for s in seeds):
        log.warning("seeds: none is marked for the attacker (too few seeds for seeds.attack_share=%s): no game of "
                    "this run has an attacker turn", cfg.seeds.attack_share)
    log.info(
        "seeds: %d harmful, %d benign (%d marked for the attacker)",
        sum(s.harmful for s in seeds), sum(not s.harmful for s in seeds), sum(s.attack for s in seeds),
    )
    return seeds


def custom_eval_prompts(cfg: TrainConfig) -> list[str]:
    """The prompts of the custom sets (``file:PATH``) in ``eval.benchmarks``: held out like the built-in ones."""
    from safeplay.data.benchmarks import load_benchmark
    from safeplay.data.custom_sets import is_custom

    if not cfg.eval.enabled:
        return []
    return [it.prompt for name in cfg.eval.benchmarks if is_custom(name) for it in load_benchmark(name)]


def load_tactic_texts(cfg: TrainConfig) -> list[str]:
    """The tactic lines the attacker's revisions are conditioned on (``game.tactics``)."""
    if not cfg.game.attacker_tactics or cfg.game.defender_only:
        return []
    if cfg.game.tactics == "frames":
        from safeplay.game.frames import TACTICS

        return [t.line for t in TACTICS]
    root = data_dir()
    if root is None:
        return []
    from safeplay.data.seeds import load_tactics

    tactics = load_tactics(root)[: cfg.game.tactics_top_k]
    return [f"{name}: {definition}" for name, definition, _ in tactics]


def make_eval_fn(cfg: TrainConfig, run_root: Path):
    """Held-out defender evaluation through the evaluation harness (greedy, answer-only for CoT)."""
    if not cfg.eval.enabled:
        return None
    from safeplay.eval.runner import check_benchmarks, evaluate, flat_metrics
    from safeplay.judges.registry import build_judge

    check_benchmarks(cfg.eval.benchmarks)  # a bad name or a malformed custom set fails before the model loads
    judge_holder: dict[str, Any] = {}

    def eval_fn(policies, step: int, stage: str) -> dict[str, float]:
        if "judge" not in judge_holder:
            judge_holder["judge"] = build_judge(cfg.eval.judge, **cfg.eval.judge_options)
        out_dir = eval_dir(run_root, step, stage)
        results = evaluate(
            policies.generator("defender"),
            cfg.eval.benchmarks,
            judge_holder["judge"],
            limit=cfg.eval.limit,
            limits=cfg.eval.limits or None,
            batch_size=cfg.eval.batch_size,
            max_new_tokens=cfg.eval.max_new_tokens,
            cot=cfg.game.cot,
            out_dir=out_dir,
        )
        return flat_metrics(results)

    return eval_fn


def build_components(cfg: TrainConfig, run_root: Path) -> Components:
    from safeplay.judges.registry import build_judge
    from safeplay.models.roles import build_policies
    from safeplay.rewards.diversity import Embedder

    import torch

    resolve_share(cfg)
    roles = recipe_class(cfg.recipe).roles
    eval_fn = make_eval_fn(cfg, run_root)
    torch.manual_seed(cfg.seed)  # LoRA initialisation draws from the global RNG
    policies = build_policies(cfg.model, cfg.policy, roles)
    judge = build_judge(cfg.judge.name, **cfg.judge.options)
    seeds = load_training_seeds(cfg)
    if not seeds:
        raise SafeplayError("no seed prompts: set SAFEPLAY_DATA_DIR or seeds.file")
    warm = keep_warm_start = None
    if cfg.warm_start.enabled:
        from safeplay.engine import warm_cache
        from safeplay.engine.warm_start import make_warm_start

        warm = make_warm_start(cfg, judge, seeds)
        if cfg.warm_start.cache:
            keep_warm_start = lambda run: warm_cache.store(cfg, run.root)  # noqa: E731
    return Components(
        policies=policies,
        judge=judge,
        seeds=seeds,
        tactics=load_tactic_texts(cfg),
        embedder=Embedder(),
        eval_fn=eval_fn,
        warm_start_fn=warm,
        after_warm_start=keep_warm_start,
    )
