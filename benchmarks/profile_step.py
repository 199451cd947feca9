"""Where one self-play step's time goes: generation per role, judging, log-prob passes, backward, optimiser.

Builds a recipe + preset exactly as ``safeplay train`` does (warm start and held-out evaluation off, since they are
not part of a step), plays one warm-up step, then times ``--steps`` steps with wall-clock timers wrapped around the
engine's own calls. "other" is what is left of the step: Python glue, collation, reward tables, metrics.

    python benchmarks/profile_step.py [--recipe self-redteam] [--preset cpu-demo] [--steps 2]
                                      [--set KEY=VALUE ...] [--json out.json]

Compare two settings by running it twice, e.g. ``--set policy.generator=hf`` (the plain per-step HF forward with an
unmerged adapter) against the default fast decoder, or ``--set model.dtype=float32``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = 0

    @contextlib.contextmanager
    def time(self, name: str):
        # Only the outermost timed call counts, so nested wrapped calls are not counted twice.
        self._depth += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1

    def wrap(self, obj, attr: str, name) -> None:
        fn = getattr(obj, attr)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            label = name(*args, **kwargs) if callable(name) else name
            with self.time(label):
                return fn(*args, **kwargs)

        setattr(obj, attr, timed)


def instrument(trainer, timers: Timers) -> None:
    import torch

    policies = trainer.policies
    timers.wrap(policies, "generate", lambda role, *a, **k: f"generate/{role}")
    timers.wrap(policies, "_generate_reference", "generate/reference")
    timers.wrap(trainer.recipe.ctx.judge, "judge", "judge")
    if trainer.components.embedder is not None:
        timers.wrap(trainer.components.embedder, "encode", "embeddings (diversity metrics)")

    def logprob_label(role, *a, **k):
        return "logprobs/policy (grad)" if torch.is_grad_enabled() else "logprobs/policy (no grad)"

    timers.wrap(policies, "token_logprobs", logprob_label)
    timers.wrap(policies, "ref_token_logprobs", "logprobs/reference")
    backward = torch.Tensor.backward

    def timed_backward(self, *a, **k):
        with timers.time("backward"):
            return backward(self, *a, **k)

    torch.Tensor.backward = timed_backward
    for updater in trainer.updaters.values():
        timers.wrap(updater.optimizer, "step", "optimizer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="self-redteam")
    parser.add_argument("--preset", default="cpu-demo")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", default=None, help="write the breakdown here")
    args = parser.parse_args()

    import logging

    from rich.console import Console
    from rich.table import Table

    from safeplay.engine.build import build_components
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import resolve_config
    from safeplay.engine.trainer import Trainer

    logging.basicConfig(level=logging.WARNING)
    overrides = ["warm_start.enabled=false", "eval.enabled=false", "log.tensorboard=false", *args.overrides]
    cfg = resolve_config(args.recipe, args.preset, overrides=overrides)
    cfg.steps = args.steps + 1
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp))
        trainer = Trainer(cfg, run, build_components(cfg, run.root))
        trainer.train_step(1)  # warm-up: first-call allocations, lazy imports
        timers = Timers()
        instrument(trainer, timers)
        games = 0
        t0 = time.perf_counter()
        for step in range(2, args.steps + 2):
            row = trainer.train_step(step)
            games += int(row.get("games", 0)) if row else 0
        total = time.perf_counter() - t0

    per_step = total / args.steps
    rows = sorted(timers.seconds.items(), key=lambda kv: -kv[1])
    accounted = sum(s for _, s in rows)
    table = Table("part", "calls/step", "s/step", "share", title=(
        f"{args.recipe} {args.preset} step profile · {cfg.model.spec} {trainer.policies.dtype} · "
        f"generator {cfg.policy.generator} · {args.steps} steps"))
    for name, secs in rows + [("other", total - accounted)]:
        calls = timers.calls.get(name, 0) / args.steps
        table.add_row(name, f"{calls:.1f}" if calls else "", f"{secs / args.steps:.2f}", f"{secs / total:.0%}")
    table.add_row("[bold]step", "", f"[bold]{per_step:.2f}", "100%")
    Console().print(table)
    gpm = games / total * 60 if total else 0.0
    print(f"games per minute: {gpm:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "recipe": args.recipe, "preset": args.preset, "overrides": args.overrides, "dtype": str(trainer.policies.dtype),
            "step_seconds": per_step, "games_per_minute": gpm,
            "parts": {n: s / args.steps for n, s in rows} | {"other": (total - accounted) / args.steps},
        }, indent=2))


if __name__ == "__main__":
    main()
