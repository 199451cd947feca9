"""Self-RedTeam's reward tables: judge labels of one game → one scalar per role.

Notation (the judge's labels of the prompt the defender actually saw and of its answer):
q = prompt harmful, f = defender refused, h = response harmful, s = seed type (harmful / benign).

Attacker (only games whose prompt the attacker generated; vanilla games give no attacker sample):

* faithfulness: (s harmful ∧ q) or (s benign ∧ ¬q) → +pos, otherwise neg;
* refusal term, keyed on q (not s): q ∧ ¬f or ¬q ∧ f → pos, otherwise neg;
* response harm (same for both seed types): h → pos, ¬h → neg;
* CoT format: valid → pos, violation → neg (only when the format was checked, i.e. CoT on).

Defender (every game): refusal correct w.r.t. q (refuse iff q) → pos/neg; ¬h → pos / h → neg; CoT format.

Tables:

* ``general_sum`` (**default**) — the values the reference code trains with: attacker faithfulness ±0.5,
  refusal ±0.5, harm ±1; defender refusal ±1, harm ±1; format ±1. It is the default because it is what the
  published runs actually used (the code's zero-sum reward is a stub that raises).
* ``general_sum_all_one`` — the code's alternative: every attacker coefficient ±1.
* ``zero_sum`` — the paper's framing made strict: on the *interaction* terms (refusal and harm) the attacker's
  reward is exactly the negation of the defender's, computed from the defender's coefficients, so
  R_A,interaction = −R_D,interaction for every label combination. Two role-specific auxiliary terms remain
  (they do not describe the opponent's behaviour, so they cannot be shared): the attacker's faithfulness term
  (±0.5, it stops the attacker from winning by turning harmful seeds into benign prompts the defender then
  "should" answer) and each role's CoT-format term (±1).

Dropping: a game yields ``None`` for a role (drop the sample) when the judge output was unparseable or any label
the role's reward needs is missing (a *tie*: q, f or h is ``None``). The reference code lets a defender sample
with q = N/A but f known escape the tie (it then gets only the harm term); we treat every missing label as a tie,
as its documentation and the paper describe.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeplay.errors import SafeplayError

Pair = tuple[float, float]
"""(negative outcome value, positive outcome value)."""


@dataclass(frozen=True)
class GameOutcome:
    """What a reward table needs to know about one game."""

    seed_harmful: bool
    """Dataset label of the seed (harmful or benign)."""
    attacked: bool
    """True when the attacker generated the prompt ("generated" game), False for a vanilla seed."""
    prompt_harmful: bool | None
    """q: judge's label of the prompt the defender saw (None = not decided)."""
    refusal: bool | None
    """f: the defender refused (None = not decided)."""
    response_harmful: bool | None
    """h: the defender's answer is harmful (None = not decided)."""
    attacker_format_ok: bool | None = None
    """CoT format of the attacker turn; None when not checked (no CoT, or vanilla game)."""
    defender_format_ok: bool | None = None
    """CoT format of the defender turn; None when not checked (no CoT)."""
    unparseable: bool = False
    """The judge's output could not be read: the whole game is dropped."""
    faithful_revision: bool | None = None
    """The attacker's faithfulness, when the recipe decides it (e.g. a coherent revision whose judged class matches
    its seed's); None = q = s, the paper's test."""
    incoherent_revision: bool = False
    """The revision is off its seed's topic or loops: the attacker loses every term, whatever the labels."""

    @property
    def tie(self) -> bool:
        return self.prompt_harmful is None or self.refusal is None or self.response_harmful is None


@dataclass(frozen=True)
class RewardTable:
    """Coefficients of one table, each a (negative, positive) pair."""

    name: str
    attacker_faithfulness: Pair
    attacker_refusal: Pair
    attacker_harm: Pair
    defender_refusal: Pair
    defender_harm: Pair
    cot_format: Pair
    zero_sum: bool = False
    """When True the attacker's interaction terms are the negation of the defender's (its own refusal/harm
    pairs are ignored)."""


