"""Advantage estimators, and one preparation per policy-gradient algorithm (a role's samples → rows with per-token
advantages).

REINFORCE++ (Self-RedTeam, OpenRLHF ``reinforce``; papers.md §1.6 steps 3–5): the per-token reward is
r_t = −β·KL_t at every response token, with the clipped game reward R ∈ [−c, c] added at the last one; the
return-to-go G_t = Σ_{s≥t} γ^{s−t}·r_s is the advantage (no critic), then advantages are whitened over all valid
tokens of one role (attacker and defender separately): A_t = (G_t − mean G) / std G. ``prepare_reinforce_pp``.

GRPO (papers.md §3.2, §6 item 28): G samples per prompt; a sample's advantage is its reward minus the group mean,
divided by the group std (optional): Â_i = (R_i − mean_group R) / (std_group R + ε); every token of the sample gets
that value. ``prepare_grpo``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from safeplay.rl.batch import RoleSample
from safeplay.rl.kl import kl_per_token
from safeplay.rl.rows import Row, row_kl

if TYPE_CHECKING:
    from safeplay.rl.config import RLConfig


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


# -- one preparation per algorithm: a role's samples → rows with per-token advantages -----------------------------

Forward = Callable[[Sequence[RoleSample]], list[Row]]
"""Scores samples of one role into rows (π_old, π_ref, mask), in the input order (``safeplay.rl.rows.score_rows``)."""


def clip_reward(reward: float, c: float) -> float:
    """The game reward clipped to [−c, c]."""
    return max(-c, min(c, reward))


def prepare_reinforce_pp(role: str, samples: Sequence[RoleSample], rl: RLConfig,
                         forward: Forward) -> tuple[list[Row], dict[str, float]]:
    """REINFORCE++ (papers.md §1.6, steps 3–5): r_t = −β·KL_t (+ the clipped game reward at the last token),
    A_t = Σ_{s≥t} γ^{s−t}·r_s, whitened over every response token of this role's samples. With
    ``baseline: class`` each game reward first loses the mean of its kind (``meta["baseline_key"]``) and A is only
    scaled, not re-centred. With ``kl_in_reward`` off the KL is a loss term instead and r_t is the game reward
    alone."""
    rows = forward(samples)
    width = max(r.mask.shape[0] for r in rows)
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[0]))  # noqa: E731
    mask = torch.stack([pad(r.mask) for r in rows])
    known = rows[0].old is not None and rows[0].ref is not None
    kl = torch.stack([
        pad(kl_per_token(r.old, r.ref, rl.kl_estimator) if known else torch.zeros_like(r.mask)) for r in rows
    ])
    rewards = [clip_reward(r.sample.reward, rl.reward_clip) for r in rows]
    if rl.baseline == "class":
        rewards = class_centred(rewards, [r.sample.meta.get("baseline_key") for r in rows])
    rewards_t = torch.tensor(rewards, dtype=torch.float32, device=kl.device)
    beta = rl.kl_beta if rl.kl_in_reward else 0.0
    returns = reinforce_pp_returns(rewards_t, kl, mask, beta, rl.gamma, rl.reward_clip)
    # One sample has no spread to whiten over: its return is its advantage.
    adv = whiten(returns, mask, centre=rl.baseline == "batch") if len(rows) > 1 else returns
    for i, r in enumerate(rows):
        r.adv = adv[i, : r.mask.shape[0]]
    stats = {f"{role}/kl": float((kl * mask).sum() / mask.sum().clamp(min=1))} if known else {}
    return rows, stats


def prepare_grpo(role: str, samples: Sequence[RoleSample], rl: RLConfig,
                 forward: Forward) -> tuple[list[Row], dict[str, float]]:
    """GRPO (papers.md §3.2 and §6 item 28): Â_i = (R_i − mean(R_group)) / (std(R_group) + ε) for every token of
    sample i (without the std with ``grpo_scale_by_std`` off). The advantages need only the rewards, so samples with
    a zero advantage are dropped before any forward pass (``skip_zero_advantage``). Sets ``RoleSample.advantage``."""
    rewards = [clip_reward(s.reward, rl.reward_clip) for s in samples]
    advantages, flat = grpo_advantages(rewards, [s.group for s in samples], rl.grpo_scale_by_std)
    stats = {f"{role}/zero_variance_groups": flat}
    for s, a in zip(samples, advantages):
        s.advantage = a
    if rl.skip_zero_advantage:
        samples = [s for s in samples if s.advantage != 0.0]
    if not samples:
        return [], stats
    rows = forward(samples)
    for r in rows:
        r.adv = torch.full_like(r.mask, r.sample.advantage)
    if rows[0].old is not None and rows[0].ref is not None:
        stats[f"{role}/kl"] = sum(row_kl(r.old, r, rl.kl_estimator) for r in rows) / len(rows)
    return rows, stats
