"""The game loop on a tiny random model with a deterministic fake judge: logs, checkpoints, resume, failures."""

from __future__ import annotations

import pytest
import torch

from fakes import SEEDS, FakeJudge, make_cfg, make_trainer, strip_times, weights
from safeplay.data.seed_sources import SeedPrompt
from safeplay.errors import SafeplayError


@pytest.mark.slow
@pytest.mark.parametrize("cot", [True, False])
def test_self_redteam_runs_logs_and_checkpoints(tmp_path, cot):
    cfg = make_cfg(**{"game.cot": str(cot).lower()})
    tr = make_trainer(tmp_path, cfg)
    before = weights(tr)
    tr.fit()
    rows = tr.run.metrics.rows()
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert all("defender/reward_mean" in r or r["samples"] == 0 for r in train_rows)
    games = tr.run.games.rows()
    assert len(games) == 4 * 4
    assert any(g["attacker"] is not None for g in games) and any(g["attacker"] is None for g in games)
    assert all(g["verdict"]["judge"] == "fake" for g in games)
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == "step_4"
    after = weights(tr)
    assert any(not torch.equal(before[k], after[k]) for k in before), "training did not change the weights"


@pytest.mark.slow
def test_resume_equivalence(tmp_path):
    """4 steps in one go == 2 steps, a kill in step 3, --resume, 2 more steps (exact on CPU fp32)."""
    cfg = make_cfg()
    straight = make_trainer(tmp_path, cfg, name="straight")
    straight.fit()

    killed = make_trainer(tmp_path, cfg, name="killed")

    def kill(step, row):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        killed.fit(progress=kill)
    resumed = make_trainer(tmp_path, cfg, name="killed")
    resumed.fit(resume=True)
    assert resumed.step == 4
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(resumed)[k]), k  # identical, not merely close
    a = strip_times(straight.run.metrics.rows())
    b = strip_times(resumed.run.metrics.rows())
    assert a == b
    assert straight.run.games.rows() == resumed.run.games.rows()


@pytest.mark.slow
def test_judge_failure_is_skipped_and_counted(tmp_path):
    cfg = make_cfg()
    tr = make_trainer(tmp_path, cfg, judge=FakeJudge(fail_on_calls=[2]))
    tr.fit()
    rows = tr.run.metrics.rows()
    skips = [r for r in rows if r["kind"] == "skip"]
    assert len(skips) == 1 and "timed out" in skips[0]["error"]
    assert tr.skipped_steps == 1
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 3, 4]


@pytest.mark.slow
def test_repeated_judge_failure_stops_with_clear_error_and_keeps_checkpoint(tmp_path):
    cfg = make_cfg(**{"judge.max_failures": 2})
    tr = make_trainer(tmp_path, cfg, judge=FakeJudge(fail_on_calls=[3, 4, 5, 6]))
    with pytest.raises(SafeplayError, match="consecutive steps failed.*--resume"):
        tr.fit()
    assert (tmp_path / "run" / "checkpoints" / "step_2" / "state.json").is_file()


@pytest.mark.slow
def test_defender_only_has_no_attacker_turns(tmp_path):
    cfg = make_cfg(**{"game.defender_only": "true", "steps": 2})
    tr = make_trainer(tmp_path, cfg)
    tr.fit()
    games = tr.run.games.rows()
    assert games and all(g["attacker"] is None and g["query"] == g["seed"] for g in games)


