"""``safeplay eval``: run held-out benchmarks on a model or a training run's defender, judged by one judge."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError

DEFAULT_BENCHMARKS = "harmbench,xstest-safe,xstest-unsafe,wildjailbreak-adv-harmful,wildjailbreak-adv-benign"


def register(subparsers: argparse._SubParsersAction) -> None:
    from safeplay.data.benchmarks import BENCHMARKS

    p = subparsers.add_parser(
        "eval",
        help="evaluate a model or a run's defender on safety and capability benchmarks",
        description="Greedy generation on held-out benchmarks, judged by one judge; writes results.json and "
        "generations.jsonl (and comparison.json with --compare). Benchmarks: " + ", ".join(BENCHMARKS) + ", or "
        "file:PATH for your own set (JSONL or CSV with a prompt column and a harmful/benign label column; scored by "
        "each prompt's label and reported under the file's name).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, metavar="SPEC",
                     help="model to evaluate: a Hugging Face directory (an exported model or adapter folder too) "
                     "or hub id (default: the bundled model)")
    src.add_argument("--run", default=None, metavar="DIR", help="a training run folder: evaluate its defender")
    src.add_argument("--rejudge", default=None, metavar="DIR",
                     help="an earlier evaluation folder: judge its stored answers again with --judge (no generation)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step of --run (default: the latest)")
    p.add_argument("--benchmarks", default=DEFAULT_BENCHMARKS,
                   help=f"comma-separated names or file:PATH (default: {DEFAULT_BENCHMARKS})")
    p.add_argument("--judge", default="guard-mini", help="judge name (default: guard-mini; strongreject for "
                   "StrongREJECT's rubric grader, wildguard, … with --option)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="judge option (value read as YAML), e.g. -o endpoint=http://127.0.0.1:8000 -o model_name=m")
    p.add_argument("--limit", type=int, default=None, help="fixed seeded random subset of N items per benchmark")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit subset (default: 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: evals/<model>-<time>)")
    p.add_argument("--max-new-tokens", type=int, default=128,
                   help="answer length in tokens, greedy (default: 128; HarmBench's own protocol uses 512)")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generation batch (default: 16)")
    p.add_argument("--cot", action="store_true",
                   help="hidden chain-of-thought defender template; only the answer is judged")
    p.add_argument("--dtype", default=None, help="model dtype (default: chosen for the device)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: chosen automatically)")
    p.add_argument("--compare", nargs="+", default=None, metavar="SPEC_OR_RUN",
                   help="also evaluate these models or run folders side by side; writes comparison.json")
    p.set_defaults(func=run)


def _is_run(target: str) -> bool:
    path = Path(target)
    return path.is_dir() and ((path / "checkpoints").is_dir() or (path / "metrics.jsonl").is_file())


def _label(target: str | None, step: int | None = None) -> str:
    if target is None:
        return "bundled"
    name = Path(target).name or target
    return f"{name}@step{step}" if step is not None else name


def _load_generator(model: str | None, run_dir: str | None, step: int | None, dtype: str | None,
                    device: str | None) -> tuple[Any, Any]:
    """(generator, scorer-or-None) for a model spec or a run's defender."""
    from safeplay.eval.capability import scorer_from

    if run_dir is not None:
        from safeplay.models.checkpoint_io import load_run_policies

        if not Path(run_dir).is_dir():
            raise SafeplayError(f"--run {run_dir}: no such folder")
        generator = load_run_policies(Path(run_dir), step=step).generator("defender")
        return generator, scorer_from(generator)
    from safeplay.generation.factory import make_generator
    from safeplay.models import load_model

    hf_model, tokenizer = load_model(model, dtype=dtype, device=device)
    generator = make_generator(hf_model, tokenizer)
    return generator, scorer_from(generator)


