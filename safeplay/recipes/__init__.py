"""Recipes and where the engine finds them.

A recipe is a package here (``safeplay/recipes/<name>/``) that holds everything of its own: ``recipe.py`` (a
``Recipe`` subclass: who plays, how one step's games are played and rewarded, who learns), ``rewards.py``,
``config.py`` (its ``TrainConfig`` subclass, when it has settings of its own), ``recipe.yaml`` (its defaults) and
``presets/<preset>.yaml`` (its part of a shared preset). Its ``__init__`` exports the class as ``RECIPE``. The
package ``self_redteam`` is the recipe ``self-redteam``. The loop itself is ``engine.trainer``; the engine reads
a recipe's config class, YAML, presets, ablation arms and hooks from the class, so a new recipe touches no engine
file.

Recipes that live outside this package are added with :func:`register_recipe` (a plugin, a test) or through the
``safeplay.recipes`` entry-point group of an installed distribution (``name = "module:Class"``).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from safeplay.errors import SafeplayError

if TYPE_CHECKING:
    from safeplay.recipes.base import Recipe

ENTRY_POINT_GROUP = "safeplay.recipes"
_registered: dict[str, type["Recipe"]] = {}


@lru_cache(maxsize=1)
def _packages() -> dict[str, str]:
    """Recipe name → module of the packages shipped here (read from the folder, nothing imported)."""
    return {m.name.replace("_", "-"): f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.ispkg}


@lru_cache(maxsize=1)
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register_recipe(cls: type["Recipe"]) -> type["Recipe"]:
    """Make ``cls`` (a ``Recipe`` subclass with a ``name``) a recipe; usable as a class decorator."""
    if not getattr(cls, "name", ""):
        raise SafeplayError(f"{cls.__name__} has no recipe name (set the class attribute `name`)")
    _registered[cls.name] = cls
    return cls


def unregister_recipe(name: str) -> None:
    """Forget a recipe added with :func:`register_recipe` (a test's, say)."""
    _registered.pop(name, None)


def recipe_names() -> list[str]:
    """Every known recipe: shipped, registered and installed as plugins."""
    return sorted({*_packages(), *_plugins(), *_registered})


def recipe_class(name: str) -> type["Recipe"]:
    """The ``Recipe`` subclass called ``name`` (its module is imported on first use)."""
    if name in _registered:
        return _registered[name]
    if name in _packages():
        cls = importlib.import_module(_packages()[name]).RECIPE
    elif name in _plugins():
        module, attr = _plugins()[name].split(":")
        cls = getattr(importlib.import_module(module), attr)
    else:
        raise SafeplayError(f"{name!r} is not a recipe; choose one of {', '.join(recipe_names())}")
    if cls.name != name:
        raise SafeplayError(f"recipe {name!r} resolves to a class named {cls.name!r}")
    return cls