class ScriptedPromptJudge(FakeJudge):
    """The fake judge, except that every prompt is labelled harmful iff it mentions ``marker``."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker

    def judge(self, items):
        out = super().judge(items)
        for it, v in zip(items, out):
            v.prompt_harmful = self.marker in it.prompt
        return out


@pytest.mark.slow
@pytest.mark.parametrize("skip", [False, True])
def test_defender_skips_unfaithful_revisions(tmp_path, skip):
    from safeplay.recipes.self_redteam import SelfRedTeam

    cfg = make_cfg(**{"game.defender_skips_unfaithful": str(skip).lower(), "batch_size": 8, "game.cot": "false"})
    tr = make_trainer(tmp_path, cfg, judge=ScriptedPromptJudge("?"))
    recipe = SelfRedTeam(tr.recipe.ctx)
    res = recipe.play(1)
    n_def = sum(s.role == "defender" for s in res.samples)
    # A revision the judge puts in the other class than its seed (the tiny model's text has no "?" → benign).
    unfaithful = [g for g in res.games if g.attack is not None and g.verdict.prompt_harmful != g.seed_harmful]
    assert unfaithful, "the scripted judge should make some revisions unfaithful"
    decided = [g for g in res.games if g.rewards["defender"] is not None]
    if skip:
        assert n_def == len(decided) - len(unfaithful)
        assert res.metrics["defender/skipped_unfaithful"] == len(unfaithful)
        assert all(g.extra["defender_skipped"] == "unfaithful revision" for g in unfaithful)
        # The attacker is still rewarded (and penalised for unfaithfulness) on those games.
        assert all(g.rewards["attacker"] is not None for g in unfaithful)
    else:
        assert n_def == len(decided) and "defender/skipped_unfaithful" not in res.metrics


@pytest.mark.parametrize("source", ["judge", "seed"])
def test_verbatim_prompt_label_source(tmp_path, source):
    from safeplay.recipes.self_redteam import SelfRedTeam
    from safeplay.recipes.self_redteam.rewards import GameOutcome, defender_reward

    cfg = make_cfg(**{"game.verbatim_prompt_label": source, "batch_size": 8, "game.cot": "false"})
    tr = make_trainer(tmp_path, cfg, judge=ScriptedPromptJudge("?"))  # "?" marks prompts the judge calls harmful
    res = SelfRedTeam(tr.recipe.ctx).play(1)
    verbatim = [g for g in res.games if g.attack is None and g.rewards["defender"] is not None]
    # Some verbatim seeds are labelled against their dataset class by the scripted judge.
    assert any(g.verdict.prompt_harmful != g.seed_harmful for g in verbatim)
    for g in verbatim:
        q = g.seed_harmful if source == "seed" else g.verdict.prompt_harmful
        o = GameOutcome(g.seed_harmful, False, q, g.verdict.refusal, g.verdict.response_harmful)
        assert g.rewards["defender"] == defender_reward(o)
    for g in res.games:  # rewritten prompts always take the judge's label
        if g.attack is not None and g.rewards["attacker"] is not None:
            o = GameOutcome(g.seed_harmful, True, g.verdict.prompt_harmful, g.verdict.refusal, g.verdict.response_harmful)
            assert g.rewards["defender"] == defender_reward(o)


def test_warm_start_benign_prompts_take_the_hard_share():
    import random

    from safeplay.engine.warm_start import benign_sample

    seeds = [SeedPrompt(f"hard {i}", False, "or_hard", f"h{i}") for i in range(10)]
    seeds += [SeedPrompt(f"plain {i}", False, "alpaca_train", f"p{i}") for i in range(10)]
    seeds += [SeedPrompt(f"bad {i}", True, "advbench", f"b{i}") for i in range(10)]
    got = benign_sample(seeds, 8, 0.25, random.Random(0))
    assert len(got) == 8 and sum(t.startswith("hard") for t in got) == 2 and not any(t.startswith("bad") for t in got)
    assert benign_sample(seeds, 8, 0.25, random.Random(0)) == got
    # Fewer hard prompts than asked for: all of them, the rest plain.
    got = benign_sample(seeds, 16, 0.9, random.Random(1))
    assert sum(t.startswith("hard") for t in got) == 10 and len(got) == 16
    assert sum(t.startswith("hard") for t in benign_sample(seeds, 8, 0.0, random.Random(0))) == 0


def test_warm_start_harmful_prompts_take_the_contextual_share():
    import random

    from safeplay.engine.warm_start import class_sample
    from safeplay.data.seed_sources import CONTEXTUAL_SOURCES

    seeds = [SeedPrompt(f"ctx {i}", True, "harmbench_val_contextual", f"c{i}") for i in range(3)]
    seeds += [SeedPrompt(f"plain {i}", True, "advbench", f"p{i}") for i in range(20)]
    seeds += [SeedPrompt(f"good {i}", False, "alpaca_train", f"g{i}") for i in range(10)]
    got = class_sample(seeds, True, 10, CONTEXTUAL_SOURCES, 0.2, random.Random(0))
    assert len(got) == 10 and sum(t.startswith("ctx") for t in got) == 2 and not any(t.startswith("good") for t in got)
    got = class_sample(seeds, True, 10, CONTEXTUAL_SOURCES, 0.9, random.Random(0))
    assert sum(t.startswith("ctx") for t in got) == 3  # all there are


@pytest.mark.slow
@pytest.mark.parametrize("steps", [0, 2])
def test_end_evaluation_is_not_repeated_on_unchanged_weights(tmp_path, steps):
    calls = []
    cfg = make_cfg(**{"steps": steps})
    tr = make_trainer(tmp_path, cfg)
    tr.components.eval_fn = lambda policies, step, stage: calls.append((step, stage)) or {"x/asr": float(len(calls))}
    tr.fit()
    evals = [r for r in tr.run.metrics.rows() if r["kind"] == "eval"]
    assert [r["stage"] for r in evals] == ["start", "end"]
    if steps == 0:  # nothing trained after the start evaluation: its figures are the end's, not re-scored
        assert calls == [(0, "start")] and evals[1]["same_as_stage"] == "start" and evals[1]["x/asr"] == 1.0
    else:
        assert calls == [(0, "start"), (2, "end")] and "same_as_stage" not in evals[1]


@pytest.mark.slow
def test_grpo_variant_logs_zero_variance_share(tmp_path):
    cfg = make_cfg(**{"rl.algorithm": "grpo", "rl.group_size": 2, "rl.kl_in_reward": "false", "steps": 1})
    tr = make_trainer(tmp_path, cfg)
    tr.fit()
    row = [r for r in tr.run.metrics.rows() if r["kind"] == "train"][0]
    assert any(k.endswith("zero_variance_groups") for k in row)
    games = tr.run.games.rows()
    attacked = [g for g in games if g["attacked"]]
    assert attacked and len(attacked) < len(games)
    # a verbatim seed is answered twice; an attacked one gets 2 revisions, each answered twice
    assert len(games) == 2 * (len(games) - len(attacked)) // 2 + len(attacked)
    assert len(attacked) % 4 == 0


@pytest.mark.slow
def test_grpo_groups_compare_answers_to_one_prompt(tmp_path):
    """Each defender group holds G answers to the *same* prompt (one attack, or one verbatim seed); the attacker's
    group is its revisions of one seed, each revision one sample whose reward averages its answers."""
    from safeplay.recipes.self_redteam import SelfRedTeam

    cfg = make_cfg(**{"rl.algorithm": "grpo", "rl.group_size": 2, "rl.kl_in_reward": "false", "steps": 1})
    tr = make_trainer(tmp_path, cfg)
    result = tr.recipe.play(1)
    assert isinstance(tr.recipe, SelfRedTeam)
    by_group: dict = {}
    for g in result.games:
        by_group.setdefault(g.extra["group"], []).append(g)
    assert all(len(members) == 2 and len({m.query for m in members}) == 1 for members in by_group.values())
    assert any(g.attack is not None for g in result.games)
    attacker = [s for s in result.samples if s.role == "attacker"]
    revisions = {id(g.attack) for g in result.games if g.attack is not None and g.rewards.get("attacker") is not None}
    assert len(attacker) == len(revisions)
    by_seed: dict = {}
    for s in attacker:
        by_seed.setdefault(s.group, []).append(s)
    assert all(len(v) == 2 for v in by_seed.values())  # two revisions of each attacked seed
    defender_groups = {s.group for s in result.samples if s.role == "defender"}
    assert defender_groups <= set(by_group)


@pytest.mark.slow
def test_aux_sft_mixes_warm_start_data_into_updates_and_resumes_exactly(tmp_path):
    from safeplay.engine.warm_start import SFT_FILE, make_warm_start

    cfg = make_cfg(**{
        "rl.aux_sft_coef": 1.0, "rl.aux_sft_batch": 2, "warm_start.enabled": "true", "warm_start.harmful_prompts": 3,
        "warm_start.benign_prompts": 3, "warm_start.attacker_pairs": 2, "warm_start.distill_samples": 1,
        "warm_start.epochs": 1, "warm_start.max_new_tokens": 6,
    })

    def trainer(name):
        tr = make_trainer(tmp_path, cfg, name=name)
        tr.components.warm_start_fn = make_warm_start(cfg, FakeJudge(), SEEDS)
        return tr

    straight = trainer("straight")
    straight.fit()
    assert (tmp_path / "straight" / SFT_FILE).is_file()
    rows = [r for r in straight.run.metrics.rows() if r["kind"] == "train"]
    assert rows and all("update/player/aux_sft_loss" in r for r in rows if r["samples"])

    killed = trainer("killed")

    def kill(step, row):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        killed.fit(progress=kill)
    resumed = trainer("killed")
    resumed.fit(resume=True)
    for k, v in weights(straight).items():
        assert torch.allclose(v, weights(resumed)[k], atol=1e-6), k
    assert strip_times(straight.run.metrics.rows()) == strip_times(resumed.run.metrics.rows())


def test_aux_sft_without_a_warm_start_is_a_config_error():
    from safeplay.config import ConfigError

    with pytest.raises(ConfigError, match="rl.aux_sft_coef"):
        make_cfg(**{"rl.aux_sft_coef": 1.0})


@pytest.mark.parametrize("reference", ["initial", "base"])
def test_kl_reference_after_a_warm_start(tmp_path, reference):
    """``initial``: RL's KL is measured to the warm-started weights (zero at the first update); ``base``: to the
    untrained base, which the warm start moved away from."""
    from safeplay.engine.warm_start import make_warm_start

    cfg = make_cfg(**{
        "warm_start.enabled": "true", "warm_start.harmful_prompts": 3, "warm_start.benign_prompts": 3,
        "warm_start.attacker_pairs": 2, "warm_start.distill_samples": 1, "warm_start.epochs": 2,
        "warm_start.max_new_tokens": 6, "warm_start.lr": 0.01, "steps": 1, "rl.kl_reference": reference,
        "game.cot": "false",
    })
    tr = make_trainer(tmp_path, cfg)
    tr.components.warm_start_fn = make_warm_start(cfg, FakeJudge(), SEEDS)
    tr.fit()
    row = [r for r in tr.run.metrics.rows() if r["kind"] == "train"][0]
    kl = row["update/player/defender/kl"]
    assert (abs(kl) < 1e-4) if reference == "initial" else (abs(kl) > 1e-3)  # k1 per sample can be negative
    saved = tmp_path / "run" / "checkpoints" / "step_1" / "reference"
    assert saved.is_dir() == (reference == "initial")
