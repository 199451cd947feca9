"""The constructed examples of guard-mini's data: refusal swaps, adversarial refusal swaps, context swaps, and
keyword-hacked / prefixed answers (each described in ``guard_data``'s docstring), with the counts they are drawn in.

Each takes a side's examples and a random stream and returns new examples; ``guard_data.build_guard_data`` decides
which side gets which, in which order, and with which phrase lists (``guard_phrases``).
"""

from __future__ import annotations

import random
from pathlib import Path

from safeplay.judges.guard_examples import PromptExample, ResponseExample
from safeplay.judges.guard_phrases import TRAIN_SHORT_REFUSALS
from safeplay.judges.guard_sources import CONTEXT_SPLIT, read_csv

SWAPS = 800
"""Refusal swaps per side (train, dev); see ``guard_data``'s docstring."""
ADVERSARIAL_SWAPS = 800
"""Adversarial refusal swaps per side (train, dev; the test side gets its own held-out set of this size)."""
CONTEXT_SWAPS = 400
"""Context swaps per side (train; dev gets a quarter): see ``guard_data``'s docstring."""


def refusal_swaps(responses: list[ResponseExample], prompts: list[PromptExample], rng: random.Random) -> list[ResponseExample]:
    """Prompts of one side paired with real XSTest refusals of that side (see ``guard_data``'s docstring)."""
    refusals = [r.response for r in responses if r.source == "xstest" and r.refusal is True and not r.hacked]
    plain = [p for p in prompts if not p.wrapped]
    if not refusals or not plain:
        return []
    picked = rng.sample(plain, min(SWAPS, len(plain)))
    return [ResponseExample(p.prompt, rng.choice(refusals), True, False, "refusal-swap", f"swap:{p.prompt}")
            for p in picked]


def side_refusals(responses: list[ResponseExample]) -> list[str]:
    """Real XSTest refusals of one side (not keyword-hacked)."""
    return [r.response for r in responses if r.source == "xstest" and r.refusal is True and not r.hacked]


def adversarial_refusal_swaps(responses: list[ResponseExample], prompts: list[PromptExample], rng: random.Random,
                              short: tuple[str, ...]) -> list[ResponseExample]:
    """Jailbreak prompts of one side (wrapped prompts, artifact attack prompts) paired with a real XSTest refusal
    of that side or, half of the time, one of the side's ``short`` refusals (see ``guard_data``'s docstring)."""
    refusals = side_refusals(responses)
    attacks = [p.prompt for p in prompts if p.wrapped]
    attacks += list(dict.fromkeys(r.prompt for r in responses if r.source == "jbb-artifacts"))
    if not refusals or not attacks:
        return []
    picked = rng.sample(attacks, min(ADVERSARIAL_SWAPS, len(attacks)))
    return [ResponseExample(p, rng.choice(short) if rng.random() < 0.5 else rng.choice(refusals), True, False,
                            "refusal-swap-adversarial", f"swap:{p}") for p in picked]


def context_swaps(root: Path, responses: dict[str, list[ResponseExample]], prompts: dict[str, list[PromptExample]],
                  rng: random.Random) -> dict[str, list[ResponseExample]]:
    """Context paragraph + request + a refusal or a complying answer, per side (see ``guard_data``'s docstring)."""
    from safeplay.data.benchmark_loaders import HARMBENCH_CONTEXT_SEPARATOR

    rows = [r for r in read_csv(root / "harmbench" / "harmbench_behaviors_text_val.csv")
            if r["FunctionalCategory"] == "contextual" and r["ContextString"].strip()]
    rng.shuffle(rows)
    cut = int(round(CONTEXT_SPLIT[0] * len(rows)))
    sides = {"train": rows[:cut], "dev": rows[cut:]}
    out: dict[str, list[ResponseExample]] = {}
    for side, side_rows in sides.items():
        refusals = side_refusals(responses[side]) + list(TRAIN_SHORT_REFUSALS)
        complying = [r.response for r in responses[side] if r.source == "xstest" and r.refusal is False and not r.hacked]
        requests = [p.prompt for p in prompts[side] if not p.wrapped]
        n = CONTEXT_SWAPS if side == "train" else CONTEXT_SWAPS // 4
        items = []
        for i in range(n if side_rows and requests and complying else 0):
            row = side_rows[i % len(side_rows)]
            request = row["Behavior"] if rng.random() < 0.5 else rng.choice(requests)
            prompt = row["ContextString"].strip() + HARMBENCH_CONTEXT_SEPARATOR + request
            if i % 2 == 0:
                items.append(ResponseExample(prompt, rng.choice(refusals), True, False, "context-swap", f"ctx:{side}:{i}"))
            else:
                items.append(ResponseExample(prompt, rng.choice(complying), False, None, "context-swap", f"ctx:{side}:{i}"))
        out[side] = items
    return out


def hack(ex: ResponseExample, opener: str) -> ResponseExample:
    return ResponseExample(ex.prompt, f"{opener} {ex.response}", False, ex.harmful, ex.source, ex.group, hacked=True)


def prefix(ex: ResponseExample, opener: str) -> ResponseExample:
    return ResponseExample(ex.prompt, f"{opener} {ex.response}", ex.refusal, ex.harmful, ex.source, ex.group,
                           hacked=True)


def compliant(ex: ResponseExample) -> bool:
    """A complying answer: labelled not-refusal, or a human-judged harmful jailbreak answer."""
    return ex.refusal is False or (ex.refusal is None and ex.harmful is True)
