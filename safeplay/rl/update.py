"""One policy-gradient update of one policy (the roles that share its weights) from scored samples.

``PolicyUpdater.step``, per rollout:

1. **Rows** (``safeplay.rl.rows``): per sample the response mask, the behaviour log-probs π_old (from the rollout, a
   no-grad pass, a fused gradient pass, or none needed — ``OldLogprobs``) and the reference log-probs π_ref.
2. **Advantages** per role (``safeplay.rl.advantages``): REINFORCE++ (papers.md §1.6: KL in the per-token reward,
   return-to-go, whitened per role) or GRPO (§6 item 28: group-normalised rewards).
3. **Mini-batches**, one epoch, each one optimiser step: per micro-batch the PPO-clipped surrogate
   L = mean_seq mean_t −min(ρ_t·A_t, clip(ρ_t, 1 − ε, 1 + ε)·A_t) with ρ_t = π_θ(a_t)/π_old(a_t)
   (``safeplay.rl.losses``), plus β·KL(π_θ‖π_ref) when the KL is a loss rather than a reward (GRPO); gradients
   accumulated over micro-batches, then the auxiliary SFT loss (§1.7), gradient-norm clipping, AdamW and the
   learning-rate schedule.

Rejection-sampling fine-tuning and online DPO have no advantages: ``PolicyUpdater._direct_step`` with
``safeplay.rl.direct``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from safeplay.rl.advantages import prepare_grpo, prepare_reinforce_pp
from safeplay.rl.batch import RoleSample, TokenBatch, collate, length_chunks, minibatches
from safeplay.rl.config import OptimConfig, RLConfig, lr_lambda
from safeplay.rl.direct import dpo_loss, sequence_logprobs, training_units
from safeplay.rl.kl import KLEstimator, kl_per_token
from safeplay.rl.losses import masked_mean_per_sequence_then_batch, ppo_clip_loss, sft_loss
from safeplay.rl.rows import OldLogprobs, Row, row_kl, sample_length, score_rows

__all__ = ["PolicyUpdater"]


class PolicyUpdater:
    """Optimiser, schedule and update step of one policy (all roles that share its weights)."""

    def __init__(self, policies, policy_role: str, rl: RLConfig, optim: OptimConfig, total_steps: int):
        self.policies = policies
        self.role = policy_role  # any role mapped to this policy: selects its weights
        self.rl = rl
        params = policies.trainable_parameters(policy_role)
        self.params = params
        self.optimizer = torch.optim.AdamW(
            params, lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay
        )
        self.optim_cfg = optim
        self._lr_fn = lr_lambda(total_steps, optim)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_fn)
        self.grad_clip = optim.grad_clip

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the optimiser's moments and the schedule's position. The learning rate and the optimiser's
        coefficients come from *this* config, not the checkpoint: a run resumed with ``--set optim.lr=…`` (or an
        ablation arm continued from a shared warm start) trains with the rate it was given."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for group in self.optimizer.param_groups:
            group.update(initial_lr=self.optim_cfg.lr, betas=tuple(self.optim_cfg.betas),
                         weight_decay=self.optim_cfg.weight_decay)
        self.scheduler.base_lrs = [self.optim_cfg.lr] * len(self.optimizer.param_groups)
        self.scheduler.lr_lambdas = [self._lr_fn] * len(self.optimizer.param_groups)
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = lr * self._lr_fn(self.scheduler.last_epoch)

    # -- forward passes ---------------------------------------------------------------------------

    def _logprobs(self, role: str, batch: TokenBatch, grad: bool) -> torch.Tensor:
        with torch.set_grad_enabled(grad):
            return self.policies.token_logprobs(
                role, batch.input_ids, batch.attention_mask, batch.start, only=batch.response_mask,
                temperature=batch.temperature,
            ).float()

    def _micro_batches(self, items: Sequence, sample_of=lambda x: x) -> list[list]:
        """Chunks of at most ``micro_batch_size`` samples and ``micro_batch_tokens`` padded tokens, in length
        order: less padding, bounded memory, and the update is a sum over samples, so the order does not change it."""
        return length_chunks(items, lambda x: sample_length(sample_of(x)), self.rl.micro_batch_size,
                             self.rl.micro_batch_tokens)

    def _fits_fused(self, samples: Sequence[RoleSample]) -> bool:
        """Whether the whole rollout fits one fused gradient pass (``OldLogprobs.FUSED``, ``rl.fused_max_tokens``)."""
        if self.rl.minibatches != 1 or self.rl.fused_max_tokens <= 0:
            return False
        padded = sum(len(chunk) * max(sample_length(s) for s in chunk) for chunk in self._micro_batches(samples))
        return padded <= self.rl.fused_max_tokens

    def _old_source(self, samples: Sequence[RoleSample], fused: bool) -> OldLogprobs:
        """Where one role's behaviour log-probs come from; ``fused``: the rollout fits a fused pass."""
        rl = self.rl
        kl_needs_old = rl.algorithm == "reinforce_pp" and rl.kl_in_reward and rl.kl_beta > 0
        if rl.minibatches == 1 and not kl_needs_old:
            return OldLogprobs.LIVE
        if rl.old_logprobs == "rollout" and all(s.has_rollout_logprobs for s in samples):
            return OldLogprobs.ROLLOUT
        return OldLogprobs.FUSED if fused else OldLogprobs.PASS

    # -- advantages -------------------------------------------------------------------------------

    def _prepare(self, samples: Sequence[RoleSample], fused: bool) -> tuple[list[Row], dict[str, float]]:
        """Rows with π_old, π_ref and per-token advantages, role by role (each role is whitened or grouped on its
        own), by the algorithm's preparation in ``safeplay.rl.advantages``."""
        prepare = prepare_grpo if self.rl.algorithm == "grpo" else prepare_reinforce_pp
        by_role: dict[str, list[RoleSample]] = {}
        for s in samples:
            by_role.setdefault(s.role, []).append(s)
        rows: list[Row] = []
        stats: dict[str, float] = {}
        for role, group in by_role.items():
            def forward(chosen: Sequence[RoleSample], role: str = role) -> list[Row]:
                return score_rows(self.policies, self.rl, role, chosen, self._old_source(chosen, fused))

            role_rows, role_stats = prepare(role, group, self.rl, forward)
            rows.extend(role_rows)
            stats.update(role_stats)
        return rows, stats

    # -- the update ---------------------------------------------------------------------------------

    def step(self, samples: Sequence[RoleSample], sft_samples: Sequence[RoleSample] = ()) -> dict[str, float]:
        """One rollout's worth of updates; returns loss/KL/grad-norm statistics."""
        rl = self.rl
        if not samples:
            return {}
        if rl.algorithm in ("rft", "online_dpo"):
            return self._direct_step(samples, sft_samples)
        self.policies.train()
        rows, stats = self._prepare(samples, self._fits_fused(samples))
        if rl.skip_zero_advantage:
            rows = [r for r in rows if r.trains]
        stats["samples_trained"] = float(len(rows))
        stats["fused_pass"] = float(any(r.live is not None for r in rows))
        if not rows:
            return stats
        if rl.minibatches > 1:
            # Rows come grouped by role; each optimiser step must see a mix of every role sharing these weights.
            # Seeded by the update count, so a resumed run shuffles the same way.
            random.Random(f"minibatches:{self.scheduler.last_epoch}").shuffle(rows)
        tally = _Tally(rl.kl_estimator)
        for mb_index, mb in enumerate(minibatches(rows, rl.minibatches)):
            self.optimizer.zero_grad(set_to_none=True)
            for micro, logp in self._gradient_passes(mb):
                loss, info = self._loss(micro, logp)
                (loss * len(micro) / len(mb)).backward()  # the mini-batch's loss is the mean over its rows
                tally.add(micro, logp, loss, info, first_minibatch=mb_index == 0)
            self._aux_sft(sft_samples, stats)
            tally.add_norm(self._optimizer_step())
        self.optimizer.zero_grad(set_to_none=True)
        stats.update(tally.summary(lr=self.scheduler.get_last_lr()[0]))
        return stats

    def _gradient_passes(self, mb: list[Row]) -> Iterator[tuple[list[Row], torch.Tensor]]:
        """Micro-batches of mini-batch ``mb`` with their differentiable log-probs (rows × width). Rows of a fused
        first pass reuse its graphs (one micro-batch per micro-batch of that pass); the others get a pass here."""
        graphs: dict[int, list[Row]] = {}
        for r in mb:
            if r.live is not None:
                graphs.setdefault(id(r.live), []).append(r)
        rest = [r for r in mb if r.live is None]
        pad, device = self.policies.tokenizer.pad_token_id, self.policies.device
        for micro in list(graphs.values()) + self._micro_batches(rest, sample_of=lambda r: r.sample):
            if micro[0].live is not None:
                yield micro, micro[0].live[[r.index for r in micro]]
            else:
                # Samples in a micro-batch may belong to different roles that share this policy's weights.
                batch = collate([r.sample for r in micro], pad, device)
                yield micro, self._logprobs(micro[0].sample.role, batch, grad=True)

    def _loss(self, micro: list[Row], logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The surrogate (+ KL loss) of rows ``micro`` given their differentiable log-probs (rows × width)."""
        rl = self.rl
        device = logp.device
        width = logp.shape[1]
        fit = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[0])).to(device)  # noqa: E731
        # One mini-batch: the weights have not moved since the rollout, so π_old is the gradient pass's own value.
        old = logp.detach() if rl.minibatches == 1 else torch.stack([fit(r.old) for r in micro])
        adv = torch.stack([fit(r.adv) for r in micro])
        mask = torch.stack([fit(r.mask) for r in micro])
        loss, info = ppo_clip_loss(logp, old, adv, mask, rl.clip_eps)
        if rl.kl_beta > 0 and not rl.kl_in_reward:
            ref = torch.stack([fit(r.ref) for r in micro])
            loss = loss + rl.kl_beta * masked_mean_per_sequence_then_batch(kl_per_token(logp, ref, rl.kl_estimator), mask)
        return loss, info

    def _aux_sft(self, sft_samples: Sequence[RoleSample], stats: dict[str, float]) -> None:
        """Self-RedTeam's PTX (papers.md §1.7): the SFT loss of ``sft_samples``, weighted by ``aux_sft_coef``, added
        to the gradients of the optimiser step under way."""
        if not sft_samples or self.rl.aux_sft_coef <= 0:
            return
        sft = collate(list(sft_samples), self.policies.tokenizer.pad_token_id, self.policies.device)
        aux = sft_loss(self._logprobs(sft_samples[0].role, sft, grad=True), sft.response_mask)
        (self.rl.aux_sft_coef * aux).backward()
        stats["aux_sft_loss"] = float(aux.detach())

    def _optimizer_step(self) -> float | None:
        """Clip the gradient norm (when on), step the optimiser and the schedule; returns the norm before clipping."""
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)) if self.grad_clip > 0 else None
        self.optimizer.step()
        self.scheduler.step()
        return norm

    # -- updates without advantages ---------------------------------------------------------------

    def _direct_step(self, samples: Sequence[RoleSample], sft_samples: Sequence[RoleSample]) -> dict[str, float]:
        """Rejection-sampling fine-tuning or online DPO (``safeplay.rl.direct``): units of one sample (RFT) or one
        (chosen, rejected) pair (DPO), split into mini-batches, each one optimiser step."""
        rl = self.rl
        units, stats = training_units(samples, rl.algorithm, rl.rft_min_reward)
        if not units:
            return stats
        self.policies.train()
        pad, device = self.policies.tokenizer.pad_token_id, self.policies.device
        size = len(units[0])
        longest = lambda u: max(sample_length(s) for s in u)  # noqa: E731
        losses, norms, info_rows = [], [], []
        for mb in minibatches(units, rl.minibatches):
            self.optimizer.zero_grad(set_to_none=True)
            # Micro-batches hold whole units, so the caps on rows and tokens count units of ``size`` samples.
            chunks = length_chunks(mb, longest, max(1, rl.micro_batch_size // size),
                                   rl.micro_batch_tokens // size if rl.micro_batch_tokens else 0)
            for chunk in chunks:
                flat = [s for unit in chunk for s in unit]  # a pair's two answers sit side by side
                batch = collate(flat, pad, device)
                logp = self._logprobs(flat[0].role, batch, grad=True)
                if rl.algorithm == "rft":
                    loss = sft_loss(logp, batch.response_mask)
                else:
                    loss, info = self._dpo_loss(flat[0].role, batch, logp)
                    info_rows.append(info)
                (loss * len(chunk) / len(mb)).backward()
                losses.append(float(loss.detach()))
            self._aux_sft(sft_samples, stats)
            norm = self._optimizer_step()
            if norm is not None:
                norms.append(norm)
        self.optimizer.zero_grad(set_to_none=True)
        stats.update(loss=sum(losses) / len(losses), lr=self.scheduler.get_last_lr()[0])
        if norms:
            stats["grad_norm"] = sum(norms) / len(norms)
        for key in ("dpo_accuracy", "dpo_margin"):
            if info_rows:
                stats[key] = sum(r[key] for r in info_rows) / len(info_rows)
        return stats

    def _dpo_loss(self, role: str, batch: TokenBatch, logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """DPO's loss of a batch whose rows alternate chosen, rejected, with the KL reference as π_ref."""
        ref = self.policies.ref_token_logprobs(batch.input_ids, batch.attention_mask, batch.start, role=role,
                                               only=batch.response_mask).float()
        seq = sequence_logprobs(logp, batch.response_mask).view(-1, 2)
        ref_seq = sequence_logprobs(ref, batch.response_mask).view(-1, 2)
        return dpo_loss(seq[:, 0], seq[:, 1], ref_seq[:, 0], ref_seq[:, 1], self.rl.dpo_beta)


@dataclass
class _Tally:
    """Statistics of one policy-gradient ``step``, gathered pass by pass."""

    kl_estimator: KLEstimator
    """The KL estimator of the reported KL of roles whose π_old was not known before the gradient pass."""
    losses: list[float] = field(default_factory=list)
    """Loss of each micro-batch."""
    clip_fracs: list[float] = field(default_factory=list)
    """Share of clipped tokens of each micro-batch."""
    norms: list[float] = field(default_factory=list)
    """Gradient norm (before clipping) of each optimiser step."""
    live_kl: dict[str, list[float]] = field(default_factory=dict)
    """Per role, each row's KL measured in the gradient pass (roles whose KL was not known before it)."""
    gap_sum: dict[str, float] = field(default_factory=dict)
    """Per role, Σ |rollout − learner| log-prob over sampled tokens, before the first optimiser step."""
    gap_max: dict[str, float] = field(default_factory=dict)
    """Per role, the largest such per-token gap."""
    gap_tokens: dict[str, float] = field(default_factory=dict)
    """Per role, the tokens summed in ``gap_sum``."""

    def add(self, micro: list[Row], logp: torch.Tensor, loss: torch.Tensor, info: dict[str, float],
            first_minibatch: bool) -> None:
        self.losses.append(float(loss.detach()))
        self.clip_fracs.append(info["clip_frac"])
        for i, r in enumerate(micro):
            if r.old is None and r.ref is not None:
                self.live_kl.setdefault(r.sample.role, []).append(row_kl(logp[i].detach(), r, self.kl_estimator))
            if first_minibatch and r.rollout is not None:
                n = r.mask.shape[0]
                gap = (logp[i, :n].detach() - r.rollout).abs() * r.mask
                role = r.sample.role
                self.gap_sum[role] = self.gap_sum.get(role, 0.0) + float(gap.sum())
                self.gap_max[role] = max(self.gap_max.get(role, 0.0), float(gap.max()))
                self.gap_tokens[role] = self.gap_tokens.get(role, 0.0) + float(r.mask.sum())

    def add_norm(self, norm: float | None) -> None:
        if norm is not None:
            self.norms.append(norm)

    def summary(self, lr: float) -> dict[str, float]:
        stats = {
            "loss": sum(self.losses) / len(self.losses),
            "clip_frac": sum(self.clip_fracs) / len(self.clip_fracs),
            "lr": lr,
        }
        if self.norms:
            stats["grad_norm"] = sum(self.norms) / len(self.norms)
        for role, vals in self.live_kl.items():
            stats[f"{role}/kl"] = sum(vals) / len(vals)
        for role, total in self.gap_sum.items():
            # How far the policy that sampled the rollout is from the one that learns from it (same weights, other
            # kernels): mean and largest per-token |Δ log-prob| of the sampled tokens.
            stats[f"{role}/rollout_logprob_gap"] = total / max(1.0, self.gap_tokens[role])
            stats[f"{role}/rollout_logprob_gap_max"] = self.gap_max[role]
        return stats
