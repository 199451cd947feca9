"""guard-mini v2's data: wrapped prompts in many jailbreak styles, long prompts, off-topic and incoherent answers.

``guard_data`` builds the first split and its augmentations; ``augment`` adds these to it, from random streams of
their own (the first split and its test sets stay exactly as they were, so old and new weights are scored on the
same held-out items). Styles come from ``guard_frames``: training styles on the train and dev sides, held-out
styles for the test sets only.

Prompt output (prompt_harmful), train and dev sides:

* **styled prompts**: ``STYLED_FRACTION`` of the side's plain prompts set in one to three training styles
  (``guard_frames.compose``), with the request's label;
* **contextual prompts**: HarmBench *val*'s context paragraphs (split as the context swaps split them) followed by
  their own harmful behaviour, or by a benign prompt of the side (then benign).

Response outputs, train side only (labels: refusal, response_harmful; ``None`` = not labelled):

* **styled pairs**: every human-labelled XSTest pair of the side with its prompt set in training styles — the
  answer's labels do not change with the wrapping, so a long role-play prompt followed by a complying answer is
  not a refusal, and followed by a refusal is one;
* **off-topic answers**: a prompt of the side followed by a complying XSTest answer to *another* prompt:
  refusal False, harm False where that answer was harmless (else unlabelled). An answer that does not engage with
  the request is not a refusal unless it says it refuses;
* **incoherent answers**: complying XSTest answers broken up (words shuffled; halves of two answers spliced; one
  phrase looped; fragments of several answers strung together), after their prompt or another: refusal False,
  harm unlabelled;
* **the bundled model's answers** (``bundled_answers``; training-side prompts): hot-sampled, greedy and
  safety-prompted answers that nowhere say they refuse (``answer_checks.has_refusal_wording`` over the whole
  answer): refusal False, harm False to benign prompts (unlabelled to harmful ones). The rest stay out: read, the
  few that say they refuse are as often gibberish around a refusal phrase as refusals;
* **jailbroken artifacts**: JailbreakBench attack-artifact answers judged jailbroken (harmful) get refusal False;
* **styled refusals**: styled and contextual prompts of the side followed by a real refusal of the side (XSTest's,
  or half of the time a short one): refusal True, harm False.

Held-out test sets (calibration rows):

* ``test_wrapped_styles``: every test prompt set in one held-out style (prompt_harmful);
* ``test_off_topic``: test prompts followed by complying XSTest *test* answers to other prompts (refusal False).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from safeplay.judges.guard_examples import GuardData, PromptExample, ResponseExample

STYLED_FRACTION = 0.6
"""Share of a side's plain prompts that also appear in training styles."""
CONTEXT_REQUESTS = 4
"""Prompts per HarmBench val context: half its own behaviour, half a benign prompt of the side."""
OFF_TOPIC = 600
INCOHERENT = 400
STYLED_REFUSALS = 600
TEST_OFF_TOPIC = 300


def _complying(responses: list["ResponseExample"]) -> list["ResponseExample"]:
    return [r for r in responses if r.source == "xstest" and r.refusal is False and not r.hacked and r.response.strip()]


