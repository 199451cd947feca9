"""Reuse a finished warm start: a run whose warm start was already computed for the same inputs starts at RL.

The warm start is a third of the main job on two CPU cores, and it depends on far fewer settings than the run:
not on RL's learning rate, the reward table, the number of steps or the attacker's sampling temperature. When
``warm_start.cache`` is on, a fresh run looks for a warm start computed with the same inputs (``cache_key``: the
ablation's ``warm_start_view`` plus the seed-source and defender-only settings, the data directory and the warm
start's code version) under ``<cache>/warm_starts/<key>/``. On a hit the run folder is made from it (step-0
checkpoint, SFT data, the evaluations before and after the warm start) and RL begins at step 1; on a miss the run
computes its warm start and stores it there for the next run. Entries are written whole (a temporary folder,
then a rename), so a run killed while storing leaves none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from safeplay import paths
from safeplay.engine.ablation import fork_run, warm_start_view
from safeplay.engine.config import TrainConfig

log = logging.getLogger("safeplay")

WARM_START_VERSION = 3
"""Bumped whenever the warm start's data or training changes, so older entries are not reused."""


def cache_key(cfg: TrainConfig) -> str:
    view = warm_start_view(cfg)
    view.update(
        defender_only=cfg.game.defender_only,
        data_dir=str(paths.data_dir()),
        version=WARM_START_VERSION,
    )
    return hashlib.sha256(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()[:16]


def entry(cfg: TrainConfig) -> Path:
    return paths.cache_dir() / "warm_starts" / cache_key(cfg)


def finished(folder: Path) -> bool:
    return (folder / "checkpoints" / "latest").is_file() and (folder / "metrics.jsonl").is_file()


def restore(cfg: TrainConfig, run_root: Path) -> bool:
    """Make ``run_root`` a run that continues from a cached warm start of ``cfg``; False when there is none."""
    if not (cfg.warm_start.enabled and cfg.warm_start.cache):
        return False
    source = entry(cfg)
    if not finished(source):
        return False
    fork_run(source, run_root, cfg)
    log.info("warm start reused from %s (computed earlier for the same inputs)", source)
    return True


def store(cfg: TrainConfig, run_root: Path) -> None:
    """Keep the warm start just computed in ``run_root`` for later runs with the same inputs."""
    target = entry(cfg)
    if finished(target):
        return
    tmp = target.with_name(target.name + ".storing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    fork_run(run_root, tmp, cfg)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.info("warm start stored in %s", target)
