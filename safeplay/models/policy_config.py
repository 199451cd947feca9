"""The ``policy`` section of a training config: how role policies are laid out (LoRA adapters or full copies),
which roles share a policy, and the LoRA and generation-backend settings; plus the role and layout names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from safeplay.config import check

ROLES = ("attacker", "defender", "evaluator")
MODES = ("lora", "separate", "full")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
"""What a role or policy name may look like."""


@dataclass
class PolicyConfig:
    """How role policies are laid out and trained."""

    mode: Literal["lora", "separate", "full"] = "lora"
    """lora: named LoRA adapters on one frozen base (reference = adapters off); separate: one full trainable
    copy per policy + a frozen reference; full: full-parameter training of one shared model + frozen reference."""
    share: dict[str, str] = field(default_factory=dict)
    """Role → policy name. Roles not listed get their own policy named after the role; e.g.
    {attacker: player, defender: player} makes attacker and defender one set of weights (Self-RedTeam, SSP)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input during training."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Linear layers that get LoRA adapters (module name suffixes)."""
    generator: Literal["auto", "fast", "hf"] = "auto"
    """Generation backend: auto (the lean merged-weight decoder for Llama-family models, else HF), fast, or hf
    (a plain HF forward per step with the adapter unmerged — slower; for checking the fast path)."""

    def __post_init__(self) -> None:
        check(self.mode in MODES, "mode", f"{self.mode!r} is not allowed; choose one of {', '.join(MODES)}")
        for role, name in self.share.items():
            check(role in ROLES, f"share.{role}", f"unknown role; roles are {', '.join(ROLES)}")
            check(
                isinstance(name, str) and NAME_PATTERN.match(name) is not None,
                f"share.{role}",
                f"policy name {name!r} must start with a letter and use only letters, digits, _ or -",
            )
            # A target that is itself a role must be that role's own policy, or the mapping is ambiguous.
            if name in ROLES and name != role:
                check(
                    self.share.get(name, name) == name,
                    f"share.{role}",
                    f"target {name!r} is a role mapped to another policy ({self.share.get(name)!r})",
                )
        check(self.lora_r >= 1, "lora_r", "must be >= 1")
        check(self.lora_alpha > 0, "lora_alpha", "must be > 0")
        check(0.0 <= self.lora_dropout < 1.0, "lora_dropout", "must be in [0, 1)")
        check(len(self.target_modules) > 0, "target_modules", "needs at least one module name")
        check(self.generator in ("auto", "fast", "hf"), "generator", f"{self.generator!r} is not allowed; choose one of auto, fast, hf")
