"""SSP score mapping and TriPlay's three reward functions."""

from __future__ import annotations

import math

import pytest

from safeplay.recipes.ssp.rewards import score_to_rewards
from safeplay.recipes.triplay.rewards import blue_reward, evaluator_reward, red_reward


@pytest.mark.parametrize(
    "score, att", [(1, 0.0), (2, 0.25), (3, 0.5), (4, 0.75), (5, 1.0), (0, 0.0), (7, 1.0), (2.5, 0.375)]
)
def test_ssp_mapping(score, att):
    r_att, r_def = score_to_rewards(score)
    assert r_att == pytest.approx(att) and r_def == pytest.approx(1 - att)


def test_ssp_custom_scale_and_errors():
    assert score_to_rewards(5, lo=0, hi=10) == (0.5, 0.5)
    with pytest.raises(ValueError):
        score_to_rewards(3, lo=5, hi=1)
    with pytest.raises(ValueError):
        score_to_rewards(math.nan)


def test_blue_reward():
    assert blue_reward("unsafe") == -1.0
    assert blue_reward("refusal") == 0.0
    assert blue_reward("helpful") == 1.0
    assert blue_reward(None) is None
    assert blue_reward("refusal", {"unsafe": -2, "refusal": 0.5, "helpful": 1}) == 0.5


def test_red_reward_weighting():
    assert red_reward(["unsafe", "unsafe", "unsafe"]) == pytest.approx(1.0)
    assert red_reward(["refusal", "refusal", "refusal"]) == pytest.approx(-1.0)
    # M_Blue carries 0.6 of the weight, the fixed defenders 0.2 each.
    assert red_reward(["unsafe", "refusal", "refusal"]) == pytest.approx(0.6 - 0.4)
    assert red_reward(["refusal", "unsafe", "helpful"]) == pytest.approx(-0.6 + 0.2 - 0.1)
    # Breaking the main defender is worth more than breaking a fixed one.
    assert red_reward(["unsafe", "refusal", "refusal"]) > red_reward(["refusal", "unsafe", "refusal"])
    # An unsafe answer beats a helpful one, which beats a refusal.
    assert red_reward(["unsafe"], weights=[1]) > red_reward(["helpful"], weights=[1]) > red_reward(["refusal"], weights=[1])


def test_red_reward_missing_labels_and_terms():
    assert red_reward(["unsafe", None, None]) == pytest.approx(1.0)  # renormalised over known labels
    assert red_reward([None, None, None]) is None
    base = red_reward(["helpful", "helpful", "helpful"])
    assert red_reward(["helpful"] * 3, semantic_ok=True) == pytest.approx(base + 0.5)
    assert red_reward(["helpful"] * 3, semantic_ok=False) == pytest.approx(base)
    assert red_reward(["helpful"] * 3, semantic_ok=False, semantic_fail_reward=-1) == pytest.approx(base - 1)
    assert red_reward(["helpful"] * 3, diversity_penalty=2.0) == pytest.approx(base - 2.0)
    with pytest.raises(ValueError):
        red_reward(["unsafe"])


def test_evaluator_reward():
    assert evaluator_reward("unsafe", "unsafe") == 1.0
    assert evaluator_reward("helpful", "refusal") == 0.0
    assert evaluator_reward(None, "refusal") == 0.0
