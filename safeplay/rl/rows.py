"""One sample's per-token tensors for the policy-gradient update, and where its "old" log-probs come from.

The PPO-clipped surrogate needs, per response token t, the ratio r_t = π_θ(a_t)/π_old(a_t) and an advantage A_t;
REINFORCE++ with its KL in the reward (papers.md §1.6, step 3) also needs π_old and π_ref *before* the gradient pass,
to build r_t = −β·KL_t. A ``Row`` holds those tensors for one sample, laid out like the learner's log-prob tensor
(position t scores token t + 1); ``OldLogprobs`` names the four places π_old can come from, and ``score_rows`` runs
the passes that fill the rows (the behaviour pass when one is needed, the reference pass when the KL is on).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Sequence

import torch

from safeplay.rl.batch import RoleSample, collate, length_chunks
from safeplay.rl.kl import KLEstimator, kl_per_token

if TYPE_CHECKING:
    from safeplay.rl.config import RLConfig


class OldLogprobs(str, Enum):
    """Where one role's behaviour ("old") log-probs π_old come from (``PolicyUpdater._old_source`` chooses)."""

    LIVE = "live"
    """None are needed before the loss: with one mini-batch and no KL in the reward the weights have not moved since
    the rollout, so π_old is the gradient pass's own (detached) value — exactly on-policy."""
    ROLLOUT = "rollout"
    """The generator's own log-probs of the tokens it sampled (``RoleSample.rollout_logprobs``): the behaviour
    policy by definition, and no forward pass."""
    PASS = "pass"
    """A teacher-forced pass without gradient before the update (OpenRLHF's way)."""
    FUSED = "fused"
    """A teacher-forced pass *with* gradient whose graphs are kept: with one mini-batch it is also the gradient pass,
    so the update runs one forward fewer."""


@dataclass
class Row:
    """One sample's tensors for the update, each trimmed to the sample's length − 1 (aligned with ``mask``)."""

    sample: RoleSample
    """The sample the row scores."""
    mask: torch.Tensor
    """1 where the position predicts a completion token."""
    old: torch.Tensor | None
    """Behaviour log-probs π_old (no gradient); None when the source is ``OldLogprobs.LIVE``."""
    ref: torch.Tensor | None
    """KL-reference log-probs π_ref. With the KL off (β = 0) no reference pass runs and this is ``old`` (the KL
    estimate is then 0)."""
    rollout: torch.Tensor | None
    """The generator's log-probs, when the sample has them: for the rollout-vs-learner gap statistic."""
    live: torch.Tensor | None = None
    """``OldLogprobs.FUSED``: the differentiable log-probs of the micro-batch this row was scored in (shared by the
    rows of that micro-batch, whose loss reuses the graph)."""
    index: int | None = None
    """``OldLogprobs.FUSED``: this row's index in ``live``."""
    adv: torch.Tensor | None = None
    """Per-token advantages A_t, filled by the algorithm's preparation (``safeplay.rl.advantages``)."""

    @property
    def trains(self) -> bool:
        """Whether any response token has a non-zero advantage (otherwise the row contributes no gradient)."""
        return bool((self.adv.abs() * self.mask).sum() > 0)


def completion_row(mask: torch.Tensor, sample: RoleSample, values: Sequence[float]) -> torch.Tensor:
    """Per-completion-token ``values`` laid out like ``mask`` (a row of the log-prob tensor)."""
    row = torch.zeros_like(mask)
    p = len(sample.prompt_ids)
    row[p - 1 : p - 1 + len(sample.completion_ids)] = torch.tensor(values, dtype=row.dtype, device=mask.device)
    return row


def row_kl(logp: torch.Tensor, row: Row, estimator: KLEstimator) -> float:
    """Mean KL estimate over one row's response tokens (GRPO's reported KL: per sequence, then averaged)."""
    n = row.mask.shape[0]
    k = kl_per_token(logp[:n], row.ref, estimator)
    return float((k * row.mask).sum() / row.mask.sum().clamp(min=1))


def sample_length(sample: RoleSample) -> int:
    """Tokens in the sample's sequence (prompt + completion): what a forward pass pays for it."""
    return len(sample.prompt_ids) + len(sample.completion_ids)


def score_rows(policies, rl: RLConfig, role: str, samples: Sequence[RoleSample], old: OldLogprobs) -> list[Row]:
    """The rows of ``samples`` (one role's, or roles sharing ``role``'s weights), in the input order: π_old from
    ``old``, π_ref from a reference pass when the KL is on — unless the recipe already scored the reference (e.g. a
    coherence check), then from the samples."""
    pad = policies.tokenizer.pad_token_id
    device = policies.device
    need_ref = rl.kl_beta > 0
    rows: dict[int, Row] = {}
    # Micro-batches in length order (see ``PolicyUpdater._micro_batches``), each row returned to its input position.
    chunks = length_chunks(list(enumerate(samples)), lambda x: sample_length(x[1]), rl.micro_batch_size,
                           rl.micro_batch_tokens)
    for chunk in chunks:
        batch = collate([s for _, s in chunk], pad, device)
        logp = None
        if old in (OldLogprobs.FUSED, OldLogprobs.PASS):
            with torch.set_grad_enabled(old == OldLogprobs.FUSED):
                logp = policies.token_logprobs(role, batch.input_ids, batch.attention_mask, batch.start,
                                               only=batch.response_mask, temperature=batch.temperature).float()
        cached_ref = need_ref and all(s.ref_logprobs is not None for _, s in chunk)
        ref = None
        if need_ref and not cached_ref:
            ref = policies.ref_token_logprobs(batch.input_ids, batch.attention_mask, batch.start, role=role,
                                              only=batch.response_mask, temperature=batch.temperature).float()
        for i, (pos, s) in enumerate(chunk):
            n = int(batch.attention_mask[i].sum())
            mask = batch.response_mask[i, : n - 1]
            rollout = completion_row(mask, s, s.rollout_logprobs) if s.has_rollout_logprobs else None
            if old == OldLogprobs.ROLLOUT:
                row_old = rollout
            else:
                row_old = logp[i, : n - 1].detach() if logp is not None else None
            if cached_ref:
                row_ref = completion_row(mask, s, s.ref_logprobs)
            else:
                row_ref = ref[i, : n - 1] if ref is not None else row_old
            fused = old == OldLogprobs.FUSED
            rows[pos] = Row(s, mask, row_old, row_ref, rollout, live=logp if fused else None,
                            index=i if fused else None)
    return [rows[i] for i in range(len(samples))]
