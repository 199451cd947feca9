"""Atomic checkpoints: a checkpoint folder is written under a temporary name and renamed when complete.

A checkpoint holds each policy's trainable weights (safetensors, via ``RolePolicies.save_role``), the frozen
KL references taken after a warm start (``reference/<policy>/``), each
optimiser and scheduler state (``torch.save`` of tensors and plain containers only, read back with
``weights_only=True`` — nothing is unpickled), RNG states and the trainer's own state (step, data cursors,
recipe state such as replay pools) as JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from safeplay.errors import SafeplayError
from safeplay.models.checkpoint_io import find_step, holds_trainer_state, list_step_dirs


def rng_state() -> dict[str, Any]:
    py = random.getstate()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
        "torch": torch.get_rng_state().tolist(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def save_checkpoint(
    checkpoints: Path,
    step: int,
    policies,
    updaters: dict[str, Any],
    trainer_state: dict[str, Any],
    keep: int,
) -> Path:
    final = checkpoints / f"step_{step}"
    tmp = checkpoints / f".tmp_step_{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    saved_policies = set()
    for role in policies.roles:
        name = policies.policy_name(role)
        if name in saved_policies:
            continue
        saved_policies.add(name)
        policies.save_role(role, tmp / "roles" / role)
    for name in policies.frozen_reference_names():
        policies.save_reference(name, tmp / "reference" / name)
    optim = {name: u.state_dict() for name, u in updaters.items()}
    torch.save(optim, tmp / "optim.pt")
    state = {"step": step, "rng": rng_state(), "trainer": trainer_state}
    (tmp / "state.json").write_text(json.dumps(state))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = checkpoints / ".latest.tmp"
    latest_tmp.write_text(final.name)
    os.replace(latest_tmp, checkpoints / "latest")
    _prune(checkpoints, keep)
    return final


def _prune(checkpoints: Path, keep: int) -> None:
    done = list_step_dirs(checkpoints, holds_trainer_state)
    for _, path in done[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def find_checkpoint(checkpoints: Path, step: int | None = None) -> Path | None:
    """The checkpoint to resume from: ``step``'s (the latest when None); None when there is none."""
    return find_step(checkpoints, step, holds_trainer_state, str(checkpoints))


def load_checkpoint(path: Path, policies, updaters: dict[str, Any]) -> dict[str, Any]:
    """Restore weights, optimisers and RNG; returns the saved trainer state (with ``step``)."""
    state = json.loads((path / "state.json").read_text())
    restored = set()
    for role in policies.roles:
        name = policies.policy_name(role)
        if name in restored:
            continue
        role_dir = path / "roles" / role
        if not role_dir.is_dir():
            raise SafeplayError(f"checkpoint {path} has no weights for role {role!r}")
        policies.load_role(role, role_dir)
        restored.add(name)
    if (path / "reference").is_dir():
        for ref_dir in sorted(p for p in (path / "reference").iterdir() if p.is_dir()):
            policies.load_reference(ref_dir.name, ref_dir)
    optim = torch.load(path / "optim.pt", weights_only=True)
    for name, u in updaters.items():
        if name in optim:
            u.load_state_dict(optim[name])
    set_rng_state(state["rng"])
    trainer = state["trainer"]
    trainer["step"] = state["step"]
    return trainer
