"""Arms of one recipe run with the same budget and seeds, evaluated on the same held-out benchmarks.

Each arm is a set of config overrides on top of the recipe + preset. Every (arm, seed) pair trains in its own
run folder ``<out>/<arm>/seed_<s>/`` (resumable: a finished pair is not trained again), its final evaluation is
read from the run's ``eval`` rows, and ``ablation.json`` gathers mean and spread across seeds:

``{"arms": {"<arm>": {"<benchmark>": {"<metric>": mean, "<metric>_std": std, "judge": name}}},
"warm_start": {"<benchmark>": {...}}, "seeds": [...], "budget": {...}, "rl_minutes": {"<arm>": [...]},
"warm_start_minutes": [...]}``. The minutes are read from each run's own metrics (the sum of its RL steps' times;
the warm start's recorded duration), so an ablation resumed or summarised later reports what the runs took, not
how long this invocation waited; evaluations are not included.

**One warm start per seed, shared by the arms.** When the recipe has a warm start, it runs once per seed in
``<out>/warm_start/seed_<s>/`` (the first arm's config, no RL steps), and every arm whose warm-start inputs are
the same (``warm_start_view``) continues from a copy of its step-0 checkpoint. The arms then begin RL from
identical weights, so their difference is the RL phase alone, and the warm start is paid once per seed instead
of once per arm. An arm that changes what the warm start reads (``no-cot`` changes its targets) runs its own.
The defender-only arm shares the self-play warm start, attacker examples included: its attacker is never
played, and the attacker examples use the attacker's own prompt template.
"""

from __future__ import annotations

import copy
import json
import shutil
import statistics
from pathlib import Path
from typing import Sequence

from safeplay.config import to_dict
from safeplay.engine.config import TrainConfig
from safeplay.errors import SafeplayError

ARMS: dict[str, list[str]] = {
    "self-play": [],
    "defender-only": ["game.defender_only=true"],
    "no-cot": ["game.cot=false"],
    "zero-sum": ["reward_table=zero_sum"],
    "no-replay": ["ssp.replay=none"],
    "uniform-replay": ["ssp.replay=uniform"],
    "no-diversity": ["triplay.diversity=false"],
}
ARMS_FOR = {
    "self-redteam": ("self-play", "defender-only", "no-cot", "zero-sum"),
    "ssp": ("self-play", "defender-only", "no-replay", "uniform-replay"),
    "triplay": ("self-play", "defender-only", "no-diversity"),
}
DEFAULT_BENCHMARKS = ["harmbench", "xstest-safe", "wildjailbreak-adv-harmful", "wildjailbreak-adv-benign"]


def check_arms(recipe: str, arms: Sequence[str]) -> None:
    if recipe not in ARMS_FOR:
        raise SafeplayError(f"recipe {recipe!r} is not a recipe; choose one of {', '.join(ARMS_FOR)}")
    allowed = ARMS_FOR[recipe]
    for arm in arms:
        if arm not in allowed:
            raise SafeplayError(f"arm {arm!r} does not apply to recipe {recipe}; choose from {', '.join(allowed)}")
    if len(arms) < 2 or len(set(arms)) != len(arms):
        raise SafeplayError("an ablation needs at least two different arms, e.g. --arms self-play,defender-only")


def _rows(run_root: Path) -> list[dict]:
    path = run_root / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def _finished(run_root: Path) -> bool:
    return any(r.get("kind") == "eval" and r.get("stage") == "end" for r in _rows(run_root))


def rl_minutes(run_root: Path) -> float:
    """Minutes of the run's RL steps, from its metrics (resumed runs keep the rows of the steps before the kill)."""
    return sum(r.get("time/step_s", 0.0) for r in _rows(run_root) if r.get("kind") == "train") / 60


def warm_start_minutes(run_root: Path) -> float:
    """Minutes the run's warm start took (data and SFT), from its ``warm_start`` metrics row."""
    return sum(r.get("time/seconds", 0.0) for r in _rows(run_root) if r.get("kind") == "warm_start") / 60


def stage_eval(run_root: Path, stage: str) -> dict[str, float]:
    """The run's latest evaluation row of ``stage`` (``end``, ``after_warm_start``, …)."""
    rows = [r for r in _rows(run_root) if r.get("kind") == "eval" and r.get("stage") == stage]
    if not rows:
        raise SafeplayError(f"{run_root} has no {stage!r} evaluation row")
    return rows[-1]


def final_eval(run_root: Path) -> dict[str, float]:
    return stage_eval(run_root, "end")


WARM_START_INPUTS = ("seed", "model", "policy", "judge", "seeds", "warm_start", "attacker.max_new_tokens", "eval",
                     "optim.grad_clip", "game.cot", "game.defender_system", "game.template_style",
                     "rl.micro_batch_size", "rl.micro_batch_tokens")
