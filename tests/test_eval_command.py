"""``safeplay eval`` end to end with fake model loading, generator and judge (the real ones are separate modules)."""

from __future__ import annotations

import json
import sys
import types

import pytest

# Real: the flag checks read them (the fixture fakes the loaders only, by replacing their packages in sys.modules,
# after which no submodule of those packages can be imported any more).
import safeplay.models.loading  # noqa: F401
import safeplay.models.peft_dir  # noqa: F401
from fakes import OpenerJudge, ScriptedGenerator
from safeplay.cli import main
from safeplay.judges.base import Verdict, label_from


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    monkeypatch.setenv("SAFEPLAY_OFFLINE", "1")
    loaded = []

    def load_model(spec, dtype=None, device=None):
        loaded.append(spec)
        return object(), object()

    def make_generator(model, tokenizer, *args, **kwargs):
        return ScriptedGenerator()

    class Policies:
        def __init__(self, run_dir, step):
            self.where = (run_dir, step)

        def generator(self, role):
            assert role == "defender"
            return ScriptedGenerator()

    def load_run_policies(run_dir, step=None):
        loaded.append(("run", run_dir.name, step))
        return Policies(run_dir, step)

    modules = {
        "safeplay.models": types.ModuleType("safeplay.models"),
        "safeplay.models.checkpoint_io": types.ModuleType("safeplay.models.checkpoint_io"),
        "safeplay.generation.factory": types.ModuleType("safeplay.generation.factory"),
        "safeplay.judges.registry": types.ModuleType("safeplay.judges.registry"),
    }
    modules["safeplay.models"].load_model = load_model
    modules["safeplay.models"].__path__ = []
    modules["safeplay.models.checkpoint_io"].load_run_policies = load_run_policies
    modules["safeplay.generation.factory"].make_generator = make_generator
    modules["safeplay.judges.registry"].build_judge = lambda name, **kw: OpenerJudge()
    modules["safeplay.judges.registry"].check_judge = lambda *a, **k: None
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return loaded


def test_eval_model(fakes, tmp_path, data_dir):
    out = tmp_path / "ev"
    assert main(["eval", "--benchmarks", "harmbench,xstest-safe", "--limit", "5", "--out", str(out),
                 "--max-new-tokens", "8"]) == 0
    assert fakes == [None]  # the bundled model
    results = json.loads((out / "results.json").read_text())
    assert set(results["benchmarks"]) == {"harmbench", "xstest-safe"}
    assert results["judge"] == "fake-judge" and results["limit"] == 5 and results["max_new_tokens"] == 8
    assert sum(1 for _ in (out / "generations.jsonl").open()) == 10


class RefusingJudge(OpenerJudge):
    name = "refuser"

    def judge(self, items):
        return [Verdict(True, True, False, label_from(True, False), judge=self.name) for _ in items]


def test_rejudge_scores_stored_answers_with_another_judge(fakes, tmp_path, data_dir, monkeypatch):
    src = tmp_path / "ev"
    assert main(["eval", "--benchmarks", "harmbench,xstest-safe", "--limit", "5", "--out", str(src)]) == 0
    before = json.loads((src / "results.json").read_text())
    registry = sys.modules["safeplay.judges.registry"]
    monkeypatch.setattr(registry, "build_judge", lambda name, **kw: RefusingJudge())
    out = tmp_path / "again"
    assert main(["eval", "--rejudge", str(src), "--judge", "refuser", "--out", str(out)]) == 0
    assert fakes == [None]  # nothing was loaded or generated again
    after = json.loads((out / "results.json").read_text())
    assert after["judge"] == "refuser" and after["rejudged_from"] == str(src)
    assert after["benchmarks"]["harmbench"]["refusal_rate"] == 1.0 and after["benchmarks"]["harmbench"]["n"] == 5
    assert before["benchmarks"]["harmbench"]["refusal_rate"] < 1.0
    old_rows = [json.loads(x) for x in (src / "generations.jsonl").open()]
    new_rows = [json.loads(x) for x in (out / "generations.jsonl").open()]
    assert [r["answer"] for r in new_rows] == [r["answer"] for r in old_rows]
    assert all(r["verdict"]["judge"] == "refuser" for r in new_rows)
    # Not an evaluation folder: a clear error.
    assert main(["eval", "--rejudge", str(tmp_path / "nothing"), "--judge", "refuser"]) == 2


def test_eval_compare_writes_comparison(fakes, tmp_path, data_dir):
    run = tmp_path / "myrun"
    (run / "checkpoints").mkdir(parents=True)
    out = tmp_path / "cmp"
    assert main(["eval", "--model", "some/model", "--benchmarks", "xstest-unsafe", "--limit", "3", "--out", str(out),
                 "--compare", str(run)]) == 0
    assert fakes == ["some/model", ("run", "myrun", None)]
    comparison = json.loads((out / "comparison.json").read_text())
    assert list(comparison["arms"]) == ["model", "myrun"]
    assert comparison["arms"]["myrun"]["xstest-unsafe"]["judge"] == "fake-judge"
    assert (out / "myrun" / "results.json").is_file()

    from safeplay.eval.report import build_report

    assert "<th>myrun</th>" in build_report(out)


def test_eval_run_step(fakes, tmp_path, data_dir):
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    assert main(["eval", "--run", str(run), "--step", "4", "--benchmarks", "harmbench", "--limit", "2",
                 "--out", str(tmp_path / "o")]) == 0
    assert fakes == [("run", "r", 4)]
    assert json.loads((tmp_path / "o" / "results.json").read_text())["model"] == "r@step4"


def test_eval_errors(fakes, tmp_path, capsys):
    assert main(["eval", "--benchmarks", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["eval", "--step", "3"]) == 2
    assert "--step needs --run" in capsys.readouterr().err
