"""The evaluation runner with a fake generator and a deterministic fake judge."""

from __future__ import annotations

import json

import pytest

from fakes import OpenerJudge, ScriptedGenerator
from safeplay.errors import SafeplayError
from safeplay.eval.runner import evaluate, extract_answer, flat_metrics
from safeplay.generation.base import Completion


class FakeScorer:
    def __call__(self, prompts, choices):
        return [[0.0 if k == 0 else -1.0 for k in range(len(c))] for c in choices]  # always picks A


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("SAFEPLAY_OFFLINE", "1")


def test_evaluate_writes_results_and_generations(data_dir, tmp_path):
    gen, judge = ScriptedGenerator(), OpenerJudge()
    report = evaluate(gen, ["harmbench", "xstest-safe", "xstest-unsafe"], judge, limit=8, max_new_tokens=16,
                      out_dir=tmp_path, batch_size=3)
    assert all(temp == 0.0 and mnt == 16 for _, temp, mnt in gen.calls)  # greedy, the requested budget
    assert max(n for n, _, _ in gen.calls) <= 3
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == report
    assert results["model"] == "fake-model" and results["judge"] == "fake-judge" and results["limit"] == 8
    hb = results["benchmarks"]["harmbench"]
    assert hb["n"] == 8 and hb["judge"] == "fake-judge" and hb["primary"] == "asr"
    rows = [json.loads(line) for line in (tmp_path / "generations.jsonl").open()]
    assert len(rows) == 24
    hb_rows = [r for r in rows if r["benchmark"] == "harmbench"]
    # the figure is recomputed from the logged verdicts
    assert hb["asr"] == sum(r["verdict"]["response_harmful"] for r in hb_rows) / 8
    assert hb["refusal_rate"] == sum(r["verdict"]["refusal"] for r in hb_rows) / 8
    assert 0 < hb["refusal_rate"] < 1
    assert set(results["benchmarks"]["xstest"]) >= {"refusal_f1", "accuracy", "judge"}
    assert len(judge.seen) == 24


def test_cot_answers_are_extracted_before_judging(data_dir):
    judge = OpenerJudge()
    evaluate(ScriptedGenerator(cot=True), ["xstest-unsafe"], judge, limit=4, cot=True)
    assert all("</think>" not in it.response and "<answer>" not in it.response for it in judge.seen)


def test_extract_answer_rules():
    assert extract_answer("t </think> <answer> hi </answer>", cot=True) == "hi"
    assert extract_answer("t </think> <answer> no close", cot=True) == "no close"
    assert extract_answer("t </think> plain answer", cot=True) == "plain answer"
    assert extract_answer("never closed thinking", cot=True) == "never closed thinking"
    assert extract_answer("  <answer>x</answer> ", cot=False) == "<answer>x</answer>"


def test_capability_benchmarks(data_dir):
    report = evaluate(ScriptedGenerator(), ["gsm8k", "mmlu"], OpenerJudge(), limit=20, scorer=FakeScorer())
    gsm = report["benchmarks"]["gsm8k"]
    assert gsm["n"] == 20 and 0 <= gsm["exact_match"] <= 1
    mmlu = report["benchmarks"]["mmlu"]
    from safeplay.data.benchmarks import load_benchmark

    items = load_benchmark("mmlu", limit=20)
    assert mmlu["accuracy"] == sum(it.extra["answer"] == 0 for it in items) / 20
    flat = flat_metrics(report)
    assert flat["mmlu/accuracy"] == mmlu["accuracy"] and "gsm8k/exact_match" in flat


def test_mmlu_without_scorer_is_a_clear_error(data_dir):
    with pytest.raises(SafeplayError, match="mmlu needs log-likelihoods"):
        evaluate(ScriptedGenerator(), ["mmlu"], OpenerJudge(), limit=2)


def test_unknown_benchmark_fails_before_generating():
    gen = ScriptedGenerator()
    with pytest.raises(SafeplayError, match="unknown benchmark"):
        evaluate(gen, ["harmbench", "bogus"], OpenerJudge(), limit=2)
    assert gen.calls == []


class EchoGenerator:
    def generate(self, prompts, sampling, seed=None):
        return [Completion("echo: " + p.messages[-1]["content"], [], [], [], "eos") for p in prompts]


def test_length_sorted_batches_keep_item_order(data_dir, tmp_path):
    evaluate(EchoGenerator(), ["wildjailbreak-adv-benign"], OpenerJudge(), limit=9, batch_size=2, out_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "generations.jsonl").open()]
    assert len(rows) == 9 and all(r["output"] == "echo: " + r["prompt"] for r in rows)
