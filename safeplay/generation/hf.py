"""Batched generation with a Hugging Face causal LM (CPU or GPU).

The decoding loop is written out instead of calling ``model.generate`` because we need, at every step,
the log-probability of the chosen token under the *raw* model distribution (no temperature, no top-p),
stop strings that cut the completion exactly, and a private random generator so seeding never touches
the global RNG. Rows that finish are dropped from the batch (and its KV cache) so early stops save time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, FinishReason, SamplingParams, logprob_temperature
from safeplay.models.logprobs import position_ids_from_mask

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def render_prompt(tokenizer: "PreTrainedTokenizerBase", prompt: ChatPrompt) -> str:
    """Chat template with the assistant header opened, then the prefill."""
    if not getattr(tokenizer, "chat_template", None):
        raise SafeplayError("this tokenizer has no chat template; use an instruction-tuned model")
    text = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    return text + prompt.prefill


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

        tokens: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        reasons: list[FinishReason] = ["length"] * n
        active = list(range(n))  # batch row -> original row
        matcher = _StopMatcher(self.tokenizer, sampling.stop)
        lp_temperature = logprob_temperature(sampling)
        for step in range(sampling.max_new_tokens):
            chosen = sample_next(logits, sampling, gen)
            lp = chosen_logprobs(logits, chosen, lp_temperature)
            keep: list[int] = []
            for b, (tok, val) in enumerate(zip(chosen.tolist(), lp.tolist())):
                r = active[b]
                tokens[r].append(tok)
                logprobs[r].append(val)
                if tok in self.eos_ids and not self.ignore_eos:
                    reasons[r] = "eos"
                elif matcher.hit(tokens[r]):
                    reasons[r] = "stop"
                else:
                    keep.append(b)
            if not keep or step == sampling.max_new_tokens - 1:
                break
            if len(keep) < len(active):
                sel = torch.tensor(keep, device=device)
                cache.batch_select_indices(sel)
                mask, next_pos, chosen = mask[sel], next_pos[sel], chosen[sel]
                active = [active[b] for b in keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            out = self.model(
                input_ids=chosen.unsqueeze(-1),
                attention_mask=mask,
                position_ids=next_pos,
                past_key_values=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1].float()
            next_pos = next_pos + 1

        completions = []
        for r in range(n):
            text = self.tokenizer.decode(tokens[r], skip_special_tokens=True)
            if reasons[r] == "stop":
                text = matcher.cut(text)
            completions.append(Completion(text, list(prompt_ids[r]), tokens[r], logprobs[r], reasons[r],
                                          temperature=lp_temperature))
        return completions
