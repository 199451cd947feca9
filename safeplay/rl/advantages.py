"""Advantage estimators.

REINFORCE++ (Self-RedTeam, OpenRLHF ``reinforce``): the per-token reward is −β·KL_t at every response token
with the clipped game reward added at the last one; the return-to-go with γ is the advantage (no critic),
then advantages are whitened over all valid tokens of one role (attacker and defender separately).

GRPO: G samples per prompt; a sample's advantage is its reward minus the group mean, divided by the group
std (optional); every token of the sample gets that value.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import torch


def reinforce_pp_returns(
    rewards: torch.Tensor,
    kl: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    gamma: float = 1.0,
    reward_clip: float = 10.0,
) -> torch.Tensor:
    """Per-token returns (B, T) from scalar game rewards (B,) and per-token KL (B, T) over a response mask."""
    mask = mask.to(kl.dtype)
    token_rewards = -beta * kl * mask
    # The game reward lands on the last response token of each sample.
    lengths = mask.sum(dim=1).long()
    last = (mask.cumsum(dim=1) == lengths.unsqueeze(1)) & mask.bool()
    token_rewards = token_rewards + last.to(kl.dtype) * rewards.clamp(-reward_clip, reward_clip).unsqueeze(1)
    returns = torch.zeros_like(token_rewards)
    running = torch.zeros(kl.shape[0], dtype=kl.dtype, device=kl.device)
    for t in range(kl.shape[1] - 1, -1, -1):
        # Padding tokens carry zero reward, so the running sum passes through them unchanged.
        running = token_rewards[:, t] + gamma * running
        returns[:, t] = running
    return returns * mask


def whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, centre: bool = True) -> torch.Tensor:
    """Zero-mean, unit-std over the masked entries; the masked-out entries stay 0. ``centre=False``: divide by the
    std only (the values were already centred by a baseline that a token-weighted mean would shift)."""
    m = mask.to(values.dtype)
    n = m.sum().clamp(min=1.0)
    mean = (values * m).sum() / n
    var = ((values - mean).pow(2) * m).sum() / n
    return (values - (mean if centre else 0.0)) * torch.rsqrt(var + eps) * m


def grpo_advantages(
    rewards: Sequence[float], group_ids: Sequence[object], scale_by_std: bool = True, eps: float = 1e-6
) -> tuple[list[float], float]:
    """Per-sample GRPO advantages and the share of groups with zero reward variance (they carry no signal)."""
    groups: dict[object, list[int]] = defaultdict(list)
    for i, g in enumerate(group_ids):
        groups[g].append(i)
    adv = [0.0] * len(rewards)
    flat = 0
    for members in groups.values():
        vals = torch.tensor([rewards[i] for i in members], dtype=torch.float64)
        mean = vals.mean()
        std = vals.std(unbiased=False) if len(members) > 1 else torch.tensor(0.0, dtype=torch.float64)
        if std.item() < eps:
            flat += 1
        for i, v in zip(members, vals):
            a = v - mean
            if scale_by_std:
                a = a / (std + eps)
            adv[i] = float(a)
    return adv, (flat / len(groups) if groups else 0.0)


def class_centred(rewards: Sequence[float], keys: Sequence[object]) -> list[float]:
    """Each reward minus the mean reward of the samples with the same key (a per-kind baseline). Samples without
    a key (``None``) share one group."""
    by_key: dict[object, list[float]] = defaultdict(list)
    for r, k in zip(rewards, keys):
        by_key[k].append(r)
    means = {k: sum(v) / len(v) for k, v in by_key.items()}
    return [r - means[k] for r, k in zip(rewards, keys)]
