"""Find a run's checkpoint folders, and rebuild its role policies from one (for chat and evaluation).

Checkpoint folders are ``step_<N>`` under a run's ``checkpoints/``; ``find_step`` picks one for every reader (the
trainer's resume included), each asking for what it needs from a folder: role weights, or the trainer's state.

Layout read: ``RUN/config.yaml`` with ``model: {spec, dtype, device}`` and ``policy: {...}`` sections, and
``RUN/checkpoints/step_<N>/roles/<role>/`` folders written by ``RolePolicies.save_role``. A checkpoint stores
one folder per *policy* (the first role of each), so roles that share it are recovered from ``policy.share``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from safeplay.errors import SafeplayError

if TYPE_CHECKING:
    from safeplay.models.roles import RolePolicies

STEP_DIR = re.compile(r"^step_(\d+)$")
"""A checkpoint folder's name: ``step_<N>``, N in decimal digits only."""


def holds_role_weights(step_dir: Path) -> bool:
    """The folder has the policies' weights (``roles/``): enough to rebuild a run's policies."""
    return (step_dir / "roles").is_dir()


def holds_trainer_state(step_dir: Path) -> bool:
    """The folder has the trainer's state (``state.json``, written last): a checkpoint a run can resume from."""
    return (step_dir / "state.json").is_file()


def list_step_dirs(checkpoints: Path, complete: Callable[[Path], bool]) -> list[tuple[int, Path]]:
    """(step, folder) of every ``step_<N>`` folder under ``checkpoints`` that ``complete`` accepts, by step."""
    if not checkpoints.is_dir():
        return []
    return sorted(
        (int(m.group(1)), p)
        for p in checkpoints.iterdir()
        if p.is_dir() and (m := STEP_DIR.match(p.name)) and complete(p)
    )


def find_step(checkpoints: Path, step: int | None, complete: Callable[[Path], bool], owner: str) -> Path | None:
    """The checkpoint folder of ``step`` under ``checkpoints`` (the highest step when None), among the folders
    ``complete`` accepts; None when there is none at all. A ``step`` without a folder is a SafeplayError naming
    ``owner`` and the steps there are."""
    found = dict(list_step_dirs(checkpoints, complete))
    if not found:
        return None
    if step is None:
        return found[max(found)]
    if step not in found:
        raise SafeplayError(f"{owner} has no checkpoint for step {step}; have {', '.join(map(str, sorted(found)))}")
    return found[step]


def find_step_dir(run_dir: Path, step: int | None = None) -> Path:
    """``RUN/checkpoints/step_<N>`` for ``step``, or the highest N holding role weights."""
    path = find_step(run_dir / "checkpoints", step, holds_role_weights, f"run {run_dir}")
    if path is None:
        raise SafeplayError(f"run {run_dir} has no checkpoints (expected checkpoints/step_<N>/roles/)")
    return path


def load_run_policies(
    run_dir: str | Path,
    step: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    micro_batch_size: int = 64,
) -> "RolePolicies":
    """Role policies of a run at ``step`` (latest when None); ``device``/``dtype`` override the run's config."""
    from safeplay.config import from_dict, read_yaml
    from safeplay.models.loading import ModelConfig
    from safeplay.models.policy_config import ROLES, PolicyConfig
    from safeplay.models.role_files import read_role_meta
    from safeplay.models.roles import build_policies

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SafeplayError(f"run folder {run_dir} not found")
    config = read_yaml(run_dir / "config.yaml")
    model_data = dict(config.get("model") or {})
    if device:
        model_data["device"] = device
    if dtype:
        model_data["dtype"] = dtype
    model_cfg = from_dict(ModelConfig, model_data, prefix="model.")
    policy_cfg = from_dict(PolicyConfig, dict(config.get("policy") or {}), prefix="policy.")

    step_dir = find_step_dir(run_dir, step)
    saved = {p.name: read_role_meta(p) for p in sorted((step_dir / "roles").iterdir()) if p.is_dir()}
    if not saved:
        raise SafeplayError(f"checkpoint {step_dir} holds no role weights")
    names = {meta.get("policy", role) for role, meta in saved.items()}
    roles = list(saved) + [r for r, name in policy_cfg.share.items() if name in names and r not in saved]
    roles.sort(key=lambda r: (ROLES.index(r) if r in ROLES else len(ROLES), r))
    policies = build_policies(model_cfg, policy_cfg, roles, micro_batch_size)
    for role in saved:
        policies.load_role(role, step_dir / "roles" / role)
    return policies
