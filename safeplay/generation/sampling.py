"""Choosing the next token from a batch of logits: greedy or temperature / top-k / top-p sampling, exact and cheap,
and the behaviour log-prob of each chosen token. Every local generator samples through here with its own private
``torch.Generator``, so the same seed draws the same tokens whichever backend computed the logits.
"""

from __future__ import annotations

import torch

from safeplay.generation.base import SamplingParams


def chosen_logprobs(logits: torch.Tensor, chosen: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / temperature)[chosen] per row, in fp32: the behaviour log-prob of each sampled token."""
    x = logits.float()
    if temperature != 1.0:
        x = x / temperature
    return x.gather(-1, chosen.unsqueeze(-1)).squeeze(-1) - x.logsumexp(dim=-1)


def sample_next(logits: torch.Tensor, sampling: SamplingParams, gen: torch.Generator) -> torch.Tensor:
    """Pick one token per row: greedy at temperature 0, else temperature / top-k / top-p sampling.

    Exact sampling, but cheaper than ``softmax → sort → multinomial`` over the whole vocabulary (on a CPU, a full
    sort of 64 × 49k logits and ``multinomial``'s per-entry random draws cost more than the model's decode step):

    * truncation works on the ``topk`` candidates only; for top-p the candidate count starts small and doubles
      for the rows whose nucleus is not yet inside it (a full sort only for the flattest rows);
    * the draw is an inverse-CDF lookup with **one** uniform number per row.

    Kept tokens are those whose preceding cumulative probability is ≤ top_p (the most likely one always stays),
    after the top-k cut and renormalisation, as in HF's warpers.
    """
    if sampling.temperature == 0:
        return logits.argmax(dim=-1)
    x = logits.float()
    if sampling.temperature != 1.0:
        x = x / sampling.temperature
    vocab = x.shape[-1]
    top_k = sampling.top_k if 0 < sampling.top_k < vocab else vocab
    u = torch.rand((x.shape[0], 1), generator=gen, device=x.device)
    if top_k == vocab and sampling.top_p >= 1.0:
        return _inverse_cdf(x.softmax(dim=-1), u)
    # log Z of the distribution the nucleus is taken from (after the top-k cut).
    log_z = x.logsumexp(dim=-1, keepdim=True) if top_k == vocab else None
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    rows = torch.arange(x.shape[0], device=x.device)
    k = top_k if sampling.top_p >= 1.0 else min(top_k, 64)
    while rows.numel():
        vals, idx = torch.topk(x[rows], k, dim=-1)  # sorted, most likely first
        z = log_z[rows] if log_z is not None else torch.topk(x[rows], top_k, dim=-1).values.logsumexp(-1, keepdim=True)
        probs = (vals - z).exp()
        before = probs.cumsum(dim=-1) - probs
        keep = before <= sampling.top_p
        keep[:, 0] = True
        # The nucleus fits in these k candidates when the last one is already cut (or no more candidates exist).
        done = ~keep[:, -1] | (k >= top_k) if sampling.top_p < 1.0 else torch.ones_like(keep[:, 0])
        if done.any():
            cdf = (probs * keep)[done].cumsum(dim=-1)
            pick = torch.searchsorted(cdf, u[rows][done] * cdf[:, -1:], right=True).clamp_(max=k - 1)
            out[rows[done]] = idx[done].gather(-1, pick).squeeze(-1)
        rows = rows[~done]
        k = min(top_k, 4 * k)
    return out


CDF_BLOCK = 256
"""Block size of the two-level inverse-CDF lookup in ``_inverse_cdf``."""


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index where each row's cumulative ``probs`` first exceeds ``u``·total: the block first (from per-block
    sums), then the position inside it — a running sum over whole rows of a 49k vocabulary costs more than the
    rest of the draw."""
    rows, vocab = probs.shape
    if vocab % CDF_BLOCK:
        cdf = probs.cumsum(dim=-1)
        return torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=vocab - 1).squeeze(-1)
    blocks = probs.view(rows, vocab // CDF_BLOCK, CDF_BLOCK)
    sums = blocks.sum(dim=-1)
    ends = sums.cumsum(dim=-1)
    target = u * ends[:, -1:]
    b = torch.searchsorted(ends, target, right=True).clamp_(max=ends.shape[1] - 1)
    inside = blocks[torch.arange(rows, device=probs.device), b.squeeze(-1)].cumsum(dim=-1)
    inside += (ends.gather(-1, b) - sums.gather(-1, b))
    j = torch.searchsorted(inside, target, right=True).clamp_(max=CDF_BLOCK - 1)
    return (b * CDF_BLOCK + j).squeeze(-1)
