"""Training samples, their padded tensor form, and how they are cut into mini-batches (one optimiser step each) and
length-sorted micro-batches (one forward/backward pass each)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import torch


@dataclass
class RoleSample:
    """One generated turn to learn from: the rendered prompt, the completion, and its scalar reward."""

    role: str
    prompt_ids: list[int]
    completion_ids: list[int]
    reward: float
    group: object = None
    """GRPO group key (samples of the same prompt); None for REINFORCE++."""
    advantage: float | None = None
    """Filled by GRPO (one value for every token of the sample)."""
    meta: dict = field(default_factory=dict)
    rollout_logprobs: list[float] | None = None
    """The behaviour policy's log-probability of each completion token, as the generator sampled it (at
    ``temperature``); None when the completion was not sampled token by token from the policy at that temperature."""
    temperature: float = 1.0
    """Softmax temperature the completion was sampled at: the learner scores it (and its KL reference) at the
    same temperature, so that the gradient is that of the distribution which played."""
    ref_logprobs: list[float] | None = None
    """The KL reference's log-probability of each completion token at ``temperature``, when the recipe already
    computed it (e.g. for a coherence check); the learner then skips its own reference pass for this sample."""

    @property
    def has_rollout_logprobs(self) -> bool:
        return self.rollout_logprobs is not None and len(self.rollout_logprobs) == len(self.completion_ids)


T = TypeVar("T")


def length_chunks(items: Sequence[T], length: Callable[[T], int], max_rows: int, max_tokens: int = 0) -> list[list[T]]:
    """``items`` in ascending length, cut into chunks of at most ``max_rows`` items and ``max_tokens`` padded
    tokens (rows × the longest; 0 = no token cap; a single longer item still makes its own chunk). Less padding,
    and bounded activation memory per forward/backward pass."""
    chunks: list[list[T]] = []
    for item in sorted(items, key=length):
        n = length(item)  # ascending: the newest item is the chunk's widest
        if chunks and len(chunks[-1]) < max_rows and (not max_tokens or (len(chunks[-1]) + 1) * n <= max_tokens):
            chunks[-1].append(item)
        else:
            chunks.append([item])
    return chunks


def minibatches(items: Sequence[T], n: int) -> list[list[T]]:
    """``items`` cut, in order, into at most ``n`` consecutive slices of ⌈len/n⌉ (the last may be shorter): the
    mini-batches of one epoch, each one optimiser step."""
    per = math.ceil(len(items) / n)
    return [list(items[start : start + per]) for start in range(0, len(items), per)]


@dataclass
class TokenBatch:
    input_ids: torch.Tensor
    """(B, L) right-padded prompt + completion."""
    attention_mask: torch.Tensor
    """(B, L) 1 on real tokens."""
    response_mask: torch.Tensor
    """(B, L-1) 1 where position t predicts a completion token (aligned with ``token_logprobs`` output)."""
    start: int = 0
    """First position that predicts a completion token in any row (earlier ones score prompts only)."""
    temperature: torch.Tensor | None = None
    """(B,) sampling temperature of each row (None: every row at 1)."""

    @property
    def tokens(self) -> int:
        """Padded size of the batch (rows × width): what a forward pass costs."""
        return int(self.input_ids.numel())


def collate(samples: Sequence[RoleSample], pad_id: int, device: torch.device | str = "cpu") -> TokenBatch:
    seqs = [s.prompt_ids + s.completion_ids for s in samples]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    resp = torch.zeros((len(seqs), width - 1), dtype=torch.float32)
    for i, (s, seq) in enumerate(zip(samples, seqs)):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attn[i, : len(seq)] = 1
        p, c = len(s.prompt_ids), len(s.completion_ids)
        # Position t of the logprob tensor scores token t+1; completion tokens sit at p .. p+c-1.
        resp[i, p - 1 : p - 1 + c] = 1.0
    start = max(0, min(len(s.prompt_ids) for s in samples) - 1)
    temps = [s.temperature for s in samples]
    temperature = None if all(t == 1.0 for t in temps) else torch.tensor(temps, dtype=torch.float32, device=device)
    return TokenBatch(ids.to(device), attn.to(device), resp.to(device), start, temperature)
