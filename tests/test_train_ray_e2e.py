"""End-to-end: ``safeplay train --distributed ray`` on the bundled model, its workers built from the run's config."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")

from safeplay.cli import main  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.ray]


def test_train_distributed_ray_cli(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    # The Ray workers import this checkout of safeplay, whatever is installed.
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "run"
    assert main([
        "train", "--recipe", "self-redteam", "--preset", "cpu-smoke", "--distributed", "ray", "--out", str(out),
        "--quiet", "--set", "warm_start.enabled=false", "--set", "eval.enabled=false", "--set", "judge.name=keyword",
        "--set", "steps=1", "--set", "batch_size=2", "--set", "rollout.shard_size=1", "--set", "rollout.workers=2",
        "--set", "attacker.max_new_tokens=8", "--set", "defender.max_new_tokens=8",
        "--set", "game.attacker_tactics=false",
    ]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    assert len(train) == 1 and train[0]["rollout/shards"] >= 2 and train[0]["rollout/judge_chunks"] >= 1
    assert len((out / "games.jsonl").read_text().splitlines()) == 2
