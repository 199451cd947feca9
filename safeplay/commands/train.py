"""``safeplay train``: run a recipe (with a preset and overrides), or resume a run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train with a self-play recipe", description=__doc__)
    p.add_argument("--recipe", default="self-redteam", help="self-redteam (default), ssp or triplay")
    p.add_argument("--preset", default=None, help="cpu-smoke, cpu-demo, gpu-8b or gpu-8b-llama")
    p.add_argument("--config", default=None, help="a YAML file layered over the recipe and preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set rl.kl_beta=0.05")
    p.add_argument("--out", default=None, help="run folder (default: runs/<name>)")
    p.add_argument("--name", default=None, help="run name (default: recipe-preset-timestamp)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--distributed", choices=["local", "ray"], default="local",
                   help="where rollouts and judge calls run: local (this process, default) or ray (rollout and "
                   "judge actors; rollout.workers, rollout.shard_size, … configure them)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join the Ray cluster at ADDR (e.g. ray://head:10001 or auto); default: start a local one")
    p.add_argument("--help-config", action="store_true", help="list every config key with its type, default and meaning")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _help_config() -> int:
    from rich.console import Console
    from rich.table import Table

    from safeplay.config import describe
    from safeplay.engine.config import TrainConfig

    table = Table("key", "type", "default", "meaning", show_lines=False)
    for key, tp, default, doc in describe(TrainConfig):
        table.add_row(key, tp, default, doc)
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.help_config:
        return _help_config()
    from safeplay.config import load_config, read_yaml
    from safeplay.engine.config import TrainConfig
    from safeplay.engine.preflight import preflight
    from safeplay.engine.progress import run_with_progress
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import default_run_name, resolve_config
    from safeplay.errors import SafeplayError

    # Everything is checked before a model loads or a folder is made: a typo costs one line, not a stray folder.
    if args.ray_address and args.distributed != "ray":
        raise SafeplayError("--ray-address needs --distributed ray")
    if args.resume:
        if not args.out:
            raise SafeplayError("--resume needs --out DIR (the run folder to continue)")
        out = Path(args.out)
        if not (out / "config.yaml").is_file():
            raise SafeplayError(f"--out {args.out} is not a run folder (no config.yaml); nothing to resume")
        cfg = load_config(TrainConfig, [read_yaml(out / "config.yaml")], args.overrides)
    else:
        name = [f"name={args.name}"] if args.name else []  # checked like the config key: a folder name
        cfg = resolve_config(args.recipe, args.preset, args.config, args.overrides + name)
        if not cfg.name:
            cfg.name = default_run_name(cfg, args.preset)
        out = Path(args.out) if args.out else Path("runs") / cfg.name
        if (out / "checkpoints" / "latest").exists():
            raise SafeplayError(f"{out} already holds a run; use --resume to continue it or another --out")
        if out.exists() and not out.is_dir():
            raise SafeplayError(f"--out {out} is a file, not a folder")
    preflight(cfg)
    if args.distributed == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise SafeplayError("--distributed ray needs Ray: pip install 'safeplay[ray]'")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if not args.resume:
        from safeplay.engine import warm_cache

        # A warm start computed earlier for the same inputs: this run starts at RL step 1.
        args.resume = warm_cache.restore(cfg, out)
        from safeplay.engine.estimate import estimate

        print(estimate(cfg, cached_warm_start=args.resume).line(args.resume), flush=True)
    run_dir = RunDir(out)
    run_with_progress(cfg, run_dir, resume=args.resume, quiet=args.quiet, distributed=args.distributed,
                      ray_address=args.ray_address)
    print(f"run folder: {run_dir.root}")
    return 0
