"""Batched generation with a Hugging Face causal LM (CPU or GPU).

The decoding loop (``generation.decoding``, shared with the lean decoder of ``generation.fast``) is written out
instead of calling ``model.generate`` because we need, at every step,
the log-probability of the chosen token under the *raw* model distribution (no temperature, no top-p),
stop strings that cut the completion exactly, and a private random generator so seeding never touches
the global RNG. Rows that finish are dropped from the batch (and its KV cache) so early stops save time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch

from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, SamplingParams
from safeplay.generation.decoding import decode
from safeplay.models.logprobs import position_ids_from_mask

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from safeplay.generation.decoding import DecodingBatch


def render_prompt(tokenizer: "PreTrainedTokenizerBase", prompt: ChatPrompt) -> str:
    """Chat template with the assistant header opened, then the prefill."""
    if not getattr(tokenizer, "chat_template", None):
        raise SafeplayError("this tokenizer has no chat template; use an instruction-tuned model")
    text = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    return text + prompt.prefill


class HFGenerator:
    """``Generator`` over a Hugging Face causal LM: left-padded micro-batches sorted by prompt length."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: "PreTrainedTokenizerBase",
        micro_batch_size: int = 64,
        ignore_eos: bool = False,
    ):
        """``ignore_eos`` keeps generating past EOS (fixed-length runs for throughput benchmarks)."""
        if micro_batch_size < 1:
            raise SafeplayError("micro_batch_size must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.micro_batch_size = micro_batch_size
        self.ignore_eos = ignore_eos
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = self._eos_ids()

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        gen_cfg = getattr(self.model, "generation_config", None)
        eos = getattr(gen_cfg, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(int(e) for e in eos)
        return ids

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def render(self, prompt: ChatPrompt) -> str:
        return render_prompt(self.tokenizer, prompt)

    def encode(self, prompt: ChatPrompt) -> list[int]:
        """Token ids of the rendered prompt (the template already holds its special tokens)."""
        return self.tokenizer(self.render(prompt), add_special_tokens=False)["input_ids"]

    def generate(
        self, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None = None
    ) -> list[Completion]:
        """Complete every prompt; results come back in input order. Same seed and inputs → same outputs."""
        if not prompts:
            return []
        encoded = [self.encode(p) for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        gen = torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        results: list[Completion | None] = [None] * len(encoded)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.micro_batch_size):
                    idx = order[start : start + self.micro_batch_size]
                    for i, c in zip(idx, self._generate_batch([encoded[i] for i in idx], sampling, gen)):
                        results[i] = c
        finally:
            self.model.train(was_training)
        return results  # type: ignore[return-value]

    def _generate_batch(
        self, prompt_ids: list[list[int]], sampling: SamplingParams, gen: torch.Generator
    ) -> list[Completion]:
        device = self.device
        n = len(prompt_ids)
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, ids in enumerate(prompt_ids):
            input_ids[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[r, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = position_ids_from_mask(mask)

        from transformers import DynamicCache

        cache = DynamicCache(config=getattr(self.model, "config", None))
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1].float()
        next_pos = positions[:, -1:] + 1

        return self._decode(_HFBatch(self.model, cache, mask, next_pos), logits, prompt_ids, sampling, gen)

    def _decode(
        self, batch: "DecodingBatch", logits: torch.Tensor, prompt_ids: Sequence[Sequence[int]],
        sampling: SamplingParams, gen: torch.Generator, compact_fraction: float = 0.0,
    ) -> list[Completion]:
        """The shared decode loop (``generation.decoding``) with this generator's tokenizer and stopping rules."""
        return decode(batch, logits, prompt_ids, sampling, gen, self.tokenizer, self.eos_ids, self.ignore_eos,
                      self.device, compact_fraction)


class _HFBatch:
    """A ``DecodingBatch`` over a Hugging Face model: one forward per step through its ``DynamicCache``."""

    def __init__(self, model: torch.nn.Module, cache: Any, mask: torch.Tensor, next_pos: torch.Tensor):
        self.model = model
        self.cache = cache
        self.mask = mask
        self.next_pos = next_pos

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        out = self.model(
            input_ids=tokens.unsqueeze(-1),
            attention_mask=self.mask,
            position_ids=self.next_pos,
            past_key_values=self.cache,
            use_cache=True,
        )
        self.next_pos = self.next_pos + 1
        return out.logits[:, -1].float()

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.mask, self.next_pos = self.mask[rows], self.next_pos[rows]
