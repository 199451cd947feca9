"""PolicyUpdater: the fast paths (one fused pass, prompt-free LM head, length-sorted micro-batches) change nothing.

Tolerance: on a tiny fp32 model the fused and the two-pass updates give the same weights within 1e-6 and the same
loss within 1e-5; log-probs with the LM head restricted to completion positions equal the full computation there.
"""

from __future__ import annotations

import random

import pytest
import torch

from safeplay.models import PolicyConfig, RolePolicies, tiny_model
from safeplay.rl.batch import RoleSample, collate
from safeplay.rl.config import OptimConfig, RLConfig
from safeplay.rl.update import PolicyUpdater

SHARED = {"attacker": "player", "defender": "player"}


def policies():
    model, tok = tiny_model(seed=0)
    torch.manual_seed(0)
    return RolePolicies(model, tok, ("attacker", "defender"), PolicyConfig(share=SHARED), micro_batch_size=4)


def samples(n: int = 10, groups: int = 1) -> list[RoleSample]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        prompt = [rng.randrange(10, 2000) for _ in range(rng.randint(4, 20))]
        completion = [rng.randrange(10, 2000) for _ in range(rng.randint(2, 12))]
        reward = float(rng.choice([-1.0, 0.0, 1.0])) if groups > 1 else rng.uniform(-1, 1)
        out.append(RoleSample(role="attacker" if i % 3 == 0 else "defender", prompt_ids=prompt,
                              completion_ids=completion, reward=reward, group=i // groups if groups > 1 else None))
    return out


def train_once(rl: RLConfig) -> tuple[dict, dict[str, torch.Tensor]]:
    pol = policies()
    upd = PolicyUpdater(pol, "attacker", rl, OptimConfig(lr=1e-2, warmup_ratio=0.0), total_steps=4)
    stats = upd.step(samples(groups=rl.group_size if rl.algorithm == "grpo" else 1))
    return stats, {k: v.clone() for k, v in pol.state_dict("attacker").items()}


@pytest.mark.slow
def test_fused_pass_equals_two_passes():
    kw = dict(micro_batch_size=3, kl_in_reward=True, kl_beta=0.05, old_logprobs="recompute")
    fused_stats, fused = train_once(RLConfig(fused_max_tokens=100_000, **kw))
    plain_stats, plain = train_once(RLConfig(fused_max_tokens=0, **kw))
    assert fused_stats["fused_pass"] == 1.0 and plain_stats["fused_pass"] == 0.0
    assert fused_stats["samples_trained"] == plain_stats["samples_trained"] > 0
    assert fused_stats["loss"] == pytest.approx(plain_stats["loss"], abs=1e-5)
    assert any(not torch.equal(fused[k], policies().state_dict("attacker")[k]) for k in fused)  # it trained
    for k in fused:
        assert torch.allclose(fused[k], plain[k], atol=1e-6), k


def with_rollout_logprobs(batch_samples: list[RoleSample]) -> list[RoleSample]:
    """The samples with the log-probs a generator would have reported: teacher-forced under the initial weights."""
    pol = policies()
    out = []
    for s in batch_samples:
        b = collate([s], pol.tokenizer.pad_token_id)
        with torch.no_grad():
            lp = pol.token_logprobs(s.role, b.input_ids, b.attention_mask)[0]
        p = len(s.prompt_ids)
        out.append(RoleSample(s.role, s.prompt_ids, s.completion_ids, s.reward, s.group,
                              rollout_logprobs=lp[p - 1 : p - 1 + len(s.completion_ids)].tolist()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("minibatches", [1, 2])
def test_rollout_logprobs_replace_the_old_pass(minibatches, monkeypatch):
    """REINFORCE++ with the KL in the reward: the rollout's log-probs give the update of a recomputed old pass,
    with one policy forward fewer per micro-batch."""
    rl = dict(micro_batch_size=3, kl_beta=0.05, minibatches=minibatches, fused_max_tokens=0)
    results = {}
    for source in ("rollout", "recompute"):
        pol = policies()
        calls = []
        real = pol.token_logprobs
        monkeypatch.setattr(pol, "token_logprobs", lambda *a, **k: calls.append(torch.is_grad_enabled()) or real(*a, **k))
        upd = PolicyUpdater(pol, "attacker", RLConfig(old_logprobs=source, **rl), OptimConfig(lr=1e-2, warmup_ratio=0.0), 4)
        stats = upd.step(with_rollout_logprobs(samples()))
        results[source] = stats, {k: v.clone() for k, v in pol.state_dict("attacker").items()}, calls
    (r_stats, r_w, r_calls), (p_stats, p_w, p_calls) = results["rollout"], results["recompute"]
    assert not any(not g for g in r_calls) and any(not g for g in p_calls)  # no no-grad policy pass
    assert len(r_calls) < len(p_calls)
    assert r_stats["defender/kl"] == pytest.approx(p_stats["defender/kl"], abs=1e-6)
    assert r_stats["loss"] == pytest.approx(p_stats["loss"], abs=1e-5)
    # The rollout's values come from one-row passes, the recomputed ones from padded micro-batches: fp32 rounding.
    # With two mini-batches the second Adam step divides by tiny second moments (LoRA A's first gradient is zero),
    # which magnifies that rounding to ~1e-5 of a 1e-2 step; one mini-batch stays within 1e-6.
    tol = 1e-6 if minibatches == 1 else 1e-4
    for k in r_w:
        assert torch.allclose(r_w[k], p_w[k], atol=tol), (k, (r_w[k] - p_w[k]).abs().max())


@pytest.mark.slow
def test_samples_without_rollout_logprobs_are_recomputed():
    pol = policies()
    mixed = with_rollout_logprobs(samples())
    for s in mixed:
        if s.role == "attacker":
            s.rollout_logprobs = None
    upd = PolicyUpdater(pol, "attacker", RLConfig(kl_beta=0.05, fused_max_tokens=0), OptimConfig(), 4)
    assert upd._old_source([s for s in mixed if s.role == "attacker"], False) == "pass"
    assert upd._old_source([s for s in mixed if s.role == "defender"], False) == "rollout"
    stats = upd.step(mixed)
    assert stats["samples_trained"] > 0 and "attacker/kl" in stats and "defender/kl" in stats


def test_grpo_with_one_minibatch_runs_no_old_pass(monkeypatch):
    """GRPO keeps its KL in the loss, so with one mini-batch nothing needs π_old before the gradient pass."""
    pol = policies()
    calls = []
    real = pol.token_logprobs
    monkeypatch.setattr(pol, "token_logprobs", lambda *a, **k: calls.append(torch.is_grad_enabled()) or real(*a, **k))
    rl = RLConfig(algorithm="grpo", group_size=2, kl_in_reward=False, kl_beta=0.05, kl_estimator="k3",
                  micro_batch_size=3, old_logprobs="recompute")
    upd = PolicyUpdater(pol, "attacker", rl, OptimConfig(lr=1e-2, warmup_ratio=0.0), 4)
    stats = upd.step(samples(groups=2))
    assert calls and all(calls)
    assert stats["samples_trained"] > 0 and stats["defender/kl"] == pytest.approx(0.0, abs=1e-6)  # ref = initial
    assert stats["fused_pass"] == 0.0


def test_fused_pass_only_for_one_minibatch_within_the_token_budget():
    pol = policies()
    assert PolicyUpdater(pol, "attacker", RLConfig(fused_max_tokens=100_000), OptimConfig(), 1)._fits_fused(samples())
    assert not PolicyUpdater(pol, "attacker", RLConfig(fused_max_tokens=10), OptimConfig(), 1)._fits_fused(samples())
    assert not PolicyUpdater(pol, "attacker", RLConfig(minibatches=2), OptimConfig(), 1)._fits_fused(samples())


@pytest.mark.slow
def test_logprobs_from_the_first_completion_position_match_the_full_pass():
    pol = policies()
    batch = collate(samples(6), pol.tokenizer.pad_token_id)
    assert batch.start > 0
    with torch.no_grad():
        full = pol.token_logprobs("defender", batch.input_ids, batch.attention_mask)
        part = pol.token_logprobs("defender", batch.input_ids, batch.attention_mask, batch.start)
        ref_full = pol.ref_token_logprobs(batch.input_ids, batch.attention_mask)
        ref_part = pol.ref_token_logprobs(batch.input_ids, batch.attention_mask, batch.start)
    mask = batch.response_mask.bool()
    assert part.shape == full.shape
    assert torch.allclose(part[mask], full[mask], atol=1e-6)
    assert torch.allclose(ref_part[mask], ref_full[mask], atol=1e-6)
    assert (part[:, : batch.start] == 0).all()


def test_grpo_skips_zero_variance_groups_before_any_forward():
    pol = policies()
    calls = []
    original = pol.token_logprobs
    pol.token_logprobs = lambda role, ids, *a, **k: (calls.append(ids.shape[0]), original(role, ids, *a, **k))[1]
    flat = [RoleSample("defender", [11, 12, 13], [14, 15], reward=1.0, group=g) for g in (0, 0, 1, 1)]
    flat[2].reward = -1.0  # group 1 varies, group 0 does not
    stats = PolicyUpdater(pol, "defender", RLConfig(algorithm="grpo", group_size=2), OptimConfig(), 1).step(flat)
    assert stats["defender/zero_variance_groups"] == 0.5
    assert stats["samples_trained"] == 2.0
    assert sum(calls) == 2  # only group 1's samples were ever forwarded


@pytest.mark.slow
def test_a_restored_updater_trains_with_its_own_learning_rate():
    """Moments and schedule position come from the checkpoint; the rate from the config the run resumed with."""
    pol = policies()
    cfg = OptimConfig(lr=1e-3, warmup_ratio=0.0, schedule="cosine", min_lr_ratio=0.1)
    first = PolicyUpdater(pol, "attacker", RLConfig(), cfg, total_steps=10)
    first.step(samples())
    first.step(samples())
    state = first.state_dict()
    faster = OptimConfig(lr=5e-3, warmup_ratio=0.0, schedule="cosine", min_lr_ratio=0.1)
    resumed = PolicyUpdater(policies(), "attacker", RLConfig(), faster, total_steps=10)
    resumed.load_state_dict(state)
    from safeplay.rl.config import lr_lambda

    assert resumed.scheduler.last_epoch == 2
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3 * lr_lambda(10, faster)(2))
    assert resumed.optimizer.state_dict()["state"]  # Adam moments restored
    resumed.step(samples())
    assert resumed.scheduler.get_last_lr()[0] == pytest.approx(5e-3 * lr_lambda(10, faster)(3))
    # Same config: exactly what the first updater would have done next.
    same = PolicyUpdater(policies(), "attacker", RLConfig(), cfg, total_steps=10)
    same.load_state_dict(state)
    assert same.optimizer.param_groups[0]["lr"] == pytest.approx(first.optimizer.param_groups[0]["lr"])


def test_micro_batches_are_capped_by_rows_and_padded_tokens():
    from safeplay.rl.batch import length_chunks

    lengths = [3, 50, 4, 10, 60, 5, 200]
    chunks = length_chunks(lengths, lambda n: n, max_rows=3, max_tokens=120)
    assert chunks == [[3, 4, 5], [10, 50], [60], [200]]  # 200 alone exceeds the cap: it still gets a chunk
    assert [len(c) for c in length_chunks(lengths, lambda n: n, max_rows=3)] == [3, 3, 1]
    assert all(len(c) * max(c) <= 120 for c in chunks if len(c) > 1)


def test_class_baseline_centres_rewards_within_each_kind_of_game():
    from safeplay.rl.advantages import class_centred

    assert class_centred([2.0, 2.0, 0.0, 2.0, 1.0], ["h", "h", "b", "b", None]) == [0.0, 0.0, -1.0, 1.0, 0.0]
    # Harmful games all refused (+2 each) carry nothing to learn under a class baseline; the benign pair does.
    batch = samples(4)
    for s, (reward, key) in zip(batch, [(2.0, "h"), (2.0, "h"), (0.0, "b"), (2.0, "b")]):
        s.role, s.reward, s.meta = "defender", reward, {"baseline_key": key}
    trained = {}
    for baseline in ("batch", "class"):
        pol = policies()
        rl = RLConfig(kl_beta=0.0, baseline=baseline)
        upd = PolicyUpdater(pol, "attacker", rl, OptimConfig(lr=1e-3, warmup_ratio=0.0), total_steps=2)
        trained[baseline] = upd.step(batch)["samples_trained"]
    assert trained == {"batch": 4.0, "class": 2.0}


@pytest.mark.slow
def test_samples_are_scored_at_their_sampling_temperature():
    """A sample drawn at temperature T is scored as log softmax(logits / T): the same values the generator
    reported, so the rollout-vs-learner gap logged by the update is ~0 (it is large when scored at T = 1)."""
    from safeplay.generation.base import SamplingParams

    pol = policies()
    from safeplay.game.rollout import play_turns
    from safeplay.generation.base import ChatPrompt
    from safeplay.recipes.base import sample_from

    prompts = [ChatPrompt([{"role": "user", "content": f"question {i}"}]) for i in range(4)]
    turns = play_turns(pol, "defender", prompts, SamplingParams(temperature=0.5, max_new_tokens=6), False, seed=1)
    batch = [sample_from(t, reward=float(i % 2)) for i, t in enumerate(turns)]
    assert all(s.temperature == 0.5 and s.has_rollout_logprobs for s in batch)
    upd = PolicyUpdater(pol, "defender", RLConfig(kl_beta=0.05), OptimConfig(lr=1e-3), total_steps=2)
    stats = upd.step(batch)
    assert stats["defender/rollout_logprob_gap"] < 1e-4
    cold = [RoleSample(s.role, s.prompt_ids, s.completion_ids, s.reward, rollout_logprobs=s.rollout_logprobs)
            for s in batch]  # the same tokens scored at T = 1
    assert PolicyUpdater(policies(), "defender", RLConfig(kl_beta=0.05), OptimConfig(lr=1e-3),
                         total_steps=2).step(cold)["defender/rollout_logprob_gap"] > 1e-2


def test_minibatches_mix_the_roles_that_share_weights(monkeypatch):
    """With several mini-batches, every optimiser step sees samples of both roles (rows are shuffled, seeded)."""
    pol = policies()
    upd = PolicyUpdater(pol, "attacker", RLConfig(minibatches=3, micro_batch_size=64, kl_beta=0.0),
                        OptimConfig(lr=1e-3), total_steps=6)
    seen: list[set[str]] = []
    real = upd._loss

    def spy(micro, logp):
        seen.append({r.sample.role for r in micro})
        return real(micro, logp)

    monkeypatch.setattr(upd, "_loss", spy)
    batch = samples(n=12)
    batch.sort(key=lambda s: s.role)  # worst case: arrive grouped by role
    upd.step(batch)
    assert len(seen) >= 3 and all(roles == {"attacker", "defender"} for roles in seen)


def test_rft_trains_only_on_samples_above_the_threshold():
    from safeplay.rl.direct import rft_selection

    batch = samples(n=8)
    kept = rft_selection(batch, 0.0)
    assert kept and all(s.reward > 0 for s in kept) and len(kept) < len(batch)
    pol = policies()
    before = {k: v.clone() for k, v in pol.state_dict("attacker").items()}
    stats = PolicyUpdater(pol, "attacker", RLConfig(algorithm="rft"), OptimConfig(lr=1e-2), total_steps=2).step(batch)
    assert stats["samples_trained"] == len(kept) and stats["rft_kept_share"] == len(kept) / len(batch)
    assert any(not torch.equal(before[k], v) for k, v in pol.state_dict("attacker").items())
    # nothing judged right: no update at all
    pol2 = policies()
    before2 = {k: v.clone() for k, v in pol2.state_dict("attacker").items()}
    none = [RoleSample(s.role, s.prompt_ids, s.completion_ids, -1.0) for s in batch]
    stats2 = PolicyUpdater(pol2, "attacker", RLConfig(algorithm="rft"), OptimConfig(lr=1e-2), total_steps=2).step(none)
    assert stats2["samples_trained"] == 0
    assert all(torch.equal(before2[k], v) for k, v in pol2.state_dict("attacker").items())


@pytest.mark.slow
def test_online_dpo_pairs_answers_to_one_prompt_and_raises_the_chosen_margin():
    from safeplay.rl.direct import dpo_pairs

    batch = samples(n=8, groups=2)
    for i, s in enumerate(batch):
        s.reward = float(i % 2)  # one better and one worse answer per group
        s.role = "defender"
    pairs = dpo_pairs(batch)
    assert len(pairs) == 4 and all(c.group == r.group and c.reward > r.reward for c, r in pairs)
    assert dpo_pairs([batch[0], batch[2]]) == []  # different groups never pair
    pol = policies()
    upd = PolicyUpdater(pol, "defender", RLConfig(algorithm="online_dpo", group_size=2, kl_beta=0.0, dpo_beta=0.5),
                        OptimConfig(lr=5e-2, warmup_ratio=0.0), total_steps=3)
    first = upd.step(batch)
    assert first["dpo_pairs"] == 4 and first["dpo_margin"] == pytest.approx(0.0, abs=1e-4)  # policy == reference
    second = upd.step(batch)
    assert second["dpo_margin"] > 0 and second["dpo_accuracy"] > 0.5
