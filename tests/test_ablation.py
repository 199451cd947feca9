"""``run_ablation`` on tiny models: one warm start per seed shared by the arms, forks that resume exactly."""

from __future__ import annotations

import copy

import pytest
import torch

from fakes import SEEDS, FakeJudge, make_cfg, make_trainer, weights
from safeplay.engine.ablation import arm_overrides, run_ablation, warm_start_view
from safeplay.engine.warm_start import make_warm_start

WARM = {
    "warm_start.enabled": "true", "warm_start.harmful_prompts": 3, "warm_start.benign_prompts": 3,
    "warm_start.attacker_pairs": 2, "warm_start.distill_samples": 1, "warm_start.epochs": 1,
    "warm_start.max_new_tokens": 6, "steps": 2, "checkpoint_every": 1,
}


def fake_eval(policies, step, stage):
    """Figures that depend on the defender's weights: equal weights give equal rows."""
    total = sum(float(v.double().sum()) for v in policies.state_dict("defender").values())
    return {"bench/refusal_rate": total % 1.0}


class Runner:
    """``train_fn`` for ``run_ablation``: tiny trainers, counting warm starts and RL steps per run folder."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.warm_starts: list[str] = []
        self.trainers = {}

    def __call__(self, cfg, root):
        tr = make_trainer(root.parent, cfg, name=root.name)
        tr.components.eval_fn = fake_eval
        inner = make_warm_start(cfg, FakeJudge(), SEEDS)
        tr.components.warm_start_fn = lambda policies, run: self.warm_starts.append(str(root)) or inner(policies, run)
        tr.fit(resume=(root / "checkpoints" / "latest").exists())
        self.trainers[str(root.relative_to(self.tmp_path / "abl"))] = tr


def overrides(extra_by_arm=None):
    def fn(arm, seed):
        extra = dict(WARM, seed=seed)
        extra.update(o.split("=", 1) for o in arm_overrides("self-redteam", arm))
        extra.update((extra_by_arm or {}).get(arm, {}))
        return make_cfg(**extra)

    return fn


@pytest.mark.slow
def test_arms_share_one_warm_start_per_seed_and_start_rl_from_the_same_weights(tmp_path):
    runner = Runner(tmp_path)
    fn = overrides()
    result = run_ablation(fn("self-play", 1), ["self-play", "defender-only"], [1, 2], tmp_path / "abl", runner, fn)
    assert sorted(runner.warm_starts) == sorted(str(tmp_path / "abl" / "warm_start" / f"seed_{s}") for s in (1, 2))
    assert set(result["arms"]) == {"self-play", "defender-only"} and len(result["warm_start_minutes"]) == 2
    assert "bench" in result["warm_start"]
    # Minutes come from the runs' own metrics, so summarising the finished ablation again reports the same.
    for arm in ("self-play", "defender-only"):
        steps = [r["time/step_s"] for s in (1, 2) for r in runner.trainers[f"{arm}/seed_{s}"].run.metrics.rows()
                 if r["kind"] == "train"]
        assert abs(sum(result["rl_minutes"][arm]) - sum(steps) / 60) < 1e-9
    again = run_ablation(fn("self-play", 1), ["self-play", "defender-only"], [1, 2], tmp_path / "abl", runner, fn)
    assert again["rl_minutes"] == result["rl_minutes"] and again["warm_start_minutes"] == result["warm_start_minutes"]
    assert all(m > 0 for m in result["warm_start_minutes"])
    for seed in (1, 2):
        warm = runner.trainers[f"warm_start/seed_{seed}"].run.metrics.rows()
        warm_row = [r for r in warm if r.get("stage") == "after_warm_start"][0]
        for arm in ("self-play", "defender-only"):
            rows = runner.trainers[f"{arm}/seed_{seed}"].run.metrics.rows()
            assert [r for r in rows if r.get("stage") == "after_warm_start"] == [warm_row]
            assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
            assert [r["stage"] for r in rows if r["kind"] == "eval"] == ["start", "after_warm_start", "end"]
    # The arms differ after the warm start: the defender-only arm never plays the attacker.
    sp = runner.trainers["self-play/seed_1"].run.games.rows()
    do = runner.trainers["defender-only/seed_1"].run.games.rows()
    assert any(g["attacker"] for g in sp) and not any(g["attacker"] for g in do)


@pytest.mark.slow
def test_a_forked_arm_trains_exactly_like_an_uninterrupted_run(tmp_path):
    runner = Runner(tmp_path)
    fn = overrides()
    run_ablation(fn("self-play", 3), ["self-play", "defender-only"], [3], tmp_path / "abl", runner, fn)
    straight = make_trainer(tmp_path, fn("self-play", 3), name="straight")
    straight.components.eval_fn = fake_eval
    straight.components.warm_start_fn = make_warm_start(straight.cfg, FakeJudge(), SEEDS)
    straight.fit()
    forked = runner.trainers["self-play/seed_3"]
    for k, v in weights(straight).items():
        assert torch.allclose(v, weights(forked)[k], atol=1e-6), k


@pytest.mark.slow
def test_an_arm_that_changes_the_warm_start_runs_its_own(tmp_path):
    runner = Runner(tmp_path)
    fn = overrides({"no-cot": {"game.cot": "false"}})
    base = fn("self-play", 1)
    assert warm_start_view(fn("defender-only", 1)) == warm_start_view(base)
    assert warm_start_view(fn("no-cot", 1)) != warm_start_view(base)
    run_ablation(base, ["self-play", "no-cot"], [1], tmp_path / "abl", runner, fn)
    assert sorted(runner.warm_starts) == sorted([str(tmp_path / "abl" / "warm_start" / "seed_1"),
                                                 str(tmp_path / "abl" / "no-cot" / "seed_1")])


@pytest.mark.slow
def test_a_rerun_trains_nothing_again(tmp_path):
    runner = Runner(tmp_path)
    fn = overrides()
    first = run_ablation(fn("self-play", 1), ["self-play", "defender-only"], [1], tmp_path / "abl", runner, fn)
    again = Runner(tmp_path)
    second = run_ablation(fn("self-play", 1), ["self-play", "defender-only"], [1], tmp_path / "abl", again, fn)
    assert again.trainers == {} and copy.deepcopy(first["arms"]) == second["arms"]


@pytest.mark.slow
def test_a_cached_warm_start_is_reused_by_a_run_with_the_same_inputs(tmp_path, monkeypatch):
    """The first run stores its warm start; a second run with other RL settings (lr, steps) starts from it at RL
    step 1 with identical weights, and a run whose warm-start inputs differ does not find it."""
    from safeplay.engine import warm_cache

    monkeypatch.setenv("SAFEPLAY_CACHE", str(tmp_path / "cache"))
    runner = Runner(tmp_path)
    first = overrides()("self-play", 1)
    root = tmp_path / "abl" / "first"
    tr = make_trainer(root.parent, first, name=root.name)
    tr.components.eval_fn = fake_eval
    tr.components.warm_start_fn = make_warm_start(first, FakeJudge(), SEEDS)
    tr.components.after_warm_start = lambda run: warm_cache.store(first, run.root)
    tr.fit()
    assert warm_cache.finished(warm_cache.entry(first))

    second = overrides({"self-play": {"optim.lr": "0.05", "steps": 1}})("self-play", 1)
    assert warm_cache.cache_key(second) == warm_cache.cache_key(first)
    root2 = tmp_path / "abl" / "second"
    assert warm_cache.restore(second, root2)
    runner(second, root2)  # resumes: no warm start of its own
    assert runner.warm_starts == []
    rows = [r for r in runner.trainers["second"].run.metrics.rows() if r["kind"] == "train"]
    assert [r["step"] for r in rows] == [1]
    other = overrides({"self-play": {"warm_start.epochs": 2}})("self-play", 1)
    assert not warm_cache.restore(other, tmp_path / "abl" / "third")
