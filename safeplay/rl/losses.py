"""Losses: the PPO-clipped policy-gradient surrogate, the reduction the KL loss shares, and the auxiliary SFT loss.

* PPO-clipped surrogate (papers.md §1.6 step 6, ε = 0.2): with ρ_t = π_θ(a_t)/π_old(a_t),
  L = mean_seq mean_t −min(ρ_t·A_t, clip(ρ_t, 1 − ε, 1 + ε)·A_t) — a masked mean over each sequence's tokens, then
  the mean over sequences (OpenRLHF's reduction). ``ppo_clip_loss``.
* KL loss (GRPO, ``kl_in_reward: false``): β·mean_seq mean_t KL_t with the same reduction
  (``masked_mean_per_sequence_then_batch`` of ``safeplay.rl.kl.kl_per_token``).
* Auxiliary SFT loss (Self-RedTeam's PTX, §1.7): the negative log-likelihood of the response tokens, same reduction.
  ``sft_loss``.
"""

from __future__ import annotations

import torch


def masked_mean_per_sequence_then_batch(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each sequence's valid tokens, then mean over sequences (OpenRLHF's reduction)."""
    m = mask.to(values.dtype)
    per_seq = (values * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
    return per_seq.mean()


def ppo_clip_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
) -> tuple[torch.Tensor, dict[str, float]]:
    """−min(r·A, clip(r, 1−ε, 1+ε)·A) with r = π_θ/π_old per token; returns the loss and the clip fraction."""
    ratio = (logp - old_logp).exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = masked_mean_per_sequence_then_batch(-torch.minimum(unclipped, clipped), mask)
    with torch.no_grad():
        m = mask.to(ratio.dtype)
        clip_frac = (((ratio - 1.0).abs() > clip_eps).to(ratio.dtype) * m).sum() / m.sum().clamp(min=1.0)
    return loss, {"clip_frac": float(clip_frac)}


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the response tokens (mean over tokens of each sequence, then batch)."""
    return masked_mean_per_sequence_then_batch(-logp, mask)
