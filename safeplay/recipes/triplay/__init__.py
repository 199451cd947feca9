"""TriPlay-RL (papers.md §3): Red, Blue and an evaluator that learns to judge, trained one phase at a time."""

from safeplay.recipes.triplay.recipe import TriPlay

RECIPE = TriPlay

__all__ = ["RECIPE", "TriPlay"]