"""The config entries a warm start (and the evaluations before and after it) reads."""


def warm_start_view(cfg: TrainConfig) -> dict:
    """What the warm start of ``cfg`` depends on: two arms with equal views get identical warm-started weights."""
    data = to_dict(cfg)
    view = {}
    for key in WARM_START_INPUTS:
        node = data
        for part in key.split("."):
            node = node[part]
        view[key] = node
    return view


def fork_run(warm: Path, dst: Path, cfg: TrainConfig) -> None:
    """A run folder for ``cfg`` that continues from the warm-start run ``warm`` (its step-0 checkpoint, SFT data,
    and evaluations before and after the warm start), so that resuming it starts RL at step 1."""
    from safeplay.engine.checkpoint import find_checkpoint
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.warm_start import SFT_FILE

    ckpt = find_checkpoint(warm / "checkpoints", 0)
    if ckpt is None:
        raise SafeplayError(f"{warm} has no step-0 checkpoint to continue from")
    tmp = dst.with_name(dst.name + ".forking")
    shutil.rmtree(tmp, ignore_errors=True)
    run = RunDir(tmp)
    shutil.copytree(ckpt, run.checkpoints / ckpt.name)
    (run.checkpoints / "latest").write_text(ckpt.name)
    if (warm / SFT_FILE).is_file():
        shutil.copy2(warm / SFT_FILE, tmp / SFT_FILE)
    if (warm / "evals").is_dir():
        shutil.copytree(warm / "evals", tmp / "evals")
    for row in _rows(warm):
        if row.get("step", 0) == 0 and row.get("stage") != "end":
            run.metrics.append(row)
    run.write_config(to_dict(cfg))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)  # the arm's folder appears whole or not at all


def summarise(per_arm: dict[str, list[dict[str, float]]], judge: str) -> dict:
    arms: dict[str, dict] = {}
    for arm, runs in per_arm.items():
        table: dict[str, dict] = {}
        keys = sorted({k for r in runs for k in r if "/" in k and isinstance(r[k], (int, float))})
        for key in keys:
            bench, metric = key.split("/", 1)
            vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            if not vals:
                continue
            entry = table.setdefault(bench, {"judge": judge})
            entry[metric] = statistics.fmean(vals)
            entry[f"{metric}_std"] = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        arms[arm] = table
    return arms


def run_ablation(
    base: TrainConfig,
    arms: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    train_fn,
    overrides_for,
) -> dict:
    """Train every (arm, seed) with ``train_fn(cfg, run_root)`` (it resumes a folder that holds a checkpoint)
    and gather final evaluations; arms share one warm start per seed where they can (module docstring)."""
    if not seeds:
        raise SafeplayError("an ablation needs at least one seed")
    out.mkdir(parents=True, exist_ok=True)
    per_arm: dict[str, list[dict]] = {a: [] for a in arms}
    minutes: dict[str, list[float]] = {a: [] for a in arms}
    warm_rows: list[dict] = []
    warm_minutes: list[float] = []
    for seed in seeds:
        cfgs = {arm: overrides_for(arm, seed) for arm in arms}
        first = cfgs[arms[0]]
        warm_root = None
        if first.warm_start.enabled:
            warm_root = out / "warm_start" / f"seed_{seed}"
            if not _finished(warm_root):
                warm_cfg = copy.deepcopy(first)
                warm_cfg.steps, warm_cfg.name = 0, f"warm_start-seed{seed}"
                train_fn(warm_cfg, warm_root)
            warm_minutes.append(warm_start_minutes(warm_root))
            warm_rows.append(stage_eval(warm_root, "after_warm_start"))
        for arm in arms:
            cfg = cfgs[arm]
            root = out / arm / f"seed_{seed}"
            if not _finished(root):
                shared = warm_root is not None and warm_start_view(cfg) == warm_start_view(first)
                if shared and not (root / "checkpoints" / "latest").exists():
                    fork_run(warm_root, root, cfg)
                train_fn(cfg, root)
            minutes[arm].append(rl_minutes(root))
            per_arm[arm].append(final_eval(root))
    result = {
        "recipe": base.recipe,
        "arms": summarise(per_arm, base.eval.judge),
        "seeds": list(seeds),
        "budget": {"steps": base.steps, "max_minutes": base.max_minutes, "batch_size": base.batch_size},
        "eval": {"benchmarks": base.eval.benchmarks, "limit": base.eval.limit, "judge": base.eval.judge},
        "rl_minutes": minutes,
    }
    if warm_rows:
        result["warm_start"] = summarise({"warm_start": warm_rows}, base.eval.judge)["warm_start"]
        result["warm_start_minutes"] = warm_minutes
    tmp = out / "ablation.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out / "ablation.json")
    return result
