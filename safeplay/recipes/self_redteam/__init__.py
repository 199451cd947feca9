"""Self-RedTeam (papers.md §1): one model plays attacker and defender, zero- or general-sum rewards."""

from safeplay.recipes.self_redteam.recipe import SelfRedTeam

RECIPE = SelfRedTeam

__all__ = ["RECIPE", "SelfRedTeam"]
