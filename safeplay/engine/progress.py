"""Run a training job with a rich progress bar showing each step's key figures."""

from __future__ import annotations

from safeplay.engine.build import build_components
from safeplay.engine.config import TrainConfig
from safeplay.engine.run_dir import RunDir
from safeplay.engine.trainer import Trainer

KEY_FIGURES = [
    ("ASR", "attack_success_rate"),
    ("refuse-harm", "defender/refusal_harmful"),
    ("refuse-benign", "defender/refusal_benign"),
    ("R_def", "defender/reward_mean"),
    ("R_att", "attacker/reward_mean"),
]


def _fmt(row: dict | None) -> str:
    if not row:
        return "skipped"
    parts = []
    for label, key in KEY_FIGURES:
        v = row.get(key)
        if isinstance(v, (int, float)):
            parts.append(f"{label} {v:.2f}")
    parts.append(f"{row.get('time/step_s', 0):.0f}s")
    return "  ".join(parts)


def run_with_progress(cfg: TrainConfig, run: RunDir, resume: bool = False, quiet: bool = False,
                      distributed: str = "local", ray_address: str | None = None) -> Trainer:
    """Build the run, train it (``distributed``: local = this process, ray = Ray rollout and judge actors)."""
    from safeplay.distributed.launch import make_executor

    components = build_components(cfg, run.root)
    components.executor = make_executor(cfg, components, distributed, ray_address)
    try:
        return _fit(cfg, run, components, resume, quiet)
    finally:
        if components.executor is not None:
            components.executor.close()


def _fit(cfg: TrainConfig, run: RunDir, components, resume: bool, quiet: bool) -> Trainer:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safeplay.config import to_dict

    run.open_tensorboard(cfg.log.tensorboard)
    run.open_trackers(cfg.log, to_dict(cfg), cfg.name or run.root.name)
    try:
        trainer = Trainer(cfg, run, components)
        if quiet:
            trainer.fit(resume=resume)
            return trainer
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[figures]}"),
        ) as bar:
            task = bar.add_task(cfg.recipe, total=cfg.steps, figures="")

            def progress(step: int, row: dict | None) -> None:
                bar.update(task, completed=step, figures=_fmt(row))

            trainer.fit(resume=resume, progress=progress)
        return trainer
    finally:
        run.close()  # also when training stops on an error: trackers learn the run ended
