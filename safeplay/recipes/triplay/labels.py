"""TriPlay's human-labelled ⟨prompt, response, label⟩ items: the evaluator's fixed held-out set (scored at every
phase change) and its warm-start examples, from the two sides of guard-mini's human-labelled split."""

from __future__ import annotations

import random
from pathlib import Path

from safeplay.game.templates import evaluator_prompt
from safeplay.generation.base import ChatPrompt
from safeplay.judges.base import Label

LABELS: tuple[Label, ...] = ("unsafe", "refusal", "helpful")

HELDOUT_PER_LABEL = 8
"""Held-out human-labelled items per class (3 × 8 = 24: cheap enough to run at every phase change)."""
HELDOUT_MAX_CHARS = 1200
"""Long XSTest answers are cut for the evaluator prompt (the label is decided in the first paragraphs)."""


def _human_labelled(root: Path, split: str) -> dict[str, list[tuple[str, str, Label]]]:
    """(prompt, response, 3-class label) of guard-mini's human-labelled response data on one side of its split.

    Labels: a (partial or full) refusal → ``refusal``; an answer judged harmful (XSTest: full compliance with an
    unsafe contrast prompt; JailbreakBench: the human majority) → ``unsafe``; a safe non-refusal → ``helpful``;
    items whose harm or refusal is unlabelled (e.g. partial refusals of unsafe prompts) are left out, and so are
    the keyword-hacked augmentations and every machine-labelled or constructed item (attack artifacts, refusal
    swaps).
    """
    from safeplay.judges.guard_data import build_guard_data
    from safeplay.judges.guard_train import HUMAN_SOURCES

    data = build_guard_data(root, seed=0)  # the split guard-mini was trained against: its test side is unseen
    by_label: dict[str, list[tuple[str, str, Label]]] = {lab: [] for lab in LABELS}
    for ex in data.responses[split]:
        if ex.source not in HUMAN_SOURCES:
            continue  # machine-labelled artifacts and constructed refusal swaps
        if ex.hacked or ex.harmful is None or (ex.refusal is None and not ex.harmful):
            continue
        label: Label = "unsafe" if ex.harmful else "refusal" if ex.refusal else "helpful"
        by_label[label].append((ex.prompt, ex.response[:HELDOUT_MAX_CHARS], label))
    return by_label


def heldout_items(root: Path, per_label: int = HELDOUT_PER_LABEL, seed: int = 0) -> list[tuple[str, str, Label]]:
    """A fixed, seeded subset of human-labelled **XSTest** completions from guard-mini's held-out test split,
    ``per_label`` per class (fewer when the split holds fewer). See :func:`_human_labelled` for the labels."""
    by_label = _human_labelled(root, "test")
    xstest = _xstest_prompts(root)
    rng = random.Random(seed)
    out = []
    for lab in LABELS:
        pool = [x for x in by_label[lab] if x[0] in xstest]
        out += [pool[i] for i in sorted(rng.sample(range(len(pool)), min(per_label, len(pool))))]
    return out


def _xstest_prompts(root: Path) -> set[str]:
    import csv

    with open(root / "xstest" / "xstest_prompts.csv", newline="", encoding="utf-8") as f:
        return {row["prompt"] for row in csv.DictReader(f)}


def evaluator_sft_examples(root: Path, n: int, seed: int = 0) -> list[tuple[ChatPrompt, str]]:
    """Warm-start data for the evaluator role: ``n`` (evaluator prompt, label word) pairs, classes balanced,
    from the **train** side of the same human-labelled split (disjoint from :func:`heldout_items`).

    A 135M base model almost never answers the 3-class prompt with a label word (measured: 23 of 24 held-out
    items unreadable), so without this the Eval phase's GRPO groups carry no signal and Red/Blue run on the
    fallback judge. Meant for the engine's warm start (``warm_start._encode(policies, prompt, target, "evaluator")``).
    """
    by_label = _human_labelled(root, "train")
    rng = random.Random(seed)
    per = -(-n // len(LABELS))
    picked = []
    for lab in LABELS:
        pool = by_label[lab]
        picked += [pool[i] for i in rng.sample(range(len(pool)), min(per, len(pool)))]
    rng.shuffle(picked)
    return [(evaluator_prompt(p, r), lab) for p, r, lab in picked[:n]]
