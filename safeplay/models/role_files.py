"""Role weights on disk: the safetensors file and the small ``policy.json`` that ``RolePolicies.save_role`` writes
into a role's folder (and ``save_reference`` into a frozen reference's), and reading them back with one-line errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from safeplay.errors import SafeplayError
from safeplay.models.policy_config import MODES

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "weights.safetensors"
META_FILE = "policy.json"


def write_weights(directory: Path, tensors: dict[str, "torch.Tensor"]) -> None:
    """Write ``tensors`` as ``directory/weights.safetensors`` (the folder is created)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})


def read_weights(directory: Path, device: "torch.device") -> dict[str, "torch.Tensor"]:
    """The tensors of ``directory/weights.safetensors``, on ``device``."""
    from safetensors.torch import load_file

    return load_file(str(directory / WEIGHTS_FILE), device=str(device))


def write_role_meta(directory: Path, meta: dict) -> None:
    """Write the policy.json that ``read_role_meta`` reads."""
    (directory / META_FILE).write_text(json.dumps(meta, indent=2))


def read_role_meta(directory: Path) -> dict:
    """The policy.json that ``save_role`` writes next to the weights."""
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except FileNotFoundError:
        raise SafeplayError(f"{directory} holds no saved role weights ({META_FILE} missing)") from None
    except (OSError, ValueError) as e:
        raise SafeplayError(f"cannot read {directory / META_FILE}: {e}") from None
    if not isinstance(meta, dict) or meta.get("mode") not in MODES:
        raise SafeplayError(f"{directory / META_FILE} is not a safeplay role description")
    if not (directory / WEIGHTS_FILE).is_file():
        raise SafeplayError(f"{directory} has no {WEIGHTS_FILE}")
    return meta
