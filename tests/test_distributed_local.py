"""Sharding, the single-process executor, weight snapshots, rollout config and the ``--distributed`` flags
(no Ray needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fakes import FakeJudge
from safeplay.cli import main
from safeplay.config import ConfigError
from safeplay.distributed.local import LocalExecutor
from safeplay.distributed.shards import ShardedJudge, ShardedPolicies, shard_seed, split
from safeplay.distributed.weights import apply_snapshot, snapshot
from safeplay.engine.setup import resolve_config
from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, SamplingParams
from safeplay.judges.base import JudgeItem
from safeplay.models.loading import tiny_model
from safeplay.models.policy_config import PolicyConfig
from safeplay.models.roles import RolePolicies

SP = SamplingParams(temperature=1.0, max_new_tokens=4)


@pytest.fixture(scope="module")
def policies():
    model, tok = tiny_model(seed=0)
    torch.manual_seed(0)
    return RolePolicies(model, tok, ["attacker", "defender"], PolicyConfig(lora_r=2))


def prompts(n):
    return [ChatPrompt([{"role": "user", "content": f"question {i} " + "x " * i}]) for i in range(n)]


def test_split_and_shard_seeds():
    assert split(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert shard_seed(123, 0) == 123  # a call that fits one shard samples as an unsharded call
    seeds = [shard_seed(123, i) for i in range(4)]
    assert len(set(seeds)) == 4 and shard_seed(None, 3) is None
    assert seeds == [shard_seed(123, i) for i in range(4)]


def test_sharded_generation_is_the_same_cut_whatever_runs_it(policies):
    ex = LocalExecutor(policies, FakeJudge())
    sharded = ShardedPolicies(policies, ex, shard_size=2)
    out = sharded.generate("defender", prompts(5), SP, seed=9)
    assert len(out) == 5 and ex.stats()["rollout/shards"] == 3.0
    # shard by shard, by hand: the same completions
    by_hand = [c for i, s in enumerate(split(prompts(5), 2)) for c in policies.generate("defender", s, SP, shard_seed(9, i))]
    assert [c.token_ids for c in out] == [c.token_ids for c in by_hand]
    assert sharded.generate("defender", [], SP, seed=1) == []
    with pytest.raises(SafeplayError, match="unknown role 'judge'"):
        sharded.generate("judge", prompts(1), SP)
    assert sharded.policy_names() == policies.policy_names()  # everything else is the learner's own


def test_sharded_judge_chunks_and_count_check():
    judge = FakeJudge()
    ex = LocalExecutor(None, judge)
    sj = ShardedJudge(judge, ex, chunk=3)
    items = [JudgeItem(f"p{i}", f"r{i}") for i in range(7)]
    assert sj.judge(items) == FakeJudge().judge(items) and judge.calls == 3
    bad = SimpleNamespace(judge=lambda chunks: [[]], stats=lambda: {})
    with pytest.raises(RuntimeError, match="returned 0 verdicts for 7 items"):
        ShardedJudge(judge, bad, chunk=10).judge(items)


def test_snapshot_round_trip_into_another_copy(policies):
    model, tok = tiny_model(seed=0)
    torch.manual_seed(1)  # a different LoRA init
    other = RolePolicies(model, tok, ["attacker", "defender"], PolicyConfig(lora_r=2))
    with torch.no_grad():
        for p in policies.trainable_parameters("defender"):
            p.add_(0.01)
    snap = snapshot(policies, version=3)
    assert snap.version == 3 and snap.mode == "lora" and snap.lora["r"] == 2
    apply_snapshot(other, snap)
    for role in ("attacker", "defender"):
        a, b = policies.state_dict(role), other.state_dict(role)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [c.token_ids for c in other.generate("defender", prompts(2), SP, 4)] == [
        c.token_ids for c in policies.generate("defender", prompts(2), SP, 4)]


def test_rollout_config_is_validated():
    with pytest.raises(ConfigError, match="rollout.shard_size"):
        resolve_config("self-redteam", overrides=["rollout.shard_size=0"])
    with pytest.raises(ConfigError, match="rollout.generator"):
        resolve_config("self-redteam", overrides=["rollout.generator=tgi"])
    cfg = resolve_config("self-redteam", overrides=["rollout.workers=4", "rollout.max_restarts=1"])
    assert (cfg.rollout.workers, cfg.rollout.max_restarts) == (4, 1)


def test_distributed_flags(capsys, tmp_path):
    from safeplay.distributed.launch import make_executor

    assert main(["train", "--ray-address", "auto", "--out", str(tmp_path / "r")]) == 2
    assert "--ray-address needs --distributed ray" in capsys.readouterr().err
    cfg = resolve_config("self-redteam")
    assert make_executor(cfg, None, "local") is None  # single-process: the trainer's own executor
    with pytest.raises(SafeplayError, match="not a backend"):
        make_executor(cfg, None, "slurm")


def test_ray_missing_is_a_clear_error(monkeypatch):
    import sys

    from safeplay.distributed.ray_backend import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(SafeplayError, match=r"needs Ray: pip install 'safeplay\[ray\]'"):
        import_ray()
