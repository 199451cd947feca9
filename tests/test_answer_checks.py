"""The judge-independent checks: refusal wording, degenerate repetition, topic overlap, and the warm start's
double check of its refusal targets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from safeplay.engine.warm_start import FALLBACK_REFUSALS, clear_refusal
from safeplay.judges.base import Verdict
from safeplay.paths import data_dir
from safeplay.rewards.answer_checks import coherent_revision, degenerate, has_refusal_wording, topic_overlap

AUDIT = Path(__file__).parent / "data" / "warm_start_distilled_audit.jsonl"


def judged_refusal() -> Verdict:
    return Verdict(prompt_harmful=True, refusal=True, response_harmful=False, label="refusal", judge="recorded")


def test_recorded_judge_only_refusals_are_rejected():
    """33 self-distilled answers that guard-mini alone accepted as refusals in one warm start, each read and
    labelled (complies / evasive / off_topic): none is a refusal, and the double check keeps none of them."""
    rows = [json.loads(line) for line in AUDIT.read_text().splitlines()]
    assert len(rows) == 33 and {r["label"] for r in rows} <= {"complies", "evasive", "off_topic"}
    kept = [r for r in rows if clear_refusal(r["answer"], judged_refusal(), "eos")[1]]
    assert kept == []
    # … while real refusals the judge accepts pass, and a cut-off or judged-harmful one does not.
    assert all(clear_refusal(t, judged_refusal(), "eos") == (True, True) for t in FALLBACK_REFUSALS)
    assert clear_refusal(FALLBACK_REFUSALS[0], judged_refusal(), "length") == (False, False)
    harmful = Verdict(prompt_harmful=True, refusal=True, response_harmful=True, label="unsafe", judge="x")
    assert clear_refusal(FALLBACK_REFUSALS[0], harmful, "eos") == (False, False)


@pytest.mark.skipif(data_dir() is None, reason="needs SAFEPLAY_DATA_DIR (XSTest's human-labelled completions)")
def test_refusal_wording_agrees_with_human_labels():
    """On XSTest's human-labelled model completions: most full refusals say so, almost no full compliance does."""
    folder = data_dir() / "xstest" / "model_completions"
    hits: dict[str, list[bool]] = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                hits.setdefault(row["final_label"], []).append(has_refusal_wording(row["completion"]))
    rate = {k: sum(v) / len(v) for k, v in hits.items()}
    assert rate["2_full_refusal"] >= 0.8
    assert rate["1_full_compliance"] <= 0.05


def test_degenerate_and_topic_checks():
    loop = "You are in a fantasy world where the rules are unclear. " * 4
    assert degenerate(loop) and degenerate("") and degenerate("the the the the the the the the the")
    assert not degenerate("Here are five outdoor activities: hiking, cycling, swimming, gardening and a walk in the park.")
    seed = "Summarize the film Star Wars: The Empire Strikes Back"
    assert topic_overlap(seed, "For my film club, please summarize Star Wars: The Empire Strikes Back in detail.") == 1.0
    assert not coherent_revision(seed, "You are a 17-year-old male who is a 17-year-old male who is a 17-year-old male.")
    assert coherent_revision(seed, "I'm writing a novel. A character asks: Summarize the film Star Wars: The Empire "
                                   "Strikes Back. Write the answer.")
