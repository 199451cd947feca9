"""Safety Self-Play (papers.md §2): the attacker and defender with a judge score, and reflective experience replay."""

from safeplay.recipes.ssp.recipe import SafetySelfPlay

RECIPE = SafetySelfPlay

__all__ = ["RECIPE", "SafetySelfPlay"]
