"""MLflow tracking through the ``mlflow`` library's client (``pip install 'safeplay[mlflow]'``).

The tracking URI is ``log.mlflow_tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a file store in ``<run>/mlruns``
(no server, no network; ``mlflow ui --backend-store-uri <that URI>`` browses it). MLflow 3 refuses file stores
unless ``MLFLOW_ALLOW_FILE_STORE`` is set; safeplay sets it for the file store it chose (or the user named), since
that is the store that works offline. The resolved config goes in as parameters (flattened, ``model.spec``) and as
``config.yaml``; each evaluation's ``results.json`` as ``evals/step_<N>_<stage>.json``; an explicit client and run
id are used throughout, so nothing depends on MLflow's process-global active run.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError
from safeplay.tracking import scalars

MAX_PARAM_CHARS = 500
"""Parameter values longer than this are cut (MLflow stores limits between 500 and 6000 characters)."""
_KEY = re.compile(r"[^A-Za-z0-9_\-. /:]")
"""Characters MLflow refuses in metric and parameter names."""


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model.spec": "smollm2-135m", ...}`` with JSON for lists and cut long values."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        out[_KEY.sub("_", name)] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"
    return out


class MlflowTracker:
    name = "mlflow"

    def __init__(self, root: Path, cfg: Any, config: dict[str, Any], run_name: str, previous: dict | None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise SafeplayError("log.mlflow is on but mlflow is not installed: "
                                "pip install 'safeplay[mlflow]'") from None
        self.uri = (cfg.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                    or (Path(root) / "mlruns").resolve().as_uri())
        if self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            previous = previous or {}
            if previous.get("run_id") and previous.get("tracking_uri") == self.uri:
                self.run_id, self.experiment_id = previous["run_id"], previous["experiment_id"]
                self.client.update_run(self.run_id, status="RUNNING")  # a resumed run continues its tracked run
            else:
                experiment = self.client.get_experiment_by_name(cfg.mlflow_experiment)
                self.experiment_id = (experiment.experiment_id if experiment is not None
                                      else self.client.create_experiment(cfg.mlflow_experiment))
                run = self.client.create_run(self.experiment_id, run_name=run_name,
                                             tags={"safeplay.recipe": str(config.get("recipe", ""))})
                self.run_id = run.info.run_id
                self._log_params(flatten(config))
            self.client.log_dict(self.run_id, config, "config.yaml")
        except SafeplayError:
            raise
        except Exception as e:  # store, network and permission errors come in many types
            first = str(e).splitlines()[0] if str(e) else ""
            raise SafeplayError(f"cannot start the MLflow run at {self.uri} ({type(e).__name__}: {first})") from None

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow's batch limit for parameters
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_row(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row.get("step", 0))
        metrics = [Metric(_KEY.sub("_", k), v, now, step) for k, v in scalars(row).items()]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit for metrics
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log_evaluation(self, step: int, stage: str, results: dict[str, Any]) -> None:
        self.client.log_dict(self.run_id, results, f"evals/step_{step}_{stage}.json")

    def state(self) -> dict[str, Any]:
        return {"tracking_uri": self.uri, "experiment_id": self.experiment_id, "run_id": self.run_id}

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
