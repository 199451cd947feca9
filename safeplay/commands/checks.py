"""Checks of command-line values shared by the commands, run before any model, judge or folder is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError


def at_least(flag: str, value: float | None, low: float) -> None:
    """``value`` (None = not given) must be >= ``low``."""
    if value is not None and value < low:
        raise SafeplayError(f"{flag} must be >= {low:g}, got {value:g}")


def folder_path(flag: str, path: str | Path | None) -> None:
    """``path`` (None = not given) may be created as a folder: it is not an existing file."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise SafeplayError(f"{flag} {path} is a file, not a folder")


def run_folder(flag: str, path: str | Path) -> None:
    """``path`` is a training run folder (it holds checkpoints/)."""
    p = Path(path)
    if not p.exists():
        raise SafeplayError(f"{flag} {path}: folder not found")
    if not (p / "checkpoints").is_dir():
        raise SafeplayError(f"{flag} {path}: not a training run folder (no checkpoints/)")


def model_flags(dtype: str | None, device: str | None) -> None:
    """``--dtype`` and ``--device`` name a dtype and a device ``safeplay.models.load_model`` knows."""
    from safeplay.config import ConfigError
    from safeplay.models.loading import DTYPES, ModelConfig

    if dtype is not None and dtype not in DTYPES:
        raise SafeplayError(f"--dtype {dtype!r} is not allowed; choose one of {', '.join(DTYPES)}")
    if device is not None:
        try:
            ModelConfig(device=device)
        except ConfigError as e:
            raise SafeplayError(f"--{e}") from None


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` pairs as judge options (each value read as YAML, else kept as text)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SafeplayError(f"judge option {pair!r} must look like KEY=VALUE")
        try:
            out[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            out[key] = value  # not YAML: the plain string
    return out
