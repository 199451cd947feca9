"""``safeplay report``: one self-contained HTML page for a run, an evaluation or a comparison."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write an HTML report of a run, an evaluation or a comparison",
        description="Detects what PATH holds: a training run (metrics.jsonl, games.jsonl), an evaluation "
        "(results.json, generations.jsonl) or a comparison (comparison.json / ablation.json).",
    )
    p.add_argument("path", metavar="PATH", help="run folder, evaluation folder, or comparison/ablation JSON")
    p.add_argument("--out", default=None, metavar="FILE", help="HTML file to write (default: PATH/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from safeplay.errors import SafeplayError
    from safeplay.eval.report import write_report

    if not Path(args.path).exists():
        raise SafeplayError(f"{args.path} not found")
    if args.out is not None and Path(args.out).is_dir():
        raise SafeplayError(f"--out {args.out} is a folder; name the HTML file to write")
    target = write_report(args.path, args.out)
    print(f"wrote {target}")
    return 0
