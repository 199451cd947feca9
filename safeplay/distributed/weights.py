"""Versioned snapshots of the trained weights, as rollout workers receive them after each update.

A snapshot holds one state dict per *policy* (roles that share weights share one entry): LoRA adapter tensors in
``lora`` mode — a few MB, cheap to broadcast after every update — or full weights in ``separate``/``full`` mode.
The driver puts each new snapshot into the Ray object store once; a worker pulls it only when the version it
last loaded is older.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WeightSnapshot:
    """The trained weights of every policy at one version."""

    version: int
    """Increases by one each time the learner's weights change."""
    mode: str
    """policy.mode of the learner (lora, separate, full)."""
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Role (one per policy) → CPU state dict of that policy's trainable weights."""
    policy_of: dict[str, str] = field(default_factory=dict)
    """Every role → its policy name (roles mapped to one name share a state dict)."""
    lora: dict[str, Any] | None = None
    """LoRA shape (r, alpha, target_modules) in lora mode, so an engine without peft can build the adapter."""


def snapshot(policies: Any, version: int) -> WeightSnapshot:
    """The current trained weights of ``policies`` (a ``RolePolicies``), copied to CPU."""
    seen: set[str] = set()
    weights: dict[str, dict[str, Any]] = {}
    for role in policies.roles:
        name = policies.policy_name(role)
        if name in seen:
            continue
        seen.add(name)
        weights[role] = {k: v.detach().to("cpu", copy=True) for k, v in policies.state_dict(role).items()}
    cfg = policies.cfg
    lora = None
    if cfg.mode == "lora":
        lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "target_modules": list(cfg.target_modules)}
    return WeightSnapshot(version, cfg.mode, weights, {r: policies.policy_name(r) for r in policies.roles}, lora)


def apply_snapshot(policies: Any, snap: WeightSnapshot) -> None:
    """Load a snapshot into a worker's own ``RolePolicies`` (same layout as the learner's)."""
    for role, sd in snap.weights.items():
        policies.load_state_dict(role, sd)
