"""Does SSP's reflective experience replay help? The same SSP run with UCB replay and with no replay.

Both arms share the recipe, preset, seed, overrides and step budget; only ``ssp.replay`` differs (``ucb`` vs
``none``; with ``none`` the replay slots go to fresh attacks, so the defender plays as many games per step). The
arms run through ``safeplay ablate``'s engine (arms ``self-play`` = UCB replay and ``no-replay``): one warm start,
shared, then each arm's RL in ``<out>/<arm>/seed_<s>/``, evaluated on the held-out benchmarks of the preset
(``eval.benchmarks``); the table shows each benchmark's ASR (lower is better) and refusal rate after training,
with the difference ucb − none. A finished arm is not trained again (re-running only re-prints the table).

    python benchmarks/ssp_replay.py [--preset cpu-demo] [--steps N] [--max-minutes M] [--seed S]
                                    [--set KEY=VALUE ...] [--out DIR] [--json results.json]

One seed is a single draw: on the small presets the difference is noisy; repeat with other ``--seed`` values
(or use ``safeplay ablate --recipe ssp --arms self-play,no-replay --seeds ...``) before drawing conclusions.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

ARMS = {"ucb": "self-play", "none": "no-replay"}
"""This benchmark's arm → the ablation arm that runs it (``SafetySelfPlay.arms()``)."""
METRICS = ("asr", "refusal_rate")


def train_arms(args: argparse.Namespace, root: Path) -> dict[str, Path]:
    from safeplay.engine.ablation import arm_overrides, run_ablation
    from safeplay.engine.progress import run_with_progress
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import resolve_config

    common = [*args.overrides]
    if args.steps is not None:
        common.append(f"steps={args.steps}")
    if args.max_minutes is not None:
        common.append(f"max_minutes={args.max_minutes}")

    def overrides_for(arm: str, seed: int):
        cfg = resolve_config("ssp", args.preset, None, common + arm_overrides("ssp", arm) + [f"seed={seed}"])
        cfg.name = f"ssp-replay-{arm}"
        return cfg

    def train(cfg, run_root: Path) -> None:
        t0 = time.time()
        run_with_progress(cfg, RunDir(run_root), resume=(run_root / "checkpoints" / "latest").exists(), quiet=args.quiet)
        print(f"[{cfg.name}] {time.time() - t0:.0f} s in {run_root}")

    base = overrides_for("self-play", args.seed)
    run_ablation(base, list(ARMS.values()), [args.seed], root, train, overrides_for)
    return {arm: root / name / f"seed_{args.seed}" for arm, name in ARMS.items()}


def read_rows(run_root: Path) -> list[dict]:
    lines = (run_root / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def summary(run_root: Path) -> dict:
    from safeplay.engine.ablation import rl_minutes

    rows = read_rows(run_root)
    evals = [r for r in rows if r.get("kind") == "eval"]
    train = [r for r in rows if r.get("kind") == "train"]
    before = next((r for r in reversed(evals) if r.get("stage") in ("after_warm_start", "start")), {})
    end = next((r for r in reversed(evals) if r.get("stage") == "end"), {})
    replayed = [r["ssp/replay_still_failing"] for r in train if r.get("ssp/replay_still_failing") is not None]
    return {
        "steps": max((r["step"] for r in train), default=0),
        "before": {k: v for k, v in before.items() if k.split("/")[-1] in METRICS},
        "end": {k: v for k, v in end.items() if k.split("/")[-1] in METRICS},
        "pool_size": train[-1].get("ssp/pool_size") if train else None,
        "replays": train[-1].get("ssp/pool_total_visits") if train else None,
        "replay_still_failing_mean": sum(replayed) / len(replayed) if replayed else None,
        "train_minutes": rl_minutes(run_root),
    }


def fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def print_table(results: dict[str, dict]) -> None:
    ucb, none = results["ucb"], results["none"]
    keys = sorted(set(ucb["end"]) | set(none["end"]))
    print(f"\n{'held-out metric (end of training)':44} {'before':>8} {'ucb':>8} {'none':>8} {'ucb−none':>9}")
    for k in keys:
        a, b = ucb["end"].get(k), none["end"].get(k)
        before = ucb["before"].get(k)
        diff = a - b if a is not None and b is not None else None
        print(f"{k:44} {fmt(before):>8} {fmt(a):>8} {fmt(b):>8} {fmt(diff):>9}")
    for arm in ("ucb", "none"):
        r = results[arm]
        print(f"[{arm}] steps {r['steps']}, {r['train_minutes']:.1f} min of RL, pool size {r['pool_size']}, "
              f"replays {r['replays']}, replayed entries still failing {fmt(r['replay_still_failing_mean'])}")
    if ucb["steps"] != none["steps"]:
        print("note: the arms ran different numbers of steps (time budget); compare with --steps for equal budgets")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-demo", help="cpu-smoke, cpu-demo, gpu-8b or gpu-8b-llama (default cpu-demo)")
    p.add_argument("--steps", type=int, default=None, help="RL steps per arm (default: the preset's)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time cap of each arm's RL")
    p.add_argument("--seed", type=int, default=8888, help="seed of both arms")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to both arms (repeatable)")
    p.add_argument("--out", default=None, help="folder of the two runs (default runs/ssp-replay-<time>)")
    p.add_argument("--json", default=None, help="also write the summary as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if any(o.split("=", 1)[0].strip() == "ssp.replay" for o in args.overrides):
        p.error("ssp.replay is what the benchmark varies; do not --set it")
    root = Path(args.out) if args.out else Path("runs") / f"ssp-replay-{time.strftime('%Y%m%d-%H%M%S')}"
    results = {arm: summary(path) for arm, path in train_arms(args, root).items()}
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "seed": args.seed, "overrides": args.overrides,
                                               "arms": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
