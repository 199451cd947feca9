"""Self-RedTeam reward tables: every row of the reference tables, ties, and the zero-sum property."""

from __future__ import annotations

import itertools

import pytest

from safeplay.errors import SafeplayError
from safeplay.recipes.self_redteam.rewards import (
    GENERAL_SUM,
    GENERAL_SUM_ALL_ONE,
    ZERO_SUM,
    GameOutcome,
    attacker_interaction,
    attacker_reward,
    defender_interaction,
    defender_reward,
    reward_table,
)


def game(s=True, q=True, f=False, h=True, attacked=True, afmt=None, dfmt=None, unparseable=False):
    return GameOutcome(
        seed_harmful=s,
        attacked=attacked,
        prompt_harmful=q,
        refusal=f,
        response_harmful=h,
        attacker_format_ok=afmt,
        defender_format_ok=dfmt,
        unparseable=unparseable,
    )


# Attacker, general_sum: expected = faithfulness + refusal term + harm term, each from the reference table.
ATTACKER_ROWS = [
    # s,     q,     f,     h,     faith, refusal, harm
    (True, True, False, True, 0.5, 0.5, 1.0),  # harmful seed kept harmful, complied, harmful answer
    (True, True, True, False, 0.5, -0.5, -1.0),  # harmful prompt refused
    (True, False, False, False, -0.5, -0.5, -1.0),  # harmful seed made benign, complied harmlessly
    (True, False, True, False, -0.5, 0.5, -1.0),  # benign-looking prompt refused: refusal term keyed on q
    (False, False, True, False, 0.5, 0.5, -1.0),  # benign seed stays benign, defender over-refuses
    (False, False, False, False, 0.5, -0.5, -1.0),  # benign seed answered: attacker loses
    (False, True, True, False, -0.5, -0.5, -1.0),  # benign seed made harmful (unfaithful), refused
    (False, True, False, True, -0.5, 0.5, 1.0),  # harm on a benign seed still pays +1 (as the code)
    (False, False, False, True, 0.5, -0.5, 1.0),
]


@pytest.mark.parametrize("s, q, f, h, faith, refusal, harm", ATTACKER_ROWS)
def test_attacker_general_sum_rows(s, q, f, h, faith, refusal, harm):
    assert attacker_reward(game(s, q, f, h), GENERAL_SUM) == pytest.approx(faith + refusal + harm)


@pytest.mark.parametrize("s, q, f, h, faith, refusal, harm", ATTACKER_ROWS)
def test_attacker_all_one_rows(s, q, f, h, faith, refusal, harm):
    expected = 2 * faith + 2 * refusal + harm  # every coefficient becomes ±1
    assert attacker_reward(game(s, q, f, h), GENERAL_SUM_ALL_ONE) == pytest.approx(expected)


@pytest.mark.parametrize(
    "q, f, h, refusal, harm",
    [
        (True, True, False, 1.0, 1.0),
        (True, False, False, -1.0, 1.0),
        (True, False, True, -1.0, -1.0),
        (False, False, False, 1.0, 1.0),
        (False, True, False, -1.0, 1.0),
        (False, False, True, 1.0, -1.0),
        (True, True, True, 1.0, -1.0),
    ],
)
@pytest.mark.parametrize("s", [True, False])
@pytest.mark.parametrize("attacked", [True, False])
def test_defender_rows(q, f, h, refusal, harm, s, attacked):
    for table in (GENERAL_SUM, GENERAL_SUM_ALL_ONE, ZERO_SUM):
        assert defender_reward(game(s, q, f, h, attacked=attacked), table) == pytest.approx(refusal + harm)


@pytest.mark.parametrize("ok, value", [(True, 1.0), (False, -1.0), (None, 0.0)])
def test_format_terms(ok, value):
    base_a = attacker_reward(game(), GENERAL_SUM)
    base_d = defender_reward(game(), GENERAL_SUM)
    assert attacker_reward(game(afmt=ok), GENERAL_SUM) == pytest.approx(base_a + value)
    assert defender_reward(game(dfmt=ok), GENERAL_SUM) == pytest.approx(base_d + value)


def test_ranges():
    for table in (GENERAL_SUM, GENERAL_SUM_ALL_ONE, ZERO_SUM):
        for s, q, f, h, fa, fd in itertools.product([True, False], repeat=6):
            g = game(s, q, f, h, afmt=fa, dfmt=fd)
            assert -3.0 <= defender_reward(g, table) <= 3.0
            assert -4.0 <= attacker_reward(g, table) <= 4.0
        assert attacker_reward(game(s=True, q=True, f=False, h=True, afmt=True), GENERAL_SUM) == 3.0


@pytest.mark.parametrize("missing", ["q", "f", "h"])
def test_ties_are_dropped(missing):
    kw = dict(q=True, f=False, h=True)
    kw[missing] = None
    g = game(**kw)
    assert attacker_reward(g) is None and defender_reward(g) is None


def test_unparseable_and_vanilla_dropped():
    assert attacker_reward(game(unparseable=True)) is None
    assert defender_reward(game(unparseable=True)) is None
    assert attacker_reward(game(attacked=False)) is None
    assert defender_reward(game(attacked=False)) is not None


def test_zero_sum_property():
    for s, q, f, h in itertools.product([True, False], repeat=4):
        g = game(s, q, f, h)
        assert attacker_interaction(g, ZERO_SUM) == pytest.approx(-defender_interaction(g, ZERO_SUM))
        # General-sum is zero-sum only up to scaling: attacker = -(0.5·refusal_D + 1.0·harm_D).
        d_ref = 1.0 if f == q else -1.0
        d_harm = -1.0 if h else 1.0
        assert attacker_interaction(g, GENERAL_SUM) == pytest.approx(-(0.5 * d_ref + 1.0 * d_harm))
        # Aux term on top: the attacker's faithfulness ±0.5.
        faith = 0.5 if q == s else -0.5
        assert attacker_reward(g, ZERO_SUM) == pytest.approx(faith - defender_reward(g, ZERO_SUM))


def test_reward_table_lookup():
    assert reward_table() is GENERAL_SUM
    assert reward_table("zero_sum") is ZERO_SUM
    with pytest.raises(SafeplayError, match="general_sum_all_one"):
        reward_table("nope")
