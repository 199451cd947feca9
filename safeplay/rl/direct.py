"""Update rules without an advantage estimate: rejection-sampling fine-tuning and online DPO on judged pairs.

* **Rejection-sampling fine-tuning** (``rl.algorithm: rft``; ReST, RAFT): each step, supervised fine-tuning on the
  step's samples the judge counted right (reward above ``rl.rft_min_reward``); the rest are not trained on. In
  head-to-head maths runs it is as strong as GRPO, and it cannot push a sample's probability *down* — the failure
  mode of a policy gradient on a noisy reward at a high learning rate on a small model.
* **Online DPO** (``rl.algorithm: online_dpo``; AdvGame's main recipe): within each group of answers to one prompt
  (``rl.group_size`` ≥ 2) the best- and worst-rewarded answers form a pair (then the second best and second worst,
  …, while their rewards differ); the loss is DPO's −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))])
  over whole-sequence log-probabilities, with the KL reference as π_ref.

Both score sequences at temperature 1 (the model's own distribution: maximum likelihood of good answers, DPO's
implicit reward), whatever temperature sampled them. A step with nothing to learn from — no sample above the
threshold, no group with two different rewards — makes no update at all (no KL-only or SFT-only step).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Sequence

import torch
import torch.nn.functional as F

from safeplay.rl.batch import RoleSample


def rft_selection(samples: Sequence[RoleSample], min_reward: float) -> list[RoleSample]:
    """The samples rejection sampling keeps: reward strictly above ``min_reward``."""
    return [s for s in samples if s.reward > min_reward]


def dpo_pairs(samples: Sequence[RoleSample]) -> list[tuple[RoleSample, RoleSample]]:
    """(chosen, rejected) pairs within each group (same role, same ``group``): best with worst, second best with
    second worst, … while the chosen one's reward is strictly higher. Samples without a group make no pair."""
    groups: dict[tuple[str, object], list[RoleSample]] = defaultdict(list)
    for s in samples:
        if s.group is not None:
            groups[(s.role, s.group)].append(s)
    pairs = []
    for members in groups.values():
        ranked = sorted(members, key=lambda s: s.reward, reverse=True)
        for i in range(len(ranked) // 2):
            chosen, rejected = ranked[i], ranked[-1 - i]
            if chosen.reward > rejected.reward:
                pairs.append((chosen, rejected))
    return pairs


def training_units(samples: Sequence[RoleSample], algorithm: str,
                   rft_min_reward: float) -> tuple[list[list[RoleSample]], dict[str, float]]:
    """What one step trains on, in units a micro-batch never splits: ``[sample]`` per kept sample (``rft``) or
    ``[chosen, rejected]`` per pair (``online_dpo``), each scored at temperature 1; and the step's selection
    statistics."""
    stats: dict[str, float] = {}
    if algorithm == "rft":
        units = [[s] for s in at_temperature_one(rft_selection(samples, rft_min_reward))]
        stats["rft_kept_share"] = len(units) / len(samples)
    else:
        units = [at_temperature_one(pair) for pair in dpo_pairs(samples)]
        stats["dpo_pairs"] = float(len(units))
    stats["samples_trained"] = float(sum(len(u) for u in units))
    return units, stats


def at_temperature_one(samples: Sequence[RoleSample]) -> list[RoleSample]:
    """The samples scored under the model's own distribution (see the module docstring)."""
    return [s if s.temperature == 1.0 else replace(s, temperature=1.0, rollout_logprobs=None, ref_logprobs=None)
            for s in samples]


def sequence_logprobs(token_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) sum of each row's completion-token log-probs."""
    return (token_logprobs * mask).sum(dim=-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean DPO loss over pairs, with the share of pairs whose implicit reward ranks them right and the mean
    margin."""
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    loss = -F.logsigmoid(margin).mean()
    margin = margin.detach()
    return loss, {"dpo_accuracy": float((margin > 0).float().mean()), "dpo_margin": float(margin.mean())}
