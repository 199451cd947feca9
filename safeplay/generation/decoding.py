"""The decode loop every local generator shares: sample a token per row, apply the stopping rules, step the batch.

``decode`` runs it over a ``DecodingBatch`` — whatever computes the next logits for the rows still in the batch
and can drop finished rows from its KV cache (``HFGenerator``'s model with a ``DynamicCache``, ``FastGenerator``'s
lean decoder). Each step picks one token per live row (``sampling.sample_next``), records its behaviour log-prob,
and finishes the row on an end-of-sequence token (unless ``ignore_eos``), then on a stop string; finished rows are
dropped from the batch once a ``compact_fraction`` of it has finished (0: as soon as one has). The completions'
tokens, log-probs and finish reasons therefore depend only on the logits and the seed, not on the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

import torch

from safeplay.generation.base import Completion, FinishReason, SamplingParams, logprob_temperature
from safeplay.generation.sampling import chosen_logprobs, sample_next

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class DecodingBatch(Protocol):
    """The rows being decoded, with their KV cache."""

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per batch row; logits (fp32) of the next, one row per batch row."""
        ...

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in ``rows`` (indices into the current batch)."""
        ...


class _StopMatcher:
    """Finds the first stop string in a growing completion, decoding only its tail each step."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", stops: Sequence[str]):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        # Most tokens decode to at least one character; a few extra cover byte pieces and empty tokens.
        self.window = max((len(s) for s in self.stops), default=0) + 4

    def hit(self, token_ids: list[int]) -> bool:
        if not self.stops:
            return False
        tail = self.tokenizer.decode(token_ids[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stops)

    def cut(self, text: str) -> str:
        """Text up to and including the earliest stop string."""
        ends = [text.find(s) + len(s) for s in self.stops if s in text]
        return text[: min(ends)] if ends else text


def decode(
    batch: DecodingBatch,
    logits: torch.Tensor,
    prompt_ids: Sequence[Sequence[int]],
    sampling: SamplingParams,
    gen: torch.Generator,
    tokenizer: "PreTrainedTokenizerBase",
    eos_ids: set[int],
    ignore_eos: bool,
    device: torch.device,
    compact_fraction: float = 0.0,
) -> list[Completion]:
    """Complete each of ``prompt_ids`` from ``logits`` (the prefill's, one row per prompt) by stepping ``batch``.

    ``compact_fraction``: compact the batch once this share of its rows (at least one) has finished; until then
    finished rows ride along and their logits are skipped."""
    n = len(prompt_ids)
    tokens: list[list[int]] = [[] for _ in range(n)]
    logprobs: list[list[float]] = [[] for _ in range(n)]
    reasons: list[FinishReason] = ["length"] * n
    rows = list(range(n))  # batch row -> original row
    alive = list(range(n))  # batch rows still generating
    matcher = _StopMatcher(tokenizer, sampling.stop)
    chosen_all = torch.zeros(n, dtype=torch.long, device=device)
    lp_temperature = logprob_temperature(sampling)
    for step in range(sampling.max_new_tokens):
        # The batch holds finished rows only between compactions; while it holds none, no row is picked out.
        live = torch.tensor(alive, device=device) if len(alive) < len(rows) else None
        sub = logits if live is None else logits.index_select(0, live)
        chosen = sample_next(sub, sampling, gen)
        lp = chosen_logprobs(sub, chosen, lp_temperature)
        still: list[int] = []
        for b, tok, val in zip(alive, chosen.tolist(), lp.tolist()):
            r = rows[b]
            tokens[r].append(tok)
            logprobs[r].append(val)
            if tok in eos_ids and not ignore_eos:
                reasons[r] = "eos"
            elif matcher.hit(tokens[r]):
                reasons[r] = "stop"
            else:
                still.append(b)
        if not still or step == sampling.max_new_tokens - 1:
            break
        chosen_all = chosen if live is None else chosen_all.index_copy(0, live, chosen)
        dead = len(rows) - len(still)
        if dead and dead >= max(1, int(compact_fraction * len(rows))):
            keep = torch.tensor(still, device=device)
            batch.keep(keep)
            chosen_all = chosen_all.index_select(0, keep)
            rows = [rows[b] for b in still]
            still = list(range(len(still)))
        alive = still
        logits = batch.step(chosen_all)

    completions = []
    for r in range(n):
        text = tokenizer.decode(tokens[r], skip_special_tokens=True)
        if reasons[r] == "stop":
            text = matcher.cut(text)
        completions.append(Completion(text, list(prompt_ids[r]), tokens[r], logprobs[r], reasons[r],
                                      temperature=lp_temperature))
    return completions
