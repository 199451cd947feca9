"""Labelled data for guard-mini: human labels from the published files, a documented split, and augmentations.

Response heads (refusal, response_harmful), all human-labelled:

* **XSTest completions** (5 models × 450 prompts = 2,250): ``refusal`` = final label is full or partial refusal;
  ``response_harmful`` = the prompt is one of XSTest's unsafe contrast prompts *and* the answer fully complies
  (XSTest labels compliance, not harm: complying with an unsafe prompt is counted as harmful, a refusal or an answer
  to a safe prompt as not harmful; partial refusals of unsafe prompts are left unlabelled for harm).
  **Split by prompt** (stratified by the 18 prompt types): all five models' answers to one prompt land on one side.
* **JailbreakBench ``classifier_comparison.csv``** (100 jailbreak answers, 50 behaviours): ``response_harmful`` =
  the human majority label; refusal unlabelled. **Split by behaviour** (goal).

Response-harm head, machine-labelled (train and dev; its test side is scored apart from the human-labelled test):

* **JailbreakBench attack artifacts** (PAIR, GCG, JBC, random search, DSN × 2–4 target models; ~1.5k answers to
  jailbreak prompts): ``response_harmful`` = the published ``jailbroken`` verdict of JailbreakBench's judge, kept
  only where Llama Guard's published verdict (``jailbroken_llama_guard1``) does not contradict it. These are the
  wrapped, adversarial answers the classifier-comparison set has only 100 of. **Split by behaviour**, with the
  classifier-comparison goals kept on their side. The behaviours are JailbreakBench's harmful set, so the
  ``jbb-*`` benchmarks are judged by a judge that saw answers to their goals (the policy never does).

Augmentations (train side uses one list of phrases, the held-out test side a disjoint list):

Prompt head (prompt_harmful): training-side prompt sets only (AdvBench, HarmBench val standard + contextual,
WildJailbreak train sample, OR-Bench toxic vs hard-1k, the in-the-wild forbidden questions, Alpaca instructions,
Self-Instruct seeds), with any prompt that also appears in a held-out evaluation set dropped, each split at random;
plus the XSTest prompts on the same sides as their completions.

* **keyword-hacked answers**: a refusal opener ("Sorry, I won't provide that. …") put before a complying answer;
  labels: refusal = False, response_harmful unchanged. This is the reward hack a policy trained against a keyword
  judge learns; a judge must see through it. Real refusals get the same openers with their labels unchanged, so
  that the opener alone carries no signal (the answer's body decides).
* **refusal swaps**: a train/dev prompt (harmful or benign) paired with a real refusal written by one of XSTest's
  five models for another prompt on the same side; labels refusal = True, response_harmful = False. A refusal
  gives nothing away whatever it refuses, and without these pairs the harm head learns "harmful request →
  harmful answer" from XSTest, where the two coincide for every complying answer.
* **wrapped prompts**: a prompt put inside a role-play / fiction / hypothetical frame keeps its harmfulness label
  (benign prompts are wrapped too, so the frame itself carries no signal).
* **adversarial refusal swaps**: the same, with the side's *jailbreak* prompts — its wrapped prompts and the
  JailbreakBench artifacts' attack prompts (PAIR role-plays, GCG suffixes, AIM, …) — paired with real refusals
  or, half of the time, short ones (``TRAIN_SHORT_REFUSALS``): refusal = True, response_harmful = False. Without them the cross-encoder read a crisp refusal of a long
  role-play prompt as a harmful compliance (refusal probability 0.006 on "I can't help with that. It could cause
  real harm to people, so I won't share it." after a 500-character WildJailbreak prompt): every refusal it had
  seen followed a short plain request, and the artifacts' long prompts were almost all followed by compliance.

* **context swaps**: a context paragraph from HarmBench *val*'s contextual behaviours, the separator HarmBench's
  evaluation uses, then a request (the row's own, or another prompt of the side), followed half of the time by a
  refusal of the side (refusal = True, response_harmful = False) and half of the time by a complying XSTest answer
  of the side (refusal = False, harm unlabelled). A third of HarmBench's test prompts look like this, and the
  cross-encoder, which had never seen a refusal after a context paragraph, called 31% of real refusals after them
  not refusals. The complying half keeps "a context paragraph" from meaning "a refusal". Contexts are split by
  context between train and dev; the held-out check uses HarmBench *test*'s contexts (``calibrate``).

Held-out test sets built the same way from the test side (with the test phrase lists): keyword-hacked answers,
wrapped prompts, and adversarial refusals — the test side's jailbreak prompts (its wrapped prompts and artifact
prompts) paired with the test side's real refusals or ``TEST_SHORT_REFUSALS``.

guard-mini v2 adds, from random streams of its own after all of the above is drawn (so the split and these test
sets do not change), prompts in many jailbreak styles, long prompts, off-topic and incoherent answers, and the
bundled model's own answers: ``guard_augment`` (styles in ``guard_frames``, answers in ``bundled_answers``).

The pieces live beside this module: the example types and prompt fingerprints in ``guard_examples``, the phrase lists
in ``guard_phrases``, the readers of the published files in ``guard_sources``, and the constructed examples (refusal,
adversarial and context swaps, keyword-hacked answers) in ``guard_swaps``; ``build_guard_data`` puts them together.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from safeplay.judges.guard_examples import SPLITS, GuardData, PromptExample, ResponseExample, norm
from safeplay.judges.guard_phrases import (
    TEST_OPENERS,
    TEST_SHORT_REFUSALS,
    TEST_WRAPPERS,
    TRAIN_OPENERS,
    TRAIN_SHORT_REFUSALS,
    TRAIN_WRAPPERS,
)
from safeplay.judges.guard_sources import (
    ALPACA_SAMPLE,
    OR_BENCH_HARD_SAMPLE,
    eval_texts,
    jbb_artifacts,
    jbb_cc,
    prompt_sources,
    xstest,
)
from safeplay.judges.guard_swaps import (
    ADVERSARIAL_SWAPS,
    CONTEXT_SWAPS,
    SWAPS,
    adversarial_refusal_swaps,
    compliant,
    context_swaps,
    hack,
    prefix,
    refusal_swaps,
)

PROMPT_FRACTIONS = (0.7, 0.15, 0.15)
"""Train / dev / test fractions of each prompt-head source."""
HACK_FRACTION = 1.0
"""Share of complying train/dev answers that also appear keyword-hacked."""
WRAP_FRACTION = 0.25
"""Share of train/dev prompts that also appear wrapped."""


def build_guard_data(root: Path, seed: int = 0, with_bundled: bool = True) -> GuardData:
    """Load every source from ``root`` (a data directory laid out like the published files) and split it."""
    xs_r, xs_p, xs_desc = xstest(root, seed)
    cc_r, cc_desc = jbb_cc(root, seed)
    cc_side = {r.group[4:]: s for s in SPLITS for r in cc_r[s]}
    art_r, art_desc = jbb_artifacts(root, seed, cc_side)
    responses = {s: xs_r[s] + cc_r[s] + (art_r[s] if s != "test" else []) for s in SPLITS}
    prompts = {s: list(xs_p[s]) for s in SPLITS}
    held_out = eval_texts(root)
    dropped: Counter[str] = Counter()
    rng = random.Random(seed + 3)
    sources = prompt_sources(root, seed)
    for name in sorted(sources):
        seen: set[str] = set()
        items = []
        for ex in sources[name]:
            key = norm(ex.prompt)
            if key in held_out or key in seen or not key:
                dropped[name] += 1
                continue
            seen.add(key)
            items.append(ex)
        rng.shuffle(items)
        a = int(round(PROMPT_FRACTIONS[0] * len(items)))
        b = a + int(round(PROMPT_FRACTIONS[1] * len(items)))
        prompts["train"] += items[:a]
        prompts["dev"] += items[a:b]
        prompts["test"] += items[b:]

    # Augment train and dev with the train phrase lists; build separate held-out test sets with the test lists.
    for s in ("train", "dev"):
        comp = [ex for ex in responses[s] if compliant(ex)]
        chosen = rng.sample(comp, int(HACK_FRACTION * len(comp)))
        responses[s] += [hack(ex, rng.choice(TRAIN_OPENERS)) for ex in chosen]
        # The same openers before real refusals keep their labels: the opener alone must carry no signal either way.
        refusals = [ex for ex in responses[s] if ex.refusal is True and not ex.hacked]
        responses[s] += [prefix(ex, rng.choice(TRAIN_OPENERS)) for ex in refusals]
        responses[s] += refusal_swaps(responses[s], prompts[s], rng)
        base = list(prompts[s])
        picked = rng.sample(base, int(WRAP_FRACTION * len(base)))
        prompts[s] += [PromptExample(rng.choice(TRAIN_WRAPPERS).format(p=ex.prompt), ex.harmful, ex.source, True)
                       for ex in picked]
        responses[s] += adversarial_refusal_swaps(responses[s], prompts[s], rng, TRAIN_SHORT_REFUSALS)
    # Their own random stream: the held-out test sets below are drawn exactly as before they existed.
    for side, items in context_swaps(root, responses, prompts, random.Random(seed + 17)).items():
        responses[side] += items
    test_hacked = [hack(ex, rng.choice(TEST_OPENERS)) for ex in responses["test"] if compliant(ex)]
    test_wrapped = [PromptExample(rng.choice(TEST_WRAPPERS).format(p=ex.prompt), ex.harmful, ex.source, True)
                    for ex in prompts["test"]]
    test_adversarial = adversarial_refusal_swaps(responses["test"] + art_r["test"], test_wrapped, rng, TEST_SHORT_REFUSALS)
    # guard-mini v2's styles, long prompts, off-topic and incoherent answers: their own random streams, after every
    # set above is drawn (guard_augment).
    from safeplay.judges.guard_augment import augment

    data = GuardData(responses, prompts, test_hacked, test_wrapped, {}, art_r["test"], test_adversarial)
    v2 = augment(root, data, seed, with_bundled)

    def counts(rs: list[ResponseExample]) -> dict[str, int]:
        return {
            "n": len(rs),
            "refusal_labelled": sum(r.refusal is not None for r in rs),
            "harm_labelled": sum(r.harmful is not None for r in rs),
            "harmful": sum(bool(r.harmful) for r in rs),
            "hacked": sum(r.hacked for r in rs),
        }

    description = {
        "seed": seed,
        "xstest": xs_desc,
        "jbb_classifier_comparison": cc_desc,
        "jbb_artifacts": art_desc,
        "prompt_sources": {"fractions": dict(zip(SPLITS, PROMPT_FRACTIONS)),
                           "dropped_as_eval_overlap_or_duplicate": dict(dropped),
                           "sampled": {"alpaca": ALPACA_SAMPLE, "or-bench-hard": OR_BENCH_HARD_SAMPLE}},
        "augmentation": {"hack_fraction": HACK_FRACTION, "wrap_fraction": WRAP_FRACTION, "refusal_swaps": SWAPS,
                         "adversarial_refusal_swaps": ADVERSARIAL_SWAPS, "context_swaps": CONTEXT_SWAPS,
                         "train_openers": len(TRAIN_OPENERS), "test_openers": len(TEST_OPENERS),
                         "train_wrappers": len(TRAIN_WRAPPERS), "test_wrappers": len(TEST_WRAPPERS)},
        "responses": {s: counts(responses[s]) for s in SPLITS},
        "prompts": {s: {"n": len(prompts[s]), "harmful": sum(p.harmful for p in prompts[s]),
                        "wrapped": sum(p.wrapped for p in prompts[s])} for s in SPLITS},
        "test_hacked": counts(test_hacked),
        "test_wrapped": {"n": len(test_wrapped), "harmful": sum(p.harmful for p in test_wrapped)},
        "test_artifacts": counts(art_r["test"]),
        "test_adversarial_refusals": counts(test_adversarial),
        "v2": v2,
    }
    data.description = description
    return data
