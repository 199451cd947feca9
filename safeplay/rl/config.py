"""Configuration of the policy update: the algorithm and its coefficients (``RLConfig``, YAML section ``rl``), the
optimiser (``OptimConfig``, section ``optim``) and the learning-rate schedule.

The schedule is the one Self-RedTeam ships (papers.md §1.6): linear warm-up over ``warmup_ratio`` of the optimizer
steps, then cosine decay to ``min_lr_ratio``·lr, i.e. lr_t = lr·(m + (1 − m)·½·(1 + cos(π·progress))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from safeplay.config import check
from safeplay.rl.kl import KLEstimator


@dataclass
class RLConfig:
    """The policy-gradient algorithm and its coefficients (papers.md §1.6 for REINFORCE++, §3 for GRPO)."""

    algorithm: Literal["reinforce_pp", "grpo", "rft", "online_dpo"] = "reinforce_pp"
    """REINFORCE++ (Self-RedTeam: KL in the reward, per-role whitening, n=1), GRPO (group-normalised), rejection-
    sampling fine-tuning on the judged-right samples (``rft``) or online DPO on judged pairs of answers to one
    prompt (``online_dpo``, needs group_size ≥ 2); see ``safeplay.rl.direct`` for the last two."""
    group_size: int = 1
    """Defender answers per prompt (one group compares answers to the same prompt). GRPO needs ≥ 2; REINFORCE++
    uses 1 (the paper's n_samples_per_prompt)."""
    attack_group_size: int | None = None
    """Attacker revisions per attacked seed (the attacker's group), each answered ``group_size`` times; None = the
    same as group_size. An attacked seed costs attack_group_size × group_size games."""
    kl_beta: float = 0.01
    """KL coefficient β (Self-RedTeam: 0.01 fixed, in the reward)."""
    kl_estimator: KLEstimator = "k1"
    """KL estimator: k1 (Self-RedTeam, in reward), k2, or k3 (GRPO's KL loss)."""
    kl_in_reward: bool = True
    """True: −β·KL_t enters the per-token reward (REINFORCE++). False: β·KL is added to the loss (GRPO)."""
    kl_reference: Literal["initial", "base"] = "initial"
    """What the KL term measures distance to: ``initial`` = the weights RL starts from (after the warm start, when
    one ran — the papers' reference is the model their RL starts from); ``base`` = the base model, adapters off.
    Without a warm start the two are the same."""
    baseline: Literal["batch", "class"] = "batch"
    """REINFORCE++ only. ``batch``: advantages are the returns whitened over the role's batch (Self-RedTeam).
    ``class``: each game reward first has the mean reward of its *kind* of game in the batch subtracted (the
    recipe's ``baseline_key``: the seed's class and whether the attacker rewrote it), then returns are divided by
    their std (not re-centred: a kind whose games all scored the same stays at zero).
    A baseline that depends only on the prompt keeps the gradient unbiased; with one batch-wide mean the same
    refusal text is pushed up on harmful prompts and down on benign ones with magnitudes that nearly cancel, so
    the policy barely learns to tell them apart."""
    gamma: float = 1.0
    """Discount of the token-level return (1.0 in Self-RedTeam)."""
    reward_clip: float = 10.0
    """Game rewards are clipped to [−c, c] before use."""
    clip_eps: float = 0.2
    """PPO clip range ε of the ratio π_θ/π_old."""
    grpo_scale_by_std: bool = True
    """GRPO: divide by the group std (False = Dr. GRPO style mean-centring only)."""
    minibatches: int = 1
    """Optimizer steps per rollout (the buffer is split into this many mini-batches, one epoch)."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass (gradient accumulation inside a mini-batch)."""
    micro_batch_tokens: int = 2048
    """…and at most this many padded tokens per pass (one sequence at least): a backward pass holds about
    1.5 MB of activations per token for the 135M model, so 8 contextual prompts of 800 tokens would hold 10 GB.
    0 = no token cap."""
    skip_zero_advantage: bool = True
    """Leave samples whose advantage is exactly zero out of the backward pass (they contribute no gradient)."""
    aux_sft_coef: float = 0.0
    """Weight of an auxiliary SFT loss mixed into each optimizer step (Self-RedTeam's PTX, §1.7: 1.0)."""
    aux_sft_batch: int = 4
    """Sequences of SFT data per optimizer step when aux_sft_coef > 0."""
    fused_max_tokens: int = 2048
    """With one mini-batch, the behaviour log-probs equal the first gradient pass's own values, so that pass
    doubles as the "old" pass (one forward fewer per update) when the rollout's padded size fits this many tokens
    (all micro-batch graphs are alive until the advantages are known: about 1.5 MB per token for the 135M model,
    so 2048 tokens hold ~3 GB). 0 = always two passes."""

    old_logprobs: Literal["rollout", "recompute"] = "rollout"
    """Where REINFORCE++'s KL-in-reward term (and, with several mini-batches, the PPO ratio's denominator) takes the
    behaviour policy's log-probs from. ``rollout``: the generator's own log-probs of the tokens it sampled — the
    behaviour policy by definition; they differ from a teacher-forced pass only by floating-point noise (bundled
    model in bf16: 0.05 nats per token on average, about the gap between bf16 and fp32 teacher forcing) — and the
    update runs one forward pass fewer. ``recompute``: a teacher-forced pass before the update (OpenRLHF's way).
    Samples without rollout log-probs (answers picked among fixed choices) are recomputed either way. Not a
    question at all with one mini-batch and no KL in the reward (GRPO): the ratio's denominator is then the
    gradient pass's own value (exactly on-policy) and no "old" pass runs."""

    rft_min_reward: float = 0.0
    """``rft``: a sample is trained on when its reward is strictly above this (Self-RedTeam's defender: +2 for a
    right, harmless answer, 0 or less otherwise)."""
    dpo_beta: float = 0.1
    """``online_dpo``: β of the DPO loss (AdvGame: 0.1)."""

    def __post_init__(self) -> None:
        check(self.group_size >= 1, "group_size", "must be >= 1")
        check(self.algorithm != "online_dpo" or self.group_size >= 2, "group_size",
              "online DPO pairs answers to one prompt: group_size >= 2")
        check(self.dpo_beta > 0, "dpo_beta", "must be > 0")
        check(self.attack_group_size is None or self.attack_group_size >= 1, "attack_group_size", "must be >= 1")
        check(self.algorithm != "grpo" or self.group_size >= 2, "group_size", "GRPO needs group_size >= 2")
        check(self.kl_beta >= 0, "kl_beta", "must be >= 0")
        check(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        check(self.clip_eps > 0, "clip_eps", "must be > 0")
        check(self.minibatches >= 1, "minibatches", "must be >= 1")
        check(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        check(self.fused_max_tokens >= 0, "fused_max_tokens", "must be >= 0")
        check(self.micro_batch_tokens >= 0, "micro_batch_tokens", "must be >= 0")
        check(self.baseline in ("batch", "class"), "baseline", f"{self.baseline!r} is not allowed; choose batch or class")
        check(self.kl_reference in ("initial", "base"), "kl_reference", f"{self.kl_reference!r} is not allowed; choose initial or base")
        check(self.old_logprobs in ("rollout", "recompute"), "old_logprobs", f"{self.old_logprobs!r} is not allowed; choose rollout or recompute")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule of every trained policy."""

    lr: float = 2e-4
    """Peak learning rate (Self-RedTeam full-parameter 8B: 5e-7; LoRA on a 135M model needs ~1e-4–3e-4)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """Adam betas."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Clip the global gradient norm of each policy to this value (0 = off)."""
    warmup_ratio: float = 0.03
    """Share of total optimizer steps spent warming up linearly from 0."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """After warm-up: cosine decay to min_lr_ratio·lr, or constant."""
    min_lr_ratio: float = 0.1
    """Floor of the cosine schedule as a fraction of lr."""

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", "must be > 0")
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "two values in [0, 1)")
        check(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")


def lr_lambda(total_steps: int, cfg: OptimConfig):
    warmup = int(round(total_steps * cfg.warmup_ratio))

    def fn(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return fn
