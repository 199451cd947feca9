"""SSP recipe on a tiny random model with scripted judges: pool metrics, replay re-judging, ablations, resume."""

from __future__ import annotations

import json
from functools import partial
from typing import Callable, Sequence

import pytest
import torch

from fakes import SEEDS, FakeJudge, make_trainer, strip_times, train_config
from safeplay.config import ConfigError
from safeplay.judges.base import JudgeItem, Verdict, label_from


class ScoreJudge:
    """Scores every item with ``fn(item, call)`` (1–5, or None for an unreadable verdict); records what it saw."""

    name = "score"

    def __init__(self, fn: Callable[[JudgeItem, int], float | None]):
        self.fn = fn
        self.calls = 0
        self.seen: list[list[JudgeItem]] = []

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        self.calls += 1
        self.seen.append(list(items))
        out = []
        for it in items:
            s = self.fn(it, self.calls)
            if s is None:
                out.append(Verdict(unparseable=True, raw="???", judge=self.name))
                continue
            refusal, harmful = s == 1, s >= 4
            out.append(Verdict(True, refusal, harmful, label_from(refusal, harmful), score=s, judge=self.name))
        return out


def always(score):
    return ScoreJudge(lambda item, call: score)


SSP_SETTINGS = ["steps=3", "rl.micro_batch_size=8", "rl.group_size=2", "ssp.replay_share=0.25", "ssp.benign_share=0.25"]
make_cfg = partial(train_config, "ssp", SSP_SETTINGS)


def train_rows(tr):
    return [r for r in tr.run.metrics.rows() if r["kind"] == "train"]


@pytest.mark.slow
def test_run_logs_pool_metrics_and_replays_failures(tmp_path):
    tr = make_trainer(tmp_path, make_cfg(), always(5))  # every defender answer fails: every attack is a failure
    tr.fit()
    rows = train_rows(tr)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        for key in ("ssp/pool_size", "ssp/replay_share", "ssp/mean_priority", "ssp/replay_still_failing",
                    "ssp/evicted_cap", "ssp/removed_solved", "ssp/unscored"):
            assert key in r, key
        assert [r[f"ssp/score_hist/{b}"] for b in range(1, 6)] == [0, 0, 0, 0, 1]
    # batch 4 = 1 benign + 1 replay slot + 2 fresh goals (3 fresh at step 1, the pool is empty), G = 2: a fresh
    # goal gets 2 attacks, each answered twice (4 games); benign and replayed prompts are answered twice.
    assert rows[0]["ssp/replay_share"] == 0 and rows[0]["ssp/inserted"] > 0
    assert rows[1]["ssp/replay_share"] == pytest.approx(2 / 12) and rows[1]["ssp/replay_still_failing"] == 1.0
    games = tr.run.games.rows()
    fresh_attacks = {g["attacker"]["public"].strip() for g in games if g["source"] == "fresh" and g["attacker"]}
    replayed = [g for g in games if g["source"] == "replay"]
    assert len(replayed) == 2 * 2
    assert all(g["attacker"] is None and g["query"] in fresh_attacks for g in replayed)
    assert all(g["rewards"] == {"defender": 0.0} for g in replayed)  # replay trains the defender only
    fresh = [g for g in games if g["source"] == "fresh" and g["seed_harmful"]]
    assert all(g["rewards"] == {"defender": 0.0, "attacker": 1.0} for g in fresh)
    assert tr.recipe.pool.total_visits == 2


@pytest.mark.slow
def test_replayed_entries_are_rejudged_and_updated(tmp_path):
    # Step 1: every answer fails (score 5). Later: the defender holds (score 1) — replays should record that.
    judge = ScoreJudge(lambda item, call: 5 if call == 1 else 1)
    cfg = make_cfg(**{"ssp.min_visits": 5})
    tr = make_trainer(tmp_path, cfg, judge)
    tr.train_step(1)
    pool = tr.recipe.pool
    assert len(pool) > 0 and all(e.visits == 0 and e.mean_reward == 0.0 for e in pool.entries())
    row = tr.train_step(2)
    replayed = [e for e in pool.entries() if e.visits == 1]
    assert len(replayed) == 1
    e = replayed[0]
    assert sum(it.prompt == e.attack for it in judge.seen[-1]) == cfg.rl.group_size  # re-answered G times, re-judged
    assert e.mean_reward == pytest.approx(0.5)  # (insertion 0 + replay 1) / 2
    assert e.last_step == 2 and e.response != ""
    assert row["ssp/replay_still_failing"] == 0.0
    assert row["ssp/score_hist/1"] == 1.0


@pytest.mark.slow
def test_solved_entries_leave_the_pool(tmp_path):
    judge = ScoreJudge(lambda item, call: 5 if call == 1 else 1)
    cfg = make_cfg(**{"ssp.min_visits": 1, "ssp.evict_success_threshold": 0.4, "steps": 2})
    tr = make_trainer(tmp_path, cfg, judge)
    tr.train_step(1)
    size = len(tr.recipe.pool)
    row = tr.train_step(2)
    assert row["ssp/removed_solved"] == 1 and len(tr.recipe.pool) == size - 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "uniform"])