def _evaluate_one(target_model: str | None, target_run: str | None, step: int | None, args: argparse.Namespace,
                  judge: Any, out_dir: Path, benchmarks: list[str]) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safeplay.eval.runner import evaluate

    label = _label(target_run or target_model, step)
    t0 = time.time()
    generator, scorer = _load_generator(target_model, target_run, step, args.dtype, args.device)
    load_s = time.time() - t0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"{label} · {name}", total=total)
            bar.update(tasks[name], completed=done)

        report = evaluate(generator, benchmarks, judge, limit=args.limit, max_new_tokens=args.max_new_tokens,
                          cot=args.cot, out_dir=out_dir, batch_size=args.batch_size, scorer=scorer,
                          model_id=label, seed=args.seed, progress=progress)
    report["load_seconds"] = load_s
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _print_table(arms: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("benchmark", "metric", *arms, title="results (judge: " + _judges(arms) + ")")
    first = next(iter(arms.values()))
    for bench, figures in first.items():
        primary = figures.get("primary")
        rows = [primary] if primary else []
        rows += [k for k in ("harmful_refusal_rate", "benign_compliance_rate", "refusal_rate", "keyword_hack_rate")
                 if k in figures and k != primary]
        for key in rows:
            cells = []
            for arm in arms.values():
                value = arm.get(bench, {}).get(key)
                cells.append("—" if value is None else f"{value:.3f}")
            arrow = "" if key != primary else (" ↑" if figures.get("higher_is_better") else " ↓")
            table.add_row(bench, key + arrow, *cells)
    Console().print(table)


def _judges(arms: dict[str, dict[str, Any]]) -> str:
    names = {f.get("judge") for arm in arms.values() for f in arm.values() if isinstance(f, dict) and f.get("judge")}
    return ", ".join(sorted(names)) or "none"


def run(args: argparse.Namespace) -> int:
    from safeplay.commands.checks import parse_options
    from safeplay.data.benchmarks import get_spec
    from safeplay.judges.registry import build_judge

    options = parse_options(args.option)
    _check_args(args, options)
    if args.rejudge is not None:
        return _rejudge(args, build_judge(args.judge, **options))
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    needs_judge = any(get_spec(b).metric not in ("gsm8k", "mmlu") for b in benchmarks)
    judge = build_judge(args.judge, **options) if needs_judge else _NoJudge()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    main_label = _label(args.run or args.model, args.step if args.run else None)
    out = Path(args.out) if args.out else Path("evals") / f"{re.sub(r'[^A-Za-z0-9_.@-]+', '_', main_label)}-{stamp}"

    targets: list[tuple[str | None, str | None]] = [(args.model, args.run)]
    for extra in args.compare or []:
        targets.append((None, extra) if _is_run(extra) else (extra, None))

    arms: dict[str, dict[str, Any]] = {}
    for i, (model, run_dir) in enumerate(targets):
        step = args.step if run_dir and i == 0 else None  # compared runs use their latest checkpoint
        label = _label(run_dir or model, step)
        while label in arms:
            label += "'"
        arm_dir = out if len(targets) == 1 else out / re.sub(r"[^A-Za-z0-9_.@'-]+", "_", label)
        report = _evaluate_one(model, run_dir, step, args, judge, arm_dir, benchmarks)
        arms[label] = report["benchmarks"]
    if len(targets) > 1:
        comparison = {"arms": arms, "judge": judge.name, "limit": args.limit, "subset_seed": args.seed,
                      "max_new_tokens": args.max_new_tokens, "cot": args.cot}
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(json.dumps(comparison, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    _print_table(arms)
    print(f"wrote {out}")
    return 0


def _check_args(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """Every flag checked before a judge or a model loads or a folder is made (one line per mistake)."""
    from safeplay.commands.checks import at_least, folder_path, model_flags, run_folder
    from safeplay.eval.runner import check_benchmarks
    from safeplay.judges.registry import check_judge
    from safeplay.models.loading import check_model_spec

    check_judge(args.judge, options, "--judge", "--option")
    for flag, value, low in (("--limit", args.limit, 1), ("--batch-size", args.batch_size, 1),
                             ("--max-new-tokens", args.max_new_tokens, 1), ("--step", args.step, 0)):
        at_least(flag, value, low)
    folder_path("--out", args.out)
    if args.rejudge is not None:
        if args.compare or args.step is not None:
            raise SafeplayError("--rejudge takes no --compare or --step")
        if not all((Path(args.rejudge) / f).is_file() for f in ("results.json", "generations.jsonl")):
            raise SafeplayError(f"--rejudge {args.rejudge} is not an evaluation folder (results.json and "
                                "generations.jsonl)")
        return
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if not benchmarks:
        raise SafeplayError("--benchmarks names no benchmark")
    check_benchmarks(benchmarks)  # a custom set's file is read here: a malformed one fails before any model
    if args.step is not None and args.run is None:
        raise SafeplayError("--step needs --run")
    model_flags(args.dtype, args.device)
    if args.run is not None:
        run_folder("--run", args.run)
    if args.model is not None:
        check_model_spec(args.model, "--model")
    for target in args.compare or []:
        if not _is_run(target):
            check_model_spec(target, "--compare")


def _rejudge(args: argparse.Namespace, judge: Any) -> int:
    from safeplay.eval.runner import rejudge

    source = Path(args.rejudge)
    out = Path(args.out) if args.out else source.parent / f"{source.name}-{judge.name}"
    report = rejudge(source, judge, out_dir=out)
    _print_table({f"{source.name} ({judge.name})": report["benchmarks"]})
    print(f"wrote {out}")
    return 0


class _NoJudge:
    """Stand-in when only capability benchmarks run (nothing is judged)."""

    name = "none"

    def judge(self, items):  # pragma: no cover - never called for capability benchmarks
        raise SafeplayError("no judge for safety benchmarks")
