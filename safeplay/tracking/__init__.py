"""Experiment trackers beside a run folder's own logs: Weights & Biases and MLflow, each through its own library.

``RunDir`` hands every metrics row (the rows of ``metrics.jsonl``, also drawn in TensorBoard) and every held-out
evaluation's ``results.json`` to the trackers the config turns on (``log.wandb``, ``log.mlflow``); each tracker
also gets the resolved config when it starts. Both work without a network: ``WANDB_MODE=offline`` keeps the W&B
run in ``<run>/wandb`` (``wandb sync`` uploads it later), and MLflow defaults to a file store in ``<run>/mlruns``.

Where each tracked run lives is written to ``<run>/tracking.json``: a resumed run continues the same tracked run,
and ``safeplay report`` links them. A tracker that fails mid-run is dropped with a warning (the run's own logs are
complete without it); one that cannot start stops the run before training, with the reason.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("safeplay")

TRACKING_FILE = "tracking.json"


class Tracker(Protocol):
    name: str

    def log_row(self, row: dict[str, Any]) -> None:
        """One metrics row (``{"step": N, "kind": ..., metric: value, ...}``)."""

    def log_evaluation(self, step: int, stage: str, results: dict[str, Any]) -> None:
        """One held-out evaluation's ``results.json``."""

    def state(self) -> dict[str, Any]:
        """What ``tracking.json`` keeps: enough to resume the tracked run and to link it."""

    def close(self) -> None: ...


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """A row's finite numbers, named ``<kind>/<key>`` as in TensorBoard (``train/attack_success_rate``)."""
    prefix = row.get("kind", "train")
    return {f"{prefix}/{k}": float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step" and math.isfinite(v)}


def eval_rows(results: dict[str, Any]) -> list[list[Any]]:
    """The evaluation table: one ``[benchmark, metric, value, n, judge, primary]`` row per number."""
    rows = []
    for bench, figures in (results.get("benchmarks") or {}).items():
        for key, value in figures.items():
            if (isinstance(value, (int, float)) and not isinstance(value, bool) and key not in
                    ("n", "seconds", "judge_seconds", "higher_is_better") and math.isfinite(value)):
                rows.append([bench, key, float(value), figures.get("n"), figures.get("judge"),
                             key == figures.get("primary")])
    return rows


def read_state(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(root) / TRACKING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(root: Path, trackers: list[Tracker]) -> None:
    state = read_state(root) | {t.name: t.state() for t in trackers}
    tmp = Path(root) / (TRACKING_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(Path(root) / TRACKING_FILE)


def open_trackers(root: Path, log_cfg: Any, config: dict[str, Any], run_name: str) -> list[Tracker]:
    """Start the trackers ``log_cfg`` asks for (``LogConfig``), continuing the runs ``tracking.json`` names."""
    previous = read_state(root)
    trackers: list[Tracker] = []
    if log_cfg.wandb:
        from safeplay.tracking.wandb_run import WandbTracker

        trackers.append(WandbTracker(root, log_cfg, config, run_name, previous.get("wandb")))
    if log_cfg.mlflow:
        from safeplay.tracking.mlflow_run import MlflowTracker

        trackers.append(MlflowTracker(root, log_cfg, config, run_name, previous.get("mlflow")))
    if trackers:
        write_state(root, trackers)
        for t in trackers:
            log.info("tracking with %s: %s", t.name, link_of(t.name, t.state()).get("text"))
    return trackers


def link_of(name: str, state: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "href" (http(s) or file URL, or None), "text", "hint"}`` for one tracked run."""
    if name == "wandb":
        if state.get("url"):
            return {"name": "Weights & Biases", "href": state["url"], "text": state["url"], "hint": ""}
        where = state.get("dir") or ""
        return {"name": "Weights & Biases (offline)", "href": Path(where).resolve().as_uri() if where else None,
                "text": where,
                "hint": f"upload with: wandb sync {where}"}
    uri = str(state.get("tracking_uri") or "")
    eid, rid = state.get("experiment_id"), state.get("run_id")
    if uri.startswith(("http://", "https://")):
        href = f"{uri.rstrip('/')}/#/experiments/{eid}/runs/{rid}"
        return {"name": "MLflow", "href": href, "text": href, "hint": ""}
    if uri.startswith("file:"):
        folder = Path(uri.removeprefix("file://").removeprefix("file:")) / str(eid) / str(rid)
        return {"name": "MLflow (file store)", "href": folder.resolve().as_uri(), "text": str(folder),
                "hint": f"browse with: mlflow ui --backend-store-uri {uri}"}
    return {"name": "MLflow", "href": None, "text": f"run {rid} at {uri}", "hint": ""}


def read_links(root: Path) -> list[dict[str, Any]]:
    """Links to the tracked runs of a run folder (for the HTML report), TensorBoard's log folder included."""
    links = [link_of(name, state) for name, state in read_state(root).items()
             if name in ("wandb", "mlflow") and isinstance(state, dict)]
    for link in links:  # the page links only to web pages and local folders
        if not str(link.get("href") or "").startswith(("http://", "https://", "file:")):
            link["href"] = None
    tb = Path(root) / "tb"
    if tb.is_dir():
        links.insert(0, {"name": "TensorBoard", "href": tb.resolve().as_uri(), "text": str(tb),
                         "hint": f"view with: tensorboard --logdir {tb}"})
    return links