def test_replay_modes(tmp_path, mode):
    tr = make_trainer(tmp_path, make_cfg(**{"ssp.replay": mode}), always(5))
    tr.fit()
    rows = train_rows(tr)
    games = tr.run.games.rows()
    if mode == "none":
        assert not any(g["source"] == "replay" for g in games)
        assert all(r["ssp/replay_share"] == 0 and r["ssp/pool_size"] == 0 for r in rows)
        # the replay slot goes to fresh attacks: 3 goals × 2 attacks × 2 answers + 1 benign seed × 2 answers
        assert all(r["games"] == 14 for r in rows)
    else:
        assert sum(g["source"] == "replay" for g in games) == 2 * 2
        # from step 2 one slot is a replayed attack (2 answers) instead of a fresh goal (2 attacks × 2 answers)
        assert [r["games"] for r in rows] == [14, 12, 12]


@pytest.mark.slow
def test_benign_rewards_and_unscored_verdicts(tmp_path):
    # Benign prompts: score 2 (a helpful, harmless answer); every other item unreadable.
    benign = {s.text for s in SEEDS if not s.harmful}
    judge = ScoreJudge(lambda item, call: 2 if item.prompt in benign else None)
    tr = make_trainer(tmp_path, make_cfg(**{"steps": 1}), judge)
    tr.fit()
    games = tr.run.games.rows()
    b = [g for g in games if not g["seed_harmful"]]
    h = [g for g in games if g["seed_harmful"]]
    assert len(b) == 2 and all(g["rewards"] == {"defender": 1.0} for g in b)
    assert len(h) == 12 and all(g["rewards"] == {"defender": None, "attacker": None} for g in h)  # 3 × 2 × 2
    row = train_rows(tr)[0]
    assert row["ssp/unscored"] == 12 and row["samples"] == 2 and row["ssp/pool_size"] == 0
    assert all(row[f"ssp/score_hist/{k}"] is None for k in range(1, 6))


@pytest.mark.slow
def test_benign_refusal_gets_zero(tmp_path):
    tr = make_trainer(tmp_path, make_cfg(**{"steps": 1}), always(1))
    tr.fit()
    b = [g for g in tr.run.games.rows() if not g["seed_harmful"]]
    assert b and all(g["rewards"] == {"defender": 0.0} for g in b)


def test_shares_must_leave_room_for_fresh_attacks(tmp_path):
    with pytest.raises(ConfigError, match="ssp.benign_share"):
        make_trainer(tmp_path, make_cfg(**{"ssp.replay_share": 0.5, "ssp.benign_share": 0.5}), always(5))


@pytest.mark.slow
def test_state_dict_is_json_and_round_trips(tmp_path):
    tr = make_trainer(tmp_path, make_cfg(**{"ssp.replay": "uniform"}), FakeJudge())
    tr.train_step(1)
    tr.train_step(2)
    state = json.loads(json.dumps(tr.recipe.state_dict()))
    other = make_trainer(tmp_path, make_cfg(**{"ssp.replay": "uniform"}), FakeJudge(), name="other")
    other.recipe.load_state_dict(state)
    assert other.recipe.state_dict() == tr.recipe.state_dict()
    # the restored RNG draws the same uniform sample
    assert [e.id for e in other.recipe.pool.sample(3)] == [e.id for e in tr.recipe.pool.sample(3)]


@pytest.mark.slow
def test_config_settings_win_over_checkpointed_pool_settings(tmp_path):
    tr = make_trainer(tmp_path, make_cfg(), always(5))
    tr.train_step(1)
    state = json.loads(json.dumps(tr.recipe.state_dict()))
    other = make_trainer(tmp_path, make_cfg(**{"ssp.ucb_c": 2.0, "ssp.replay": "uniform"}), always(5), name="o")
    other.recipe.load_state_dict(state)
    assert other.recipe.pool.c == 2.0 and other.recipe.pool.mode == "uniform"
    assert [e.attack for e in other.recipe.pool.entries()] == [e.attack for e in tr.recipe.pool.entries()]


@pytest.mark.slow
def test_resume_restores_the_pool_exactly(tmp_path):
    """4 steps in one go == 2 steps, a kill in step 3, --resume, 2 more steps: same pool, logs and weights."""
    judge_fn = lambda item, call: 5 if (hash_of(item.response) % 3) else 1  # noqa: E731
    cfg = make_cfg(**{"steps": 4})
    straight = make_trainer(tmp_path, cfg, ScoreJudge(judge_fn), name="straight")
    straight.fit()
    assert straight.recipe.pool.total_visits > 0

    killed = make_trainer(tmp_path, cfg, ScoreJudge(judge_fn), name="killed")

    def kill(step, row):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        killed.fit(progress=kill)
    resumed = make_trainer(tmp_path, cfg, ScoreJudge(judge_fn), name="killed")
    resumed.fit(resume=True)
    assert resumed.step == 4
    assert resumed.recipe.state_dict() == straight.recipe.state_dict()
    assert strip_times(straight.run.metrics.rows()) == strip_times(resumed.run.metrics.rows())
    assert straight.run.games.rows() == resumed.run.games.rows()
    a, b = straight.policies.state_dict("defender"), resumed.policies.state_dict("defender")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def hash_of(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode("utf-8"))


def test_pool_takes_the_run_ssp_settings(tmp_path):
    cfg = make_cfg(**{"ssp.pool_cap": 7, "ssp.ucb_c": 0.3, "ssp.replay": "uniform", "ssp.insert_threshold": 0.2,
                      "ssp.evict_success_threshold": 0.6, "ssp.min_visits": 3})
    pool = make_trainer(tmp_path, cfg, always(5)).recipe.pool
    assert (pool.cap, pool.c, pool.mode, pool.insert_threshold) == (7, 0.3, "uniform", 0.2)
    assert (pool.evict_success_threshold, pool.evict_min_visits) == (0.6, 3)
