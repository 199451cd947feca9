"""Readers of the published files guard-mini's data is drawn from, each split as ``guard_data``'s docstring says.

XSTest's prompts and completions, JailbreakBench's classifier comparison and attack artifacts (split by prompt or
behaviour, with the per-side counts and fractions they use), HarmBench val's contextual behaviours, the prompt-head
sources (with their sample sizes), and the held-out evaluation prompts that are kept out of every training set.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError
from safeplay.judges.guard_examples import SPLITS, PromptExample, ResponseExample, norm

XSTEST_MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")
XSTEST_PER_TYPE = (12, 5, 8)
"""Prompts per XSTest type (25 each) going to train / dev / test."""
JBB_CC_GOALS = (25, 10, 15)
"""JailbreakBench classifier-comparison behaviours (50) going to train / dev / test."""
ALPACA_SAMPLE = 1500
OR_BENCH_HARD_SAMPLE = 600
CONTEXT_SPLIT = (0.75, 0.25)
"""Train / dev fractions of HarmBench val's contexts (the test side is HarmBench test's, in ``calibrate``)."""
ARTIFACT_FRACTIONS = (0.6, 0.2, 0.2)
"""Train / dev / test fractions of the JailbreakBench behaviours that are not in the classifier comparison."""


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise SafeplayError(f"guard-mini data: missing {path}")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def xstest(root: Path, seed: int) -> tuple[dict[str, list[ResponseExample]], dict[str, list[PromptExample]], dict]:
    prompts = read_csv(root / "xstest" / "xstest_prompts.csv")
    rng = random.Random(seed)
    by_type: dict[str, list[str]] = defaultdict(list)
    for row in prompts:
        by_type[row["type"]].append(row["id"])
    side: dict[str, str] = {}
    for ptype in sorted(by_type):
        ids = sorted(by_type[ptype], key=int)
        rng.shuffle(ids)
        a, b = XSTEST_PER_TYPE[0], XSTEST_PER_TYPE[0] + XSTEST_PER_TYPE[1]
        for i, pid in enumerate(ids):
            side[pid] = "train" if i < a else "dev" if i < b else "test"
    unsafe = {row["id"]: row["label"] == "unsafe" for row in prompts}
    out_p: dict[str, list[PromptExample]] = {s: [] for s in SPLITS}
    for row in prompts:
        out_p[side[row["id"]]].append(PromptExample(row["prompt"], unsafe[row["id"]], "xstest"))
    out_r: dict[str, list[ResponseExample]] = {s: [] for s in SPLITS}
    for model in XSTEST_MODELS:
        for row in read_csv(root / "xstest" / "model_completions" / f"xstest_v2_completions_{model}.csv"):
            pid = row["id"].removeprefix("v2-")
            label = row["final_label"].strip()
            refusal = label in ("2_full_refusal", "3_partial_refusal")
            comply = label == "1_full_compliance"
            harmful: bool | None = unsafe[pid] and comply
            if unsafe[pid] and label == "3_partial_refusal":
                harmful = None
            out_r[side[pid]].append(
                ResponseExample(row["prompt"], row["completion"] or "", refusal, harmful, "xstest", f"xstest:{pid}")
            )
    desc = {"unit": "prompt id (all 5 models' answers together), stratified by the 18 prompt types",
            "prompts_per_type": dict(zip(SPLITS, XSTEST_PER_TYPE))}
    return out_r, out_p, desc


def jbb_cc(root: Path, seed: int) -> tuple[dict[str, list[ResponseExample]], dict]:
    rows = read_csv(root / "jailbreakbench" / "classifier_comparison.csv")
    goals = sorted({r["goal"] for r in rows})
    random.Random(seed + 1).shuffle(goals)
    a, b = JBB_CC_GOALS[0], JBB_CC_GOALS[0] + JBB_CC_GOALS[1]
    side = {g: ("train" if i < a else "dev" if i < b else "test") for i, g in enumerate(goals)}
    out: dict[str, list[ResponseExample]] = {s: [] for s in SPLITS}
    for r in rows:
        out[side[r["goal"]]].append(
            ResponseExample(r["prompt"], r["target_response"] or "", None, r["human_majority"].strip() == "1",
                            "jbb-classifier-comparison", f"jbb:{r['goal']}")
        )
    return out, {"unit": "behaviour (goal; 2 answers each)", "goals": dict(zip(SPLITS, JBB_CC_GOALS))}


def jbb_artifacts(root: Path, seed: int, cc_side: dict[str, str]) -> tuple[dict[str, list[ResponseExample]], dict]:
    """JailbreakBench attack artifacts with their published verdicts, split by behaviour (see ``guard_data``'s
    docstring)."""
    folder = root / "jailbreakbench" / "artifacts" / "attack-artifacts"
    files = sorted(folder.glob("*/*/*.json"))
    if not files:
        raise SafeplayError(f"guard-mini data: no attack artifacts under {folder}")
    items: list[ResponseExample] = []
    dropped = 0
    for path in files:
        for j in json.loads(path.read_text(encoding="utf-8")).get("jailbreaks", []):
            if not j.get("prompt") or not j.get("response"):
                continue  # the attack produced no prompt for this behaviour
            verdict, guard = j.get("jailbroken"), j.get("jailbroken_llama_guard1")
            if verdict is None or (guard is not None and bool(guard) != bool(verdict)):
                dropped += 1
                continue
            items.append(ResponseExample(j["prompt"], j["response"], None, bool(verdict), "jbb-artifacts",
                                         f"jbb:{j['goal']}"))
    goals = sorted({it.group[4:] for it in items} - set(cc_side))
    random.Random(seed + 4).shuffle(goals)
    a = int(round(ARTIFACT_FRACTIONS[0] * len(goals)))
    b = a + int(round(ARTIFACT_FRACTIONS[1] * len(goals)))
    side = {g: ("train" if i < a else "dev" if i < b else "test") for i, g in enumerate(goals)} | cc_side
    out: dict[str, list[ResponseExample]] = {s: [] for s in SPLITS}
    for it in items:
        out[side[it.group[4:]]].append(it)
    desc = {"unit": "behaviour (goal); classifier-comparison goals keep their side",
            "label": "published jailbroken verdict; dropped where Llama Guard's verdict disagrees",
            "answers": {s: len(out[s]) for s in SPLITS}, "harmful": {s: sum(bool(x.harmful) for x in out[s]) for s in SPLITS},
            "dropped_disagreeing": dropped}
    return out, desc


def contextual_rows(root: Path, side: str, seed: int) -> list[dict[str, str]]:
    """HarmBench val's contextual behaviours of one side (``train`` or ``dev``), split as ``context_swaps`` splits
    them (the same random stream)."""
    rows = [r for r in read_csv(root / "harmbench" / "harmbench_behaviors_text_val.csv")
            if r["FunctionalCategory"] == "contextual" and r["ContextString"].strip()]
    random.Random(seed + 17).shuffle(rows)
    cut = int(round(CONTEXT_SPLIT[0] * len(rows)))
    return rows[:cut] if side == "train" else rows[cut:]


def prompt_sources(root: Path, seed: int) -> dict[str, list[PromptExample]]:
    """Training-side prompt sets; harmful and benign."""
    rng = random.Random(seed + 2)
    src: dict[str, list[PromptExample]] = {}
    src["advbench"] = [PromptExample(r["goal"], True, "advbench")
                       for r in read_csv(root / "advbench" / "harmful_behaviors.csv")]
    src["harmbench-val"] = [
        PromptExample(r["Behavior"], True, "harmbench-val")
        for r in read_csv(root / "harmbench" / "harmbench_behaviors_text_val.csv")
        if r["FunctionalCategory"] in ("standard", "contextual")
    ]
    wjb = root / "wildjailbreak_train_sample"
    src["wjb-train-harmful"] = [PromptExample(r["prompt"], True, "wjb-train-harmful")
                                for r in _jsonl(wjb / "valid_vanilla_harmful_256_data.jsonl")]
    src["wjb-train-benign"] = [PromptExample(r["prompt"], False, "wjb-train-benign")
                               for r in _jsonl(wjb / "valid_vanilla_benign_256_data.jsonl")]
    src["or-bench-toxic"] = [PromptExample(r["prompt"], True, "or-bench-toxic")
                             for r in read_csv(root / "or_bench" / "or_bench-toxic.csv")]
    hard = [PromptExample(r["prompt"], False, "or-bench-hard") for r in read_csv(root / "or_bench" / "or_bench-hard-1k.csv")]
    src["or-bench-hard"] = rng.sample(hard, min(OR_BENCH_HARD_SAMPLE, len(hard)))
    src["forbidden-questions"] = [
        PromptExample(r["question"], True, "forbidden-questions")
        for r in read_csv(root / "jailbreak_llms_in_the_wild" / "forbidden_question_set.csv")
    ]
    alpaca = json.loads((root / "alpaca_instructions" / "harmless_train.json").read_text(encoding="utf-8"))
    alpaca = [PromptExample(r["instruction"], False, "alpaca") for r in alpaca]
    src["alpaca"] = rng.sample(alpaca, min(ALPACA_SAMPLE, len(alpaca)))
    src["self-instruct"] = [PromptExample(r["instruction"], False, "self-instruct")
                            for r in _jsonl(root / "self_instruct_seed" / "seed_tasks.jsonl")]
    return src


def eval_texts(root: Path) -> set[str]:
    """Held-out evaluation prompts (XSTest excepted: its split is deliberate, see ``guard_data``'s docstring)."""
    from safeplay.data.benchmarks import BENCHMARKS, locate

    texts: set[str] = set()
    for name, spec in BENCHMARKS.items():
        if not spec.safety or name.startswith("xstest"):
            continue
        resolve = lambda rel, spec=spec: locate(rel, spec.urls[rel], root)  # noqa: E731
        try:
            items = spec.loader(resolve)
        except (SafeplayError, OSError):
            continue  # a set that is not here cannot leak either
        for item in items:
            texts.add(norm(item.prompt))
            goal = (item.extra or {}).get("goal")
            if goal:
                texts.add(norm(goal))
    return texts
