"""``safeplay ablate``: arms of one recipe with equal budgets and seeds, evaluated side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from safeplay.recipes import recipe_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="compare arms of a recipe (e.g. self-play vs defender-only)", description=__doc__)
    p.add_argument("--recipe", default="self-redteam",
                   help=f"which recipe: {', '.join(recipe_names())} (default self-redteam)")
    p.add_argument("--preset", default="cpu-demo", help="cpu-smoke, cpu-demo (default), gpu-8b or gpu-8b-llama")
    p.add_argument("--arms", default="self-play,defender-only",
                   help="comma-separated arms: self-play and defender-only (every recipe) and the recipe's own "
                   "(its Recipe.ablation_arms; a wrong name lists them)")
    p.add_argument("--seeds", type=int, default=1, help="runs per arm (seeds base, base+1, …)")
    p.add_argument("--benchmarks", default=None, help="evaluation benchmarks (default: HarmBench, XSTest-safe, WildJailbreak adversarial harmful/benign)")
    p.add_argument("--limit", type=int, default=None, help="fixed subset size per benchmark (default: the preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key in every arm (repeatable; see safeplay train --help-config)")
    p.add_argument("--out", default="runs/ablation", help="ablation folder (default: runs/ablation)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from rich.console import Console
    from rich.table import Table

    from safeplay.engine.ablation import DEFAULT_BENCHMARKS, arm_overrides, check_arms, run_ablation
    from safeplay.engine.progress import run_with_progress
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import resolve_config

    from safeplay.engine.preflight import preflight
    from safeplay.errors import SafeplayError

    # Every arm's config is built and checked before anything trains or a folder is made.
    if args.seeds < 1:
        raise SafeplayError(f"--seeds must be >= 1 (runs per arm), got {args.seeds}")
    if args.limit is not None and args.limit < 1:
        raise SafeplayError(f"--limit must be >= 1, got {args.limit}")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    check_arms(args.recipe, arms)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SafeplayError(f"--out {out} is a file, not a folder")
    benches = args.benchmarks or ",".join(DEFAULT_BENCHMARKS)
    common = list(args.overrides) + [f"eval.benchmarks={benches}"]
    if args.limit is not None:
        common.append(f"eval.limit={args.limit}")
    base = resolve_config(args.recipe, args.preset, overrides=common)
    seeds = [base.seed + i for i in range(args.seeds)]

    def overrides_for(arm: str, seed: int):
        cfg = resolve_config(args.recipe, args.preset, overrides=common + arm_overrides(args.recipe, arm) + [f"seed={seed}"])
        cfg.name = f"{arm}-seed{seed}"
        return cfg

    for arm in arms:
        preflight(overrides_for(arm, seeds[0]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")

    def train(cfg, root: Path) -> None:
        run_dir = RunDir(root)
        resume = (root / "checkpoints" / "latest").exists()
        run_with_progress(cfg, run_dir, resume=resume)

    result = run_ablation(base, arms, seeds, Path(args.out), train, overrides_for)
    table = Table(title=f"{args.recipe} ablation — judge {base.eval.judge}, limit {base.eval.limit}, seeds {seeds}")
    table.add_column("arm")
    columns = [
        ("harmbench", "refusal_rate"), ("xstest-safe", "refusal_rate"),
        ("wildjailbreak-adv-harmful", "refusal_rate"), ("wildjailbreak-adv-benign", "refusal_rate"),
        ("wildjailbreak-adv-harmful", "keyword_hack_rate"), ("harmbench", "asr"),
    ]
    for bench, metric in columns:
        table.add_column(f"{bench}\n{metric}")
    table.add_column("minutes\n(warm start / RL)")

    def cells(benches_: dict) -> list[str]:
        out = []
        for bench, metric in columns:
            entry = benches_.get(bench, {})
            v, s = entry.get(metric), entry.get(f"{metric}_std")
            out.append("—" if v is None else (f"{v:.2f} ± {s:.2f}" if len(seeds) > 1 else f"{v:.2f}"))
        return out

    if "warm_start" in result:
        minutes = result["warm_start_minutes"]
        table.add_row("(after the shared warm start)", *cells(result["warm_start"]), f"{sum(minutes) / len(minutes):.1f}")
    for arm, benches_ in result["arms"].items():
        spent = result["rl_minutes"][arm]
        table.add_row(arm, *cells(benches_), f"{sum(spent) / len(spent):.1f}")
    Console().print(table)
    if not args.no_report:
        try:
            from safeplay.eval.report import write_report

            path = write_report(Path(args.out))
            print(f"report: {path}")
        except ImportError:
            pass
    print(f"ablation.json: {Path(args.out) / 'ablation.json'}")
    return 0
