"""A run's folder: resolved config, metrics JSONL (+ TensorBoard), game log, checkpoints.

Layout::

    runs/<name>/
      config.yaml          the resolved config (what --resume reads back)
      metrics.jsonl        one JSON object per step ({"step": N, "kind": "train"|"eval"|"warm_start", ...})
      games.jsonl          one JSON object per game (full texts, verdicts, rewards)
      tb/                  TensorBoard events
      tracking.json        where the W&B / MLflow runs are (when log.wandb / log.mlflow are on)
      evals/step_<N>_<stage>/  each held-out evaluation: results.json, generations.jsonl
      checkpoints/step_<N>/   role weights (safetensors), optimiser/scheduler state, RNG, cursors
      checkpoints/latest   name of the newest complete checkpoint
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("safeplay")


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN/inf become None so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def eval_dir(root: Path, step: int, stage: str) -> Path:
    """Where the held-out evaluation of ``step`` at ``stage`` (start, after_warm_start, periodic, end) writes its
    ``results.json`` and ``generations.jsonl``."""
    return Path(root) / "evals" / f"step_{step}_{stage}"


class JsonlLog:
    """Append-only JSONL file that can be cut back to a step when a run resumes."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(_clean(row), ensure_ascii=False) + "\n")
            f.flush()

    def truncate_after(self, step: int) -> int:
        """Drop rows logged after ``step`` (written by a run that died before its next checkpoint)."""
        if not self.path.exists():
            return 0
        kept, dropped = [], 0
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1  # a line cut short by the kill
                continue
            if row.get("step", 0) > step:
                dropped += 1
            else:
                kept.append(line)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(k + "\n" for k in kept))
        tmp.replace(self.path)
        return dropped

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.checkpoints = self.root / "checkpoints"
        self.checkpoints.mkdir(exist_ok=True)
        self.metrics = JsonlLog(self.root / "metrics.jsonl")
        self.games = JsonlLog(self.root / "games.jsonl")
        self._tb = None
        self._trackers: list = []

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    def write_config(self, data: dict) -> None:
        tmp = self.config_path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        tmp.replace(self.config_path)

    def read_config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text()) or {}

    def open_tensorboard(self, enabled: bool) -> None:
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("tensorboard is not installed; skipping the TensorBoard log (pip install tensorboard)")
            return
        self._tb = SummaryWriter(str(self.root / "tb"))

    def open_trackers(self, log_cfg, config: dict, run_name: str) -> None:
        """Start the W&B / MLflow trackers ``log_cfg`` (a ``LogConfig``) turns on (``safeplay.tracking``)."""
        if log_cfg.wandb or log_cfg.mlflow:
            from safeplay.tracking import open_trackers

            self._trackers = open_trackers(self.root, log_cfg, config, run_name)

    def log_metrics(self, row: dict) -> None:
        self.metrics.append(row)
        if self._tb is not None:
            step = int(row.get("step", 0))
            prefix = row.get("kind", "train")
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
                    self._tb.add_scalar(f"{prefix}/{k}", v, step)
            self._tb.flush()
        if self._trackers:
            self._track(row)

    def _track(self, row: dict) -> None:
        results = None
        if row.get("kind") == "eval":
            # An end row on unchanged weights repeats an earlier stage's evaluation; its files are that stage's.
            path = eval_dir(self.root, int(row.get("step", 0)), row.get("same_as_stage") or row.get("stage", ""))
            try:
                results = json.loads((path / "results.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                results = None
        for tracker in list(self._trackers):
            try:
                tracker.log_row(row)
                if results is not None:
                    tracker.log_evaluation(int(row.get("step", 0)), str(row.get("stage", "")), results)
            except Exception as e:  # a tracker's network or store failing must not stop training
                log.warning("%s logging failed at step %s (%s: %s); continuing without it (metrics.jsonl is complete)",
                            tracker.name, row.get("step"), type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                self._trackers.remove(tracker)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._trackers:
            from safeplay.tracking import write_state

            trackers, self._trackers = self._trackers, []
            write_state(self.root, trackers)
            for tracker in trackers:
                try:
                    tracker.close()
                except Exception as e:  # closing is best effort: the run itself has finished
                    log.warning("closing %s failed: %s: %s", tracker.name, type(e).__name__, e)
