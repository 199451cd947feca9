"""Weights & Biases tracking through the ``wandb`` library (``pip install 'safeplay[wandb]'``).

Metrics are logged against a ``step`` metric of their own (``define_metric``), not W&B's internal step: a run logs
several rows per step (training, evaluation) and, after ``--resume``, steps again from its last checkpoint, which
W&B's monotonic internal step would drop. Each evaluation becomes a table (``eval_table/<stage>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError
from safeplay.tracking import eval_rows, scalars

EVAL_COLUMNS = ["benchmark", "metric", "value", "n", "judge", "primary"]


class WandbTracker:
    name = "wandb"

    def __init__(self, root: Path, cfg: Any, config: dict[str, Any], run_name: str, previous: dict | None):
        try:
            import wandb
        except ImportError:
            raise SafeplayError("log.wandb is on but wandb is not installed: pip install 'safeplay[wandb]'") from None
        self._wandb = wandb
        try:
            self.run = wandb.init(
                project=cfg.wandb_project, entity=cfg.wandb_entity, name=run_name, config=config, dir=str(root),
                job_type="train", tags=[str(config.get("recipe", ""))],
                id=(previous or {}).get("id"), resume="allow",
            )
        except Exception as e:  # login, network and settings errors come in many types
            first = str(e).splitlines()[0] if str(e) else ""
            raise SafeplayError(f"cannot start the W&B run ({type(e).__name__}: {first}); log in with `wandb login`, "
                                "or set WANDB_MODE=offline to log into the run folder without a network") from None
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    def log_row(self, row: dict[str, Any]) -> None:
        self.run.log({**scalars(row), "step": int(row.get("step", 0))})

    def log_evaluation(self, step: int, stage: str, results: dict[str, Any]) -> None:
        table = self._wandb.Table(columns=EVAL_COLUMNS, data=eval_rows(results))
        self.run.log({f"eval_table/{stage}": table, "step": step})

    def state(self) -> dict[str, Any]:
        return {"id": self.run.id, "project": self.run.project, "entity": self.run.entity or None,
                "url": self.run.url, "dir": str(Path(self.run.dir).parent), "offline": bool(self.run.offline)}

    def close(self) -> None:
        self.run.finish()
