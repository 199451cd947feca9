"""One policy-gradient update of one policy (the roles that share its weights) from scored samples.

Flow per policy: collate samples → reference and behaviour log-probs (no grad) → advantages per role
(REINFORCE++ whitened per role, or GRPO group-normalised) → mini-batch steps of the PPO-clipped surrogate
with gradient accumulation over micro-batches, optional KL loss and auxiliary SFT loss, gradient clipping,
LR schedule.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

import torch

from safeplay.rl.advantages import class_centred, grpo_advantages, reinforce_pp_returns, whiten
from safeplay.rl.batch import RoleSample, TokenBatch, collate, length_chunks
from safeplay.rl.direct import at_temperature_one, dpo_loss, dpo_pairs, rft_selection, sequence_logprobs
from safeplay.rl.config import OptimConfig, RLConfig, lr_lambda
from safeplay.rl.kl import kl_per_token
from safeplay.rl.losses import masked_mean_per_sequence_then_batch, ppo_clip_loss, sft_loss

__all__ = ["OptimConfig", "PolicyUpdater", "RLConfig", "lr_lambda"]  # the configs live in safeplay.rl.config


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

    @staticmethod
    def _completion_row(mask: torch.Tensor, sample: RoleSample, values: Sequence[float]) -> torch.Tensor:
        """Per-completion-token ``values`` laid out like ``mask`` (a row of the log-prob tensor)."""
        row = torch.zeros_like(mask)
        p = len(sample.prompt_ids)
        row[p - 1 : p - 1 + len(sample.completion_ids)] = torch.tensor(values, dtype=row.dtype, device=mask.device)
        return row

    def _micro_batches(self, items: Sequence, sample_of=lambda x: x) -> list[list]:
        """Chunks of at most ``micro_batch_size`` samples and ``micro_batch_tokens`` padded tokens, in length
        order: less padding, bounded memory, and the update is a sum over samples, so the order does not change it."""
        def length(x) -> int:
            return len(sample_of(x).prompt_ids) + len(sample_of(x).completion_ids)

        return length_chunks(items, length, self.rl.micro_batch_size, self.rl.micro_batch_tokens)

    def _forward_rows(self, role: str, samples: Sequence[RoleSample], old: str) -> list[dict]:
        """Per-sample behaviour ("old") and reference log-probs and response masks, in the input order.

        ``old`` says where the behaviour log-probs come from (``_old_source``): ``fused`` — a gradient pass whose
        differentiable log-probs each row keeps (``live``/``index``) for the loss; ``pass`` — a no-grad pass;
        ``rollout`` — the samples' own; ``live`` — none needed before the loss (``old`` is None)."""
        pad = self.policies.tokenizer.pad_token_id
        device = self.policies.device
        need_ref = self.rl.kl_beta > 0
        rows: dict[int, dict] = {}
        for chunk in self._micro_batches(list(enumerate(samples)), sample_of=lambda x: x[1]):
            batch = collate([s for _, s in chunk], pad, device)
            logp = self._logprobs(role, batch, grad=old == "fused") if old in ("fused", "pass") else None
            # The recipe may have scored the reference already (a coherence check): no second pass for those.
            cached_ref = need_ref and all(s.ref_logprobs is not None for _, s in chunk)
            ref = (
                self.policies.ref_token_logprobs(
                    batch.input_ids, batch.attention_mask, batch.start, role=role, only=batch.response_mask,
                    temperature=batch.temperature,
                ).float()
                if need_ref and not cached_ref
                else None
            )
            for i, (pos, s) in enumerate(chunk):
                n = int(batch.attention_mask[i].sum())
                mask = batch.response_mask[i, : n - 1]
                rollout = self._completion_row(mask, s, s.rollout_logprobs) if s.has_rollout_logprobs else None
                if old == "rollout":
                    row_old = rollout
                else:
                    row_old = logp[i, : n - 1].detach() if logp is not None else None
                if cached_ref:
                    row_ref = self._completion_row(mask, s, s.ref_logprobs)
                else:
                    row_ref = ref[i, : n - 1] if ref is not None else row_old
                row = {"sample": s, "old": row_old, "ref": row_ref, "mask": mask, "rollout": rollout}
                if old == "fused":
                    row.update(live=logp, index=i)
                rows[pos] = row
        return [rows[i] for i in range(len(samples))]

    def _old_source(self, samples: Sequence[RoleSample], fused: bool) -> str:
        """Where one role's behaviour log-probs come from (see ``_forward_rows``); ``fused`` if it fits."""
        rl = self.rl
        kl_needs_old = rl.algorithm == "reinforce_pp" and rl.kl_in_reward and rl.kl_beta > 0
        if rl.minibatches == 1 and not kl_needs_old:
            return "live"
        if rl.old_logprobs == "rollout" and all(s.has_rollout_logprobs for s in samples):
            return "rollout"
        return "fused" if fused else "pass"

    # -- advantages -------------------------------------------------------------------------------

    def _prepare(self, samples: Sequence[RoleSample], fused: bool) -> tuple[list[dict], dict[str, float]]:
        """Rows with old/ref log-probs and per-token advantages (REINFORCE++ whitened per role, or GRPO).

        ``fused``: the whole rollout fits one fused gradient pass (``_fits_fused``), for roles that need it."""
        rl = self.rl
        rows: list[dict] = []
        stats: dict[str, float] = {}
        by_role: dict[str, list[RoleSample]] = {}
        for s in samples:
            by_role.setdefault(s.role, []).append(s)
        for role, group in by_role.items():
            if rl.algorithm == "grpo":
                # GRPO's advantages need only the rewards: zero-advantage samples never reach a forward pass.
                rewards = [max(-rl.reward_clip, min(rl.reward_clip, s.reward)) for s in group]
                adv_list, flat = grpo_advantages(rewards, [s.group for s in group], rl.grpo_scale_by_std)
                stats[f"{role}/zero_variance_groups"] = flat
                for s, a in zip(group, adv_list):
                    s.advantage = a
                if rl.skip_zero_advantage:
                    group = [s for s in group if s.advantage != 0.0]
                if not group:
                    continue
                role_rows = self._forward_rows(role, group, self._old_source(group, fused))
                for r in role_rows:
                    r["adv"] = torch.full_like(r["mask"], r["sample"].advantage)
                if role_rows[0]["old"] is not None and role_rows[0]["ref"] is not None:
                    stats[f"{role}/kl"] = sum(self._row_kl(r["old"], r) for r in role_rows) / len(role_rows)
            else:
                role_rows = self._forward_rows(role, group, self._old_source(group, fused))
                width = max(r["mask"].shape[0] for r in role_rows)
                pad2 = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[0]))  # noqa: E731
                m = torch.stack([pad2(r["mask"]) for r in role_rows])
                known = role_rows[0]["old"] is not None and role_rows[0]["ref"] is not None
                kl = torch.stack([
                    pad2(kl_per_token(r["old"], r["ref"], rl.kl_estimator) if known else torch.zeros_like(r["mask"]))
                    for r in role_rows
                ])
                rewards = [max(-rl.reward_clip, min(rl.reward_clip, r["sample"].reward)) for r in role_rows]
                if rl.baseline == "class":
                    rewards = class_centred(rewards, [r["sample"].meta.get("baseline_key") for r in role_rows])
                rewards_t = torch.tensor(rewards, dtype=torch.float32, device=kl.device)
                beta = rl.kl_beta if rl.kl_in_reward else 0.0
                returns = reinforce_pp_returns(rewards_t, kl, m, beta, rl.gamma, rl.reward_clip)
                adv = whiten(returns, m, centre=rl.baseline == "batch") if len(role_rows) > 1 else returns
                for i, r in enumerate(role_rows):
                    r["adv"] = adv[i, : r["mask"].shape[0]]
                if known:
                    stats[f"{role}/kl"] = float((kl * m).sum() / m.sum().clamp(min=1))
            rows.extend(role_rows)
        return rows, stats

    def _row_kl(self, logp: torch.Tensor, row: dict) -> float:
        """Mean KL estimate over one row's response tokens (GRPO's reported KL: per sequence, then averaged)."""
        n = row["mask"].shape[0]
        k = kl_per_token(logp[:n], row["ref"], self.rl.kl_estimator)
        return float((k * row["mask"]).sum() / row["mask"].sum().clamp(min=1))

    def _fits_fused(self, samples: Sequence[RoleSample]) -> bool:
        if self.rl.minibatches != 1 or self.rl.fused_max_tokens <= 0:
            return False
        padded = sum(
            len(chunk) * max(len(s.prompt_ids) + len(s.completion_ids) for s in chunk)
            for chunk in self._micro_batches(samples)
        )
        return padded <= self.rl.fused_max_tokens

    # -- the update ---------------------------------------------------------------------------------

    def _loss(self, micro: list[dict], logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The surrogate (+ KL loss) of rows ``micro`` given their differentiable log-probs (rows × width)."""
        rl = self.rl
        device = logp.device
        width = logp.shape[1]
        fit = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[0])).to(device)  # noqa: E731
        # One mini-batch: the weights have not moved since the rollout, so π_old is the gradient pass's own value.
        old = logp.detach() if rl.minibatches == 1 else torch.stack([fit(r["old"]) for r in micro])
        adv = torch.stack([fit(r["adv"]) for r in micro])
        mask = torch.stack([fit(r["mask"]) for r in micro])
        loss, info = ppo_clip_loss(logp, old, adv, mask, rl.clip_eps)
        if rl.kl_beta > 0 and not rl.kl_in_reward:
            ref = torch.stack([fit(r["ref"]) for r in micro])
            loss = loss + rl.kl_beta * masked_mean_per_sequence_then_batch(kl_per_token(logp, ref, rl.kl_estimator), mask)
        return loss, info

    def _direct_step(self, samples: Sequence[RoleSample], sft_samples: Sequence[RoleSample]) -> dict[str, float]:
        """Rejection-sampling fine-tuning or online DPO (``safeplay.rl.direct``): units of one sample (RFT) or one
        (chosen, rejected) pair (DPO), split into mini-batches, each one optimiser step."""
        rl = self.rl
        stats: dict[str, float] = {}
        if rl.algorithm == "rft":
            units = [[s] for s in at_temperature_one(rft_selection(samples, rl.rft_min_reward))]
            stats["rft_kept_share"] = len(units) / len(samples)
        else:
            units = [at_temperature_one(pair) for pair in dpo_pairs(samples)]
            stats["dpo_pairs"] = float(len(units))
        stats["samples_trained"] = float(sum(len(u) for u in units))
        if not units:
            return stats
        self.policies.train()
        pad, device = self.policies.tokenizer.pad_token_id, self.policies.device
        size = len(units[0])
        longest = lambda u: max(len(s.prompt_ids) + len(s.completion_ids) for s in u)  # noqa: E731
        per_mb = math.ceil(len(units) / rl.minibatches)
        losses, norms, info_rows = [], [], []
        for mb_start in range(0, len(units), per_mb):
            mb = units[mb_start : mb_start + per_mb]
            self.optimizer.zero_grad(set_to_none=True)
            chunks = length_chunks(mb, longest, max(1, rl.micro_batch_size // size),
                                   rl.micro_batch_tokens // size if rl.micro_batch_tokens else 0)
            for chunk in chunks:
                flat = [s for unit in chunk for s in unit]  # a pair's two answers sit side by side
                batch = collate(flat, pad, device)
                logp = self._logprobs(flat[0].role, batch, grad=True)
                if rl.algorithm == "rft":
                    loss = sft_loss(logp, batch.response_mask)
                else:
                    ref = self.policies.ref_token_logprobs(batch.input_ids, batch.attention_mask, batch.start,
                                                           role=flat[0].role, only=batch.response_mask).float()
                    seq = sequence_logprobs(logp, batch.response_mask).view(-1, 2)
                    ref_seq = sequence_logprobs(ref, batch.response_mask).view(-1, 2)
                    loss, info = dpo_loss(seq[:, 0], seq[:, 1], ref_seq[:, 0], ref_seq[:, 1], rl.dpo_beta)
                    info_rows.append(info)
                (loss * len(chunk) / len(mb)).backward()
                losses.append(float(loss.detach()))
            if sft_samples and rl.aux_sft_coef > 0:
                sft = collate(list(sft_samples), pad, device)
                aux = sft_loss(self._logprobs(sft_samples[0].role, sft, grad=True), sft.response_mask)
                (rl.aux_sft_coef * aux).backward()
                stats["aux_sft_loss"] = float(aux.detach())
            if self.grad_clip > 0:
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)))
            self.optimizer.step()
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats.update(loss=sum(losses) / len(losses), lr=self.scheduler.get_last_lr()[0])
        if norms:
            stats["grad_norm"] = sum(norms) / len(norms)
        for key in ("dpo_accuracy", "dpo_margin"):
            if info_rows:
                stats[key] = sum(r[key] for r in info_rows) / len(info_rows)
        return stats

    def step(self, samples: Sequence[RoleSample], sft_samples: Sequence[RoleSample] = ()) -> dict[str, float]:
        """One rollout's worth of updates; returns loss/KL/grad-norm statistics."""
        rl = self.rl
        if not samples:
            return {}
        if rl.algorithm in ("rft", "online_dpo"):
            return self._direct_step(samples, sft_samples)
        self.policies.train()
        fused = self._fits_fused(samples)
        rows, stats = self._prepare(samples, fused)
        if rl.skip_zero_advantage:
            rows = [r for r in rows if bool((r["adv"].abs() * r["mask"]).sum() > 0)]
        stats["samples_trained"] = float(len(rows))
        stats["fused_pass"] = float(any("live" in r for r in rows))
        if not rows:
            return stats
        if rl.minibatches > 1:
            # Rows come grouped by role; each optimiser step must see a mix of every role sharing these weights.
            # Seeded by the update count, so a resumed run shuffles the same way.
            random.Random(f"minibatches:{self.scheduler.last_epoch}").shuffle(rows)
        pad = self.policies.tokenizer.pad_token_id
        device = self.policies.device
        per_mb = math.ceil(len(rows) / rl.minibatches)
        losses, clip_fracs, norms = [], [], []
        live_kl: dict[str, list[float]] = {}  # roles whose KL was not known before the gradient pass
        gap_sum: dict[str, float] = {}  # |rollout − learner| log-prob per token, before the first optimiser step
        gap_max: dict[str, float] = {}
        gap_tokens: dict[str, float] = {}
        for mb_index, mb_start in enumerate(range(0, len(rows), per_mb)):
            mb = rows[mb_start : mb_start + per_mb]
            self.optimizer.zero_grad(set_to_none=True)
            # Rows of a fused first pass reuse its graphs (one loss per micro-batch of that pass); the others get
            # their gradient pass here.
            graphs: dict[int, list[dict]] = {}
            for r in mb:
                if "live" in r:
                    graphs.setdefault(id(r["live"]), []).append(r)
            rest = [r for r in mb if "live" not in r]
            micro_batches = list(graphs.values()) + self._micro_batches(rest, sample_of=lambda r: r["sample"])
            for micro in micro_batches:
                if "live" in micro[0]:
                    logp = micro[0]["live"][[r["index"] for r in micro]]
                else:
                    # Samples in a micro-batch may belong to different roles that share this policy's weights.
                    batch = collate([r["sample"] for r in micro], pad, device)
                    logp = self._logprobs(micro[0]["sample"].role, batch, grad=True)
                loss, info = self._loss(micro, logp)
                (loss * len(micro) / len(mb)).backward()
                losses.append(float(loss.detach()))
                clip_fracs.append(info["clip_frac"])
                for i, r in enumerate(micro):
                    if r["old"] is None and r["ref"] is not None:
                        live_kl.setdefault(r["sample"].role, []).append(self._row_kl(logp[i].detach(), r))
                    if mb_index == 0 and r["rollout"] is not None:
                        n = r["mask"].shape[0]
                        gap = (logp[i, :n].detach() - r["rollout"]).abs() * r["mask"]
                        role = r["sample"].role
                        gap_sum[role] = gap_sum.get(role, 0.0) + float(gap.sum())
                        gap_max[role] = max(gap_max.get(role, 0.0), float(gap.max()))
                        gap_tokens[role] = gap_tokens.get(role, 0.0) + float(r["mask"].sum())
            if sft_samples and rl.aux_sft_coef > 0:
                sft = collate(list(sft_samples), pad, device)
                logp = self._logprobs(sft_samples[0].role, sft, grad=True)
                aux = sft_loss(logp, sft.response_mask)
                (rl.aux_sft_coef * aux).backward()
                stats["aux_sft_loss"] = float(aux.detach())
            if self.grad_clip > 0:
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)))
            self.optimizer.step()
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats.update(
            {
                "loss": sum(losses) / len(losses),
                "clip_frac": sum(clip_fracs) / len(clip_fracs),
                "lr": self.scheduler.get_last_lr()[0],
            }
        )
        if norms:
            stats["grad_norm"] = sum(norms) / len(norms)
        for role, vals in live_kl.items():
            stats[f"{role}/kl"] = sum(vals) / len(vals)
        for role, total in gap_sum.items():
            # How far the policy that sampled the rollout is from the one that learns from it (same weights, other
            # kernels): mean and largest per-token |Δ log-prob| of the sampled tokens.
            stats[f"{role}/rollout_logprob_gap"] = total / max(1.0, gap_tokens[role])
            stats[f"{role}/rollout_logprob_gap_max"] = gap_max[role]
        return stats
