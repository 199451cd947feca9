"""Turn recipe + preset + config file + overrides into a validated run config and a run folder.

Layers, later ones winning: the recipe's ``recipe.yaml``, the shared preset (``safeplay/recipes/presets/``), the
recipe's part of that preset (``presets/`` beside the recipe's code), the user's config file, ``recipe: NAME``,
then ``--set`` overrides. The result is the recipe's ``config_class`` (``TrainConfig`` or its subclass)."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from safeplay.config import ConfigError, load_config, parse_override, read_yaml
from safeplay.engine.config import TrainConfig
from safeplay.errors import SafeplayError
from safeplay.recipes import recipe_class, recipe_names


def _shared_presets() -> Path:
    return Path(str(resources.files("safeplay.recipes"))) / "presets"


def preset_names() -> list[str]:
    """The shared presets (``cpu-smoke``, ``cpu-demo``, ``gpu-8b``, …): the YAML files of the presets folder."""
    return sorted(p.stem for p in _shared_presets().glob("*.yaml"))


def _recipe(name: str):
    try:
        return recipe_class(name)
    except SafeplayError:
        raise ConfigError(f"recipe: {name!r} is not a recipe; choose one of {', '.join(recipe_names())}") from None


def config_layers(recipe: str, preset: str | None, config_file: str | None = None) -> list[dict]:
    cls = _recipe(recipe)
    own = cls.config_file()
    layers = [read_yaml(own)] if own else []
    if preset:
        if preset not in preset_names():
            raise ConfigError(f"preset: {preset!r} is not a preset; choose one of {', '.join(preset_names())}")
        layers.append(read_yaml(_shared_presets() / f"{preset}.yaml"))
        specific = cls.preset_file(preset)
        if specific:
            layers.append(read_yaml(specific))
    if config_file:
        layers.append(read_yaml(config_file))
    layers.append({"recipe": recipe})
    return layers


def resolve_config(
    recipe: str, preset: str | None = None, config_file: str | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    layers = config_layers(recipe, preset, config_file)
    keys = [k for layer in layers for k in layer] + [parse_override(o)[0][0] for o in overrides or []]
    for key in keys:
        owner = _owner_of_section(key, recipe)
        if owner:
            dotted = next((o.split("=", 1)[0] for o in overrides or [] if o.split(".", 1)[0] == key), key)
            raise ConfigError(f"{dotted}: a setting of recipe {owner}, and this run's recipe is {recipe} "
                              f"(--recipe {owner} to use it)")
    return load_config(_recipe(recipe).config_class, layers, overrides)


def _owner_of_section(key: str, recipe: str) -> str | None:
    """The other shipped recipe whose own settings include top-level ``key`` (None: ``recipe`` has it, or nobody)."""
    own = _recipe(recipe).config_class.__dataclass_fields__
    if key in own:
        return None
    for name in recipe_names():
        try:
            if name != recipe and key in recipe_class(name).config_class.__dataclass_fields__:
                return name
        except Exception:  # a broken plugin must not hide the real error
            continue
    return None


def _other_recipes_sections(data: dict[str, Any], recipe: str) -> list[str]:
    """Top-level keys of ``data`` that are another recipe's own settings. Run folders written before the recipes
    owned their settings hold every recipe's section; a resumed run reads only its own."""
    return [k for k in data if _owner_of_section(k, recipe)]


def load_run_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """A run folder's resolved ``config.yaml`` (what ``--resume`` reads back), with ``overrides`` on top."""
    data = read_yaml(path)
    recipe = str(data.get("recipe", "self-redteam"))
    for key in _other_recipes_sections(data, recipe):
        data.pop(key)
    return load_config(_recipe(recipe).config_class, [data], overrides)


def default_run_name(cfg: TrainConfig, preset: str | None) -> str:
    parts = [cfg.recipe] + ([preset] if preset else []) + [time.strftime("%Y%m%d-%H%M%S")]
    return "-".join(parts)
