"""Turn recipe + preset + config file + overrides into a validated ``TrainConfig`` and a run folder."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from safeplay.config import ConfigError, load_config, read_yaml
from safeplay.engine.config import RECIPES, TrainConfig

PRESETS = ("cpu-smoke", "cpu-demo", "gpu-8b", "gpu-8b-llama")


def _recipe_dir() -> Path:
    return Path(str(resources.files("safeplay.recipes")))


def config_layers(recipe: str, preset: str | None, config_file: str | None = None) -> list[dict]:
    if recipe not in RECIPES:
        raise ConfigError(f"recipe: {recipe!r} is not a recipe; choose one of {', '.join(RECIPES)}")
    root = _recipe_dir()
    layers = [read_yaml(root / f"{recipe.replace('-', '_')}.yaml")]
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"preset: {preset!r} is not a preset; choose one of {', '.join(PRESETS)}")
        layers.append(read_yaml(root / "presets" / f"{preset}.yaml"))
        specific = root / "presets" / recipe.replace("-", "_") / f"{preset}.yaml"
        if specific.is_file():
            layers.append(read_yaml(specific))
    if config_file:
        layers.append(read_yaml(config_file))
    layers.append({"recipe": recipe})
    return layers


def resolve_config(
    recipe: str, preset: str | None = None, config_file: str | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    return load_config(TrainConfig, config_layers(recipe, preset, config_file), overrides)


def default_run_name(cfg: TrainConfig, preset: str | None) -> str:
    parts = [cfg.recipe] + ([preset] if preset else []) + [time.strftime("%Y%m%d-%H%M%S")]
    return "-".join(parts)
