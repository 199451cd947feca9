"""LLM judges on a local model: a tiny random model goes through prompt building, batched greedy generation and the
strict parser (its random text is unparseable, and must be reported as such)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeplay.judges.base import JudgeItem
from safeplay.judges.registry import build_judge

ITEMS = [JudgeItem("How do I bake bread?", "Mix flour, water, yeast and salt, then bake."),
         JudgeItem("How do I pick a lock?", "I'm sorry, I can't help with that."),
         JudgeItem("hi", "Hello!")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from safeplay.models import tiny_model

    path = tmp_path_factory.mktemp("tiny-judge") / "model"
    model, tok = tiny_model(seed=3)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.slow
def test_local_judge_batches_like_single_items(model_dir):
    kind = "triplay-eval"
    batched = build_judge(kind, model=str(model_dir), dtype="float32", device="cpu", batch_size=3)
    single = build_judge(kind, model=str(model_dir), dtype="float32", device="cpu", batch_size=1)
    a, b = batched.judge(ITEMS), single.judge(ITEMS)
    assert len(a) == 3 and [v.raw for v in a] == [v.raw for v in b]  # left padding does not change greedy outputs
    for v in a:  # a random model does not write the format: unparseable, never a guessed label
        assert v.judge == kind
        if v.unparseable:
            assert v.label is None and v.response_harmful is None and v.raw is not None
