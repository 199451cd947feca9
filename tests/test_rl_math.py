"""Advantage estimators, KL estimators, losses and the LR schedule."""

import math

import pytest
import torch

from safeplay.config import ConfigError
from safeplay.rl.advantages import grpo_advantages, reinforce_pp_returns, whiten
from safeplay.rl.batch import RoleSample, collate
from safeplay.rl.kl import kl_per_token
from safeplay.rl.losses import ppo_clip_loss, sft_loss
from safeplay.rl.config import OptimConfig, RLConfig, lr_lambda


def test_kl_estimators_match_their_definitions():
    logp = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.5, -1.0, -0.5])
    d = logp - ref
    assert torch.allclose(kl_per_token(logp, ref, "k1"), d)
    assert torch.allclose(kl_per_token(logp, ref, "k2"), 0.5 * d**2)
    assert torch.allclose(kl_per_token(logp, ref, "k3"), torch.exp(-d) - 1 + d)
    assert (kl_per_token(logp, ref, "k3") >= 0).all()
    with pytest.raises(ValueError):
        kl_per_token(logp, ref, "k4")


def test_k1_and_k3_are_unbiased_estimates_of_kl():
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(6), 0)
    q = torch.softmax(torch.randn(6), 0)
    true_kl = float((p * (p.log() - q.log())).sum())
    draws = torch.multinomial(p, 200_000, replacement=True)
    logp, logq = p.log()[draws], q.log()[draws]
    assert float(kl_per_token(logp, logq, "k1").mean()) == pytest.approx(true_kl, abs=0.01)
    assert float(kl_per_token(logp, logq, "k3").mean()) == pytest.approx(true_kl, abs=0.01)


def test_reinforce_pp_returns_put_reward_on_last_token_and_kl_everywhere():
    mask = torch.tensor([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.float32)
    kl = torch.ones(2, 5)
    rewards = torch.tensor([2.0, -1.0])
    ret = reinforce_pp_returns(rewards, kl, mask, beta=0.1, gamma=1.0)
    # Sample 0: tokens 1..3, token rewards -0.1 each, +2 on token 3.
    assert torch.allclose(ret[0], torch.tensor([0.0, 1.7, 1.8, 1.9, 0.0]))
    assert torch.allclose(ret[1], torch.tensor([0.0, 0.0, -1.3, -1.2, -1.1]))


def test_reinforce_pp_clips_reward_and_discounts():
    mask = torch.tensor([[1, 1]], dtype=torch.float32)
    ret = reinforce_pp_returns(torch.tensor([50.0]), torch.zeros(1, 2), mask, beta=0.0, gamma=0.5, reward_clip=10)
    assert torch.allclose(ret, torch.tensor([[5.0, 10.0]]))


def test_whiten_is_zero_mean_unit_std_over_mask():
    vals = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = whiten(vals, mask)
    assert w[0, 3] == 0
    assert float(w[0, :3].mean()) == pytest.approx(0, abs=1e-6)
    assert float(w[0, :3].pow(2).mean()) == pytest.approx(1, abs=1e-4)


def test_grpo_advantages_and_zero_variance_share():
    adv, flat = grpo_advantages([1.0, 0.0, 1.0, 1.0], ["a", "a", "b", "b"])
    assert adv[0] > 0 > adv[1]
    assert adv[2] == adv[3] == 0.0
    assert flat == 0.5
    adv2, _ = grpo_advantages([1.0, 0.0], ["a", "a"], scale_by_std=False)
    assert adv2 == [0.5, -0.5]


def test_ppo_clip_loss_clips_large_ratios():
    old = torch.zeros(1, 3)
    adv = torch.ones(1, 3)
    mask = torch.ones(1, 3)
    logp = torch.log(torch.tensor([[1.0, 1.5, 3.0]])).requires_grad_()
    loss, info = ppo_clip_loss(logp, old, adv, mask, clip_eps=0.2)
    assert float(loss.detach()) == pytest.approx(-(1.0 + 1.2 + 1.2) / 3, abs=1e-6)
    assert info["clip_frac"] == pytest.approx(2 / 3)
    loss.backward()
    # Clipped tokens carry no gradient.
    assert logp.grad[0, 1] == 0 and logp.grad[0, 2] == 0 and logp.grad[0, 0] != 0


def test_sft_loss_is_mean_nll_of_response_tokens():
    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    assert float(sft_loss(logp, mask)) == pytest.approx(2.5)


def test_collate_aligns_response_mask_with_logprob_positions():
    s = RoleSample("defender", prompt_ids=[5, 6, 7], completion_ids=[8, 9], reward=1.0)
    t = RoleSample("defender", prompt_ids=[5], completion_ids=[8], reward=1.0)
    b = collate([s, t], pad_id=0)
    assert b.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 8, 0, 0, 0]]
    # Position t scores token t+1: tokens 8, 9 of sample 0 are at positions 2, 3.
    assert b.response_mask.tolist() == [[0, 0, 1, 1], [1, 0, 0, 0]]


def test_lr_schedule_warms_up_then_decays_to_floor():
    cfg = OptimConfig(lr=1.0, warmup_ratio=0.1, min_lr_ratio=0.1)
    f = lr_lambda(100, cfg)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(100) == pytest.approx(0.1)
    assert 0.1 < f(55) < 1.0


def test_rl_config_validation_names_the_key():
    with pytest.raises(ConfigError, match="group_size"):
        RLConfig(algorithm="grpo", group_size=1)
    with pytest.raises(ConfigError, match="kl_beta"):
        RLConfig(kl_beta=-1)