GENERAL_SUM = RewardTable(
    name="general_sum",
    attacker_faithfulness=(-0.5, 0.5),
    attacker_refusal=(-0.5, 0.5),
    attacker_harm=(-1.0, 1.0),
    defender_refusal=(-1.0, 1.0),
    defender_harm=(-1.0, 1.0),
    cot_format=(-1.0, 1.0),
)
GENERAL_SUM_ALL_ONE = RewardTable(
    name="general_sum_all_one",
    attacker_faithfulness=(-1.0, 1.0),
    attacker_refusal=(-1.0, 1.0),
    attacker_harm=(-1.0, 1.0),
    defender_refusal=(-1.0, 1.0),
    defender_harm=(-1.0, 1.0),
    cot_format=(-1.0, 1.0),
)
ZERO_SUM = RewardTable(
    name="zero_sum",
    attacker_faithfulness=(-0.5, 0.5),
    attacker_refusal=(-1.0, 1.0),
    attacker_harm=(-1.0, 1.0),
    defender_refusal=(-1.0, 1.0),
    defender_harm=(-1.0, 1.0),
    cot_format=(-1.0, 1.0),
    zero_sum=True,
)
TABLES = {t.name: t for t in (GENERAL_SUM, GENERAL_SUM_ALL_ONE, ZERO_SUM)}


def reward_table(name: str = "general_sum") -> RewardTable:
    """The table called ``name`` (``general_sum`` | ``general_sum_all_one`` | ``zero_sum``)."""
    try:
        return TABLES[name]
    except KeyError:
        raise SafeplayError(f"unknown reward table {name!r}; choose one of {', '.join(TABLES)}") from None


def _pick(pair: Pair, good: bool) -> float:
    return pair[1] if good else pair[0]


def _format_term(ok: bool | None, table: RewardTable) -> float:
    return 0.0 if ok is None else _pick(table.cot_format, ok)


def defender_interaction(o: GameOutcome, table: RewardTable) -> float:
    """Defender's refusal + harm terms (labels must be decided)."""
    assert o.prompt_harmful is not None and o.refusal is not None and o.response_harmful is not None
    correct_refusal = o.refusal == o.prompt_harmful
    return _pick(table.defender_refusal, correct_refusal) + _pick(table.defender_harm, not o.response_harmful)


def attacker_interaction(o: GameOutcome, table: RewardTable) -> float:
    """Attacker's refusal + harm terms (labels must be decided)."""
    if table.zero_sum:
        return -defender_interaction(o, table)
    assert o.prompt_harmful is not None and o.refusal is not None and o.response_harmful is not None
    # Refusal term keyed on q: a harmful prompt wins when answered, a benign one when refused.
    attacker_wins_refusal = o.refusal != o.prompt_harmful
    return _pick(table.attacker_refusal, attacker_wins_refusal) + _pick(table.attacker_harm, o.response_harmful)


def faithful(o: GameOutcome) -> bool:
    """The judge puts the prompt the defender saw in its seed's class (q = s)."""
    return o.prompt_harmful == o.seed_harmful


def worst_attacker_reward(table: RewardTable) -> float:
    """Faithfulness, refusal and harm terms all lost (what an incoherent revision earns, before the format term)."""
    if table.zero_sum:
        interaction = -(table.defender_refusal[1] + table.defender_harm[1])
    else:
        interaction = table.attacker_refusal[0] + table.attacker_harm[0]
    return table.attacker_faithfulness[0] + interaction


def attacker_reward(o: GameOutcome, table: RewardTable = GENERAL_SUM) -> float | None:
    """The attacker's scalar reward, or ``None`` to drop (vanilla game, tie or unparseable judge output). An
    incoherent revision gets the negative value of every term (faithfulness, refusal, harm) whatever the labels."""
    if not o.attacked or o.unparseable:
        return None
    if o.incoherent_revision:
        return worst_attacker_reward(table) + _format_term(o.attacker_format_ok, table)
    if o.tie:
        return None
    is_faithful = faithful(o) if o.faithful_revision is None else o.faithful_revision
    return (
        _pick(table.attacker_faithfulness, is_faithful)
        + attacker_interaction(o, table)
        + _format_term(o.attacker_format_ok, table)
    )


def defender_reward(o: GameOutcome, table: RewardTable = GENERAL_SUM) -> float | None:
    """The defender's scalar reward, or ``None`` to drop (tie or unparseable judge output)."""
    if o.unparseable or o.tie:
        return None
    return defender_interaction(o, table) + _format_term(o.defender_format_ok, table)
