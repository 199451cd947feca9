"""Self-play games per minute: single-process vs Ray rollout workers, same seed and config, one run.

Both sides train the same ``self-redteam`` config from the same initial weights: the single-process run plays its
shards one after another in this process; the Ray run sends them to ``--workers`` rollout actors on a local Ray
cluster (``ray.init(num_cpus=workers)``) and a judge actor, with the learner here. Only step time counts (the
``time/step_s`` of each step: play, update and weight broadcast), not model loading or actor start-up. The games
of both runs are compared too: they must be identical.

By default the model is a tiny random Llama (fast, shows the overheads); ``--model bundled`` uses SmolLM2-135M
(the realistic case). Thread counts: the single-process run uses ``--threads``; each Ray actor uses
``--worker-threads`` and the learner ``--threads``. On a machine whose cores are shared with other jobs, one
multi-threaded torch process loses far more to preemption than single-threaded processes do, which favours the
Ray side; rerun with ``--threads 1`` to see how much of the ratio that is.

The last line is ``SUMMARY single_games_per_min=… ray_games_per_min=… ratio=… same_games=…``.

    python benchmarks/distributed_games.py [--model tiny|bundled] [--steps 3] [--batch-size 16] [--workers 2]
        [--shard-size 4] [--judge keyword] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


class BenchSpec:
    """How the Ray actors build their policies and judge: the same model and LoRA init as the learner."""

    def __init__(self, cfg, model: str, judge: str):
        self.cfg, self.model, self.judge = cfg, model, judge

    def build_engine(self):
        return build_policies(self.cfg, self.model)

    def build_judge(self):
        from safeplay.judges.registry import build_judge

        return build_judge(self.judge)


def build_policies(cfg, model: str):
    import torch

    from safeplay.models.loading import load_model, tiny_model
    from safeplay.models.roles import RolePolicies
    from safeplay.recipes import recipe_class

    base, tok = tiny_model(seed=0, hidden_size=128, intermediate_size=256) if model == "tiny" else load_model()
    torch.manual_seed(cfg.seed)  # LoRA init, as build_components does
    return RolePolicies(base, tok, recipe_class(cfg.recipe).roles, cfg.policy)


def make_cfg(args):
    from safeplay.engine.build import resolve_share
    from safeplay.engine.setup import resolve_config

    cfg = resolve_config("self-redteam", overrides=[
        f"steps={args.steps}", f"batch_size={args.batch_size}", "eval.enabled=false", "log.tensorboard=false",
        "game.attacker_tactics=false", f"attacker.max_new_tokens={args.max_new_tokens}",
        f"defender.max_new_tokens={args.max_new_tokens}", "rl.minibatches=1", "rl.micro_batch_size=8",
        f"rollout.shard_size={args.shard_size}", f"rollout.workers={args.workers}",
        f"rollout.worker_threads={args.worker_threads}", f"checkpoint_every={args.steps}", f"seed={args.seed}",
    ])
    resolve_share(cfg)
    return cfg


def play(cfg, args, root: Path, executor=None) -> tuple[float, int, list]:
    """(seconds of steps, games played, game records) of one training run."""
    from safeplay.data.seeds import load_seeds
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.trainer import Components, Trainer
    from safeplay.judges.registry import build_judge

    policies = build_policies(cfg, args.model)
    seeds = load_seeds(None, seed=cfg.seed)  # the built-in seed set: the same offline everywhere
    comps = Components(policies=policies, judge=build_judge(args.judge), seeds=seeds, tactics=[], executor=executor)
    trainer = Trainer(cfg, RunDir(root), comps)
    trainer.fit()
    rows = [r for r in trainer.run.metrics.rows() if r["kind"] == "train"]
    games = trainer.run.games.rows()
    return sum(r["time/step_s"] for r in rows), len(games), games


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["tiny", "bundled"], default="tiny", help="tiny random Llama (default) or "
                   "the bundled SmolLM2-135M")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--shard-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-threads", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the single-process run and the learner")
    p.add_argument("--judge", default="keyword", help="judge name (default keyword: cheap and deterministic)")
    p.add_argument("--seed", type=int, default=8888)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    import ray
    import torch

    from safeplay.distributed.ray_backend import RayExecutor

    torch.set_num_threads(args.threads)
    cfg = make_cfg(args)
    with tempfile.TemporaryDirectory() as tmp:
        single_s, single_n, single_games = play(cfg, args, Path(tmp) / "single")
        print(f"single process: {single_n} games in {single_s:.1f}s of steps")
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR")
        executor = RayExecutor(cfg.rollout, BenchSpec(cfg, args.model, args.judge))
        try:
            ray_s, ray_n, ray_games = play(cfg, args, Path(tmp) / "ray", executor)
        finally:
            executor.close()
            ray.shutdown()
        print(f"ray, {args.workers} workers: {ray_n} games in {ray_s:.1f}s of steps")
    single_gpm, ray_gpm = 60 * single_n / single_s, 60 * ray_n / ray_s
    same = single_games == ray_games
    result = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size, "workers": args.workers,
              "shard_size": args.shard_size, "single_games_per_min": single_gpm, "ray_games_per_min": ray_gpm,
              "ratio": ray_gpm / single_gpm, "same_games": same}
    print(f"games per minute: single process {single_gpm:.1f}, Ray with {args.workers} workers {ray_gpm:.1f}, "
          f"ratio {ray_gpm / single_gpm:.2f}; identical games: {'yes' if same else 'NO'}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"SUMMARY single_games_per_min={single_gpm:.1f} ray_games_per_min={ray_gpm:.1f} "
          f"ratio={ray_gpm / single_gpm:.2f} same_games={same}")


if __name__ == "__main__":
    main()
