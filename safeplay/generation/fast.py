"""A lean decoder for Llama-family models (Llama, SmolLM2, Qwen2, Mistral): the rollout fast path.

Why not ``model.generate`` or a plain forward with a ``DynamicCache``: at 135M parameters a decode step is a few
milliseconds of matrix work and many more of framework overhead — per-layer module calls, an unmerged LoRA
adapter's two extra matmuls on every projection, a 4-D mask rebuilt every step, and a KV cache that grows by
concatenation (copying itself each step). This decoder runs the same maths with

* **the active LoRA adapter folded in once per weights version**: in fp32 each linear layer's weight is merged,
  ``W + scale·B·A`` (peft's ``get_delta_weight``); in bf16/fp16 the adapter stays a low-rank side path
  ``x·Aᵀ·(scale·B)ᵀ`` added to the base product, because merging would round the adapter away: a bf16 weight
  keeps 8 significant bits, so an adapter delta of std 1e-4 leaves most entries of a projection of the bundled
  model unchanged, and rollouts would be sampled from a different policy than the one that learns (the learner
  adds the adapter's output to the base output, as peft does). Q/K/V and gate/up projections are fused into one
  matmul each (their adapters into one block-diagonal side path);
* a **preallocated KV cache** written in place (keys transposed, so a decode step's q·Kᵀ reads the filled slots
  as a plain strided matrix), with the grouped query heads folded into the query length during decoding so
  grouped-query attention needs no copy of K/V;
* a **shared prompt start** (chat template, system prompt, role instructions) prefilled once per micro-batch,
  identical prompts (a GRPO group) prefilled once, and the rest prefilled in length groups without the batch's
  padding;
* finished rows **compacted out** of the batch in buckets (not every step), so early stops still save work.

The numerics are the model's own (RMSNorm in fp32 as in HF, the model's rotary embedding module, SDPA attention
in the prefill and the same softmax attention written out for decoding), so log-probs agree with teacher-forced
ones within floating-point noise (tests state the tolerance). Models of
other architectures use ``HFGenerator``; ``supports(model)`` tells which.

Where the parts live: the fused weights in ``generation.fast_weights``, the prefill and decode steps in
``generation.fast_decoder``, and the token-by-token loop (sampling, stopping rules, compaction) in
``generation.decoding``, which ``HFGenerator`` runs too; this module plans a micro-batch's prefill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch

from safeplay.generation.base import Completion, SamplingParams
from safeplay.generation.fast_decoder import FastDecoder
from safeplay.generation.fast_weights import DecoderWeights, extract_weights, weights_version
from safeplay.generation.hf import HFGenerator
from safeplay.models.logprobs import inner_model, position_ids_from_mask

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SUPPORTED = ("llama", "qwen2", "mistral")
"""HF ``model_type`` values whose decoder layer is the Llama layout this module implements."""


def supports(model: torch.nn.Module) -> bool:
    lm = inner_model(model)
    cfg = getattr(lm, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in SUPPORTED:
        return False
    # Sliding-window attention (Mistral/Qwen2 options) changes the mask; leave such models to HF.
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return cfg.model_type == "llama"
    return True


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all ``prompts`` share, leaving every prompt at least one token of its own (the
    last prompt token's logits start the decoding)."""
    first = prompts[0]
    limit = min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


class FastGenerator(HFGenerator):
    """``Generator`` with the lean decoder; same prompts, sampling, seeding and outputs as ``HFGenerator``.

    ``adapter`` picks the weights: a callable returning the active adapter name (None = base weights), so one
    generator serves every role of a LoRA policy set. Merged weights are cached per (adapter, weights version).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: "PreTrainedTokenizerBase",
        micro_batch_size: int = 64,
        ignore_eos: bool = False,
        adapter: Callable[[], str | None] = lambda: None,
        compact_fraction: float = 0.125,
    ):
        """``compact_fraction``: compact the batch once this share of its rows (at least one) has finished."""
        super().__init__(model, tokenizer, micro_batch_size, ignore_eos)
        self.adapter = adapter
        self.compact_fraction = compact_fraction
        self._cache: dict[str | None, tuple[tuple, DecoderWeights]] = {}

    MIN_SHARED_PREFIX = 8
    """A start shared by every prompt of a micro-batch (chat template, system prompt, role instructions) is
    prefilled once when it is at least this many tokens."""

    MAX_CACHED = 4
    """Merged weight sets kept at once (TriPlay alternates three adapters and the base between calls)."""

    def weights(self) -> DecoderWeights:
        name = self.adapter()
        key = weights_version(self.model, name)
        hit = self._cache.pop(name, None)
        if hit is None or hit[0] != key:
            hit = None  # free a stale merged copy before building its replacement
            while len(self._cache) >= self.MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            hit = (key, extract_weights(self.model, name))
        self._cache[name] = hit  # most recently used last
        return hit[1]

    def _generate_batch(
        self, prompt_ids: list[list[int]], sampling: SamplingParams, gen: torch.Generator
    ) -> list[Completion]:
        device = self.device
        n = len(prompt_ids)
        shared = shared_prefix_length(prompt_ids) if n > 1 else 0
        shared = shared if shared >= self.MIN_SHARED_PREFIX else 0
        # Identical prompts (a GRPO group) are prefilled once; their rows are copied out of the cache after.
        first: dict[tuple[int, ...], int] = {}
        expand = [first.setdefault(tuple(ids), len(first)) for ids in prompt_ids]
        unique = [list(ids[shared:]) for ids in first]
        width = max(len(u) for u in unique)
        input_ids = torch.full((len(unique), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(unique), width), dtype=torch.long)
        for r, ids in enumerate(unique):
            input_ids[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[r, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = shared + position_ids_from_mask(mask)
        prefix = torch.tensor(prompt_ids[0][:shared], dtype=torch.long, device=device) if shared else None

        dec = FastDecoder(self.model, self.weights())
        logits = dec.prefill(input_ids, mask, positions, shared + width + sampling.max_new_tokens, prefix)
        next_pos = positions[:, -1] + 1
        if len(unique) < n:
            rows_of = torch.tensor(expand, device=device)
            dec.keep(rows_of)
            logits, next_pos = logits.index_select(0, rows_of), next_pos.index_select(0, rows_of)

        return self._decode(_FastBatch(dec, next_pos), logits, prompt_ids, sampling, gen, self.compact_fraction)


class _FastBatch:
    """A ``DecodingBatch`` over the lean decoder: its cache, and each row's next position."""

    def __init__(self, decoder: FastDecoder, next_pos: torch.Tensor):
        self.decoder = decoder
        self.next_pos = next_pos

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.decoder.step(tokens, self.next_pos)
        self.next_pos = self.next_pos + 1
        return logits

    def keep(self, rows: torch.Tensor) -> None:
        self.decoder.keep(rows)
        self.next_pos = self.next_pos.index_select(0, rows)
