"""Find one role's trained weights in a run folder, with what an export needs to know about them.

A checkpoint holds one folder per *policy*, named after the first role that plays it (``roles/attacker/`` holds
Self-RedTeam's shared ``player``, which the defender plays too), so a role is found through its policy name in
``policy.share`` of the run's resolved config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError


@dataclass
class RoleWeights:
    """A role's weights at one checkpoint of a run."""

    run_dir: Path
    step: int
    role: str
    policy: str
    """The policy name the role plays (shared roles have one)."""
    mode: str
    """``lora`` (an adapter on the frozen base), ``full`` or ``separate`` (full weights)."""
    weights_dir: Path
    """The folder ``RolePolicies.save_role`` wrote: ``weights.safetensors`` + ``policy.json``."""
    meta: dict[str, Any]
    """``policy.json``."""
    config: dict[str, Any]
    """The run's resolved config (``config.yaml``)."""

    @property
    def model_spec(self) -> str:
        """The base model's spec as safeplay loads it (``smollm2-135m``, a directory made absolute, or a hub id)."""
        spec = str((self.config.get("model") or {}).get("spec") or "smollm2-135m")
        path = Path(spec).expanduser()
        return str(path.resolve()) if path.is_dir() else spec

    @property
    def weights_file(self) -> Path:
        from safeplay.models.role_files import WEIGHTS_FILE

        return self.weights_dir / WEIGHTS_FILE


def find_role_weights(run_dir: str | Path, role: str = "defender", step: int | None = None) -> RoleWeights:
    """The weights ``role`` plays with at checkpoint ``step`` (the latest when None), or a one-line error."""
    from safeplay.config import read_yaml
    from safeplay.models.checkpoint_io import find_step_dir
    from safeplay.models.role_files import read_role_meta

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise SafeplayError(f"{run_dir} is not a run folder (no config.yaml)")
    config = read_yaml(run_dir / "config.yaml")
    step_dir = find_step_dir(run_dir, step)
    saved = {p.name: read_role_meta(p) for p in sorted((step_dir / "roles").iterdir()) if p.is_dir()}
    share = (config.get("policy") or {}).get("share") or {}
    policy = share.get(role, role)
    found = [(name, meta) for name, meta in saved.items() if meta.get("policy", name) == policy]
    if not found:
        plays = sorted(set(saved) | {r for r, p in share.items() if any(m.get("policy") == p for m in saved.values())})
        raise SafeplayError(f"run {run_dir} holds no weights for role {role!r} at {step_dir.name}; "
                            f"its roles: {', '.join(plays)}")
    name, meta = found[0]
    return RoleWeights(run_dir=run_dir, step=int(step_dir.name.split("_", 1)[1]), role=role, policy=policy,
                       mode=meta["mode"], weights_dir=step_dir / "roles" / name, meta=meta, config=config)