def _corrupt(text: str, other: str, rng: random.Random) -> str:
    """One of four ways of breaking an answer (module docstring)."""
    words, others = text.split(), other.split()
    kind = rng.randrange(4)
    if kind == 0 or len(words) < 12:
        rng.shuffle(words)
        return " ".join(words[:80])
    if kind == 1:
        return " ".join(words[: len(words) // 2] + others[len(others) // 2:][:60])
    if kind == 2:
        a = rng.randrange(0, max(1, len(words) - 8))
        phrase = " ".join(words[a:a + rng.randint(3, 8)])
        return " ".join([phrase] * rng.randint(4, 9))
    pieces = []
    for src in (words, others, words):
        a = rng.randrange(0, max(1, len(src) - 6))
        pieces.append(" ".join(src[a:a + rng.randint(3, 7)]))
    return "\n".join(f"{i + 1}. {p}" for i, p in enumerate(pieces))


def _bundled_label(answer: str, harmful_prompt: bool) -> tuple[bool | None, bool | None] | None:
    """(refusal, harmful) for one of the bundled model's training answers by the rules of the module docstring;
    None = left out."""
    from safeplay.rewards.answer_checks import has_refusal_wording

    text = answer.strip()
    if not text:
        return None
    if not has_refusal_wording(text, window=len(text)):
        return False, (None if harmful_prompt else False)
    return None


def augment(root: Path, data: "GuardData", seed: int, with_bundled: bool = True) -> dict[str, Any]:
    """Add the module docstring's examples and test sets to ``data`` (in place); returns their description."""
    from safeplay.data.benchmark_loaders import HARMBENCH_CONTEXT_SEPARATOR
    from safeplay.judges.guard_examples import PromptExample, ResponseExample
    from safeplay.judges.guard_frames import compose, fill, held_out_styles, pick, train_styles
    from safeplay.judges.guard_phrases import TRAIN_SHORT_REFUSALS
    from safeplay.judges.guard_sources import contextual_rows
    from safeplay.judges.guard_swaps import side_refusals
    from safeplay.rewards.answer_checks import has_refusal_wording

    rng = random.Random(seed + 31)
    styles = train_styles(root)
    added: dict[str, Counter[str]] = {"prompts": Counter(), "responses": Counter()}
    styled: dict[str, list[PromptExample]] = {}
    for side in ("train", "dev"):
        plain = [p for p in data.prompts[side] if not p.wrapped]
        picked = rng.sample(plain, int(STYLED_FRACTION * len(plain)))
        items = [PromptExample(compose(p.prompt, styles, rng), p.harmful, p.source, True) for p in picked]
        benign = [p.prompt for p in plain if not p.harmful]
        for row in contextual_rows(root, side, seed):
            for k in range(CONTEXT_REQUESTS):
                own = k % 2 == 0
                request = row["Behavior"] if own else rng.choice(benign)
                items.append(PromptExample(row["ContextString"].strip() + HARMBENCH_CONTEXT_SEPARATOR + request, own,
                                           "harmbench-val-context", True))
        data.prompts[side] += items
        styled[side] = items
        added["prompts"][side] += len(items)

    train = data.responses["train"]
    new: list[ResponseExample] = []
    xs = [r for r in train if r.source == "xstest" and not r.hacked]
    new += [ResponseExample(compose(r.prompt, styles, rng), r.response, r.refusal, r.harmful, "styled-pair", r.group)
            for r in xs]
    complying = _complying(train)
    prompts = [p.prompt for p in data.prompts["train"]]
    for _ in range(OFF_TOPIC):
        ans = rng.choice(complying)
        prompt = rng.choice(prompts)
        new.append(ResponseExample(prompt, ans.response, False, False if ans.harmful is False else None, "off-topic",
                                   f"offtopic:{ans.group}"))
    n_incoherent = 0
    while n_incoherent < INCOHERENT:
        a, b = rng.choice(complying), rng.choice(complying)
        text = _corrupt(a.response, b.response, rng)
        if not text.strip() or has_refusal_wording(text, window=len(text)):
            continue
        prompt = a.prompt if rng.random() < 0.5 else rng.choice(prompts)
        new.append(ResponseExample(prompt, text, False, None, "incoherent", f"incoherent:{a.group}"))
        n_incoherent += 1
    bundled = Counter()
    if with_bundled:
        from safeplay.judges.bundled_answers import TRAIN_FILE, joined

        for item, row in joined(root, "train", TRAIN_FILE, seed, data):
            label = _bundled_label(row["answer"], item.harmful)
            if label is None:
                bundled[f"{row['kind']}:left out"] += 1
                continue
            bundled[f"{row['kind']}:refusal={label[0]}"] += 1
            new.append(ResponseExample(item.prompt, row["answer"].strip(), label[0], label[1], f"bundled-{row['kind']}",
                                       f"bundled:{item.id}"))
    refusals = side_refusals(train)
    for p in rng.sample(styled["train"], min(STYLED_REFUSALS, len(styled["train"]))):
        text = rng.choice(TRAIN_SHORT_REFUSALS) if rng.random() < 0.5 else rng.choice(refusals)
        new.append(ResponseExample(p.prompt, text, True, False, "styled-refusal", f"swap:{p.prompt}"))
    relabelled = 0
    for i, r in enumerate(train):
        if r.source == "jbb-artifacts" and r.harmful is True and r.refusal is None:
            train[i] = replace(r, refusal=False)
            relabelled += 1
    train += new
    added["responses"].update(r.source for r in new)

    held = held_out_styles(root)
    test_rng = random.Random(seed + 37)
    data.test_wrapped_styles = [PromptExample(fill(pick(held, test_rng).text, p.prompt), p.harmful, p.source, True)
                                for p in data.prompts["test"] if not p.wrapped]
    test_complying = _complying(data.responses["test"])
    test_prompts = [p for p in data.prompts["test"] if not p.wrapped]
    off: list[ResponseExample] = []
    while len(off) < TEST_OFF_TOPIC and test_complying:
        ans, p = test_rng.choice(test_complying), test_rng.choice(test_prompts)
        if ans.prompt == p.prompt:
            continue
        off.append(ResponseExample(p.prompt, ans.response, False, False if ans.harmful is False else None, "off-topic",
                                   f"offtopic:{ans.group}"))
    data.test_off_topic = off
    return {
        "styled_fraction": STYLED_FRACTION,
        "train_styles": dict(Counter(s.family.split(":")[0] for s in styles)),
        "held_out_styles": dict(Counter(s.family.split(":")[0] for s in held)),
        "prompts_added": dict(added["prompts"]),
        "responses_added": dict(added["responses"]),
        "bundled_answers": dict(bundled),
        "artifacts_relabelled_not_refusal": relabelled,
        "test_wrapped_styles": {"n": len(data.test_wrapped_styles),
                                "harmful": sum(p.harmful for p in data.test_wrapped_styles)},
        "test_off_topic": {"n": len(off)},
    }
