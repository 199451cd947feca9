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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch
import torch.nn.functional as F

from safeplay.generation.base import ChatPrompt, Completion, FinishReason, SamplingParams, logprob_temperature
from safeplay.generation.hf import HFGenerator, _StopMatcher, chosen_logprobs, sample_next
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


def _has_adapter(module: torch.nn.Module, adapter: str | None) -> bool:
    return adapter is not None and getattr(module, "base_layer", None) is not None and adapter in getattr(module, "lora_A", {})


def _merge_exactly(module: torch.nn.Module, adapter: str | None) -> bool:
    """Whether the adapter is merged into the weight (fp32, or a LoRA variant without a plain low-rank form)
    rather than kept as a low-rank side path (bf16/fp16: merging would round a small adapter away)."""
    if not _has_adapter(module, adapter):
        return False
    if module.base_layer.weight.dtype == torch.float32:
        return True
    return bool(getattr(module, "use_dora", {}).get(adapter, False))


def _weight(module: torch.nn.Module, adapter: str | None) -> torch.Tensor:
    """The weight the base product uses: the base weight, with the adapter's delta merged in where that is exact
    (``_merge_exactly``)."""
    base = getattr(module, "base_layer", None)
    if base is None:
        return module.weight
    w = base.weight
    if not _merge_exactly(module, adapter):
        return w
    return (w.float() + module.get_delta_weight(adapter).float()).to(w.dtype)


def _low_rank(modules: Sequence[torch.nn.Module], adapter: str | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The unmerged adapters of (fused) ``modules`` as one side path ``x·aᵀ·bᵀ``: ``a`` stacks every module's
    A (rows: ranks), ``b`` is block-diagonal in the modules' scaled B (modules without an adapter get zero rows).
    None when no module keeps an unmerged adapter."""
    kept = [_has_adapter(m, adapter) and not _merge_exactly(m, adapter) for m in modules]
    if not any(kept):
        return None
    dtype = next(m.base_layer.weight.dtype for m, k in zip(modules, kept) if k)
    a_parts, b_blocks = [], []
    for m, keep in zip(modules, kept):
        out_features = m.base_layer.out_features
        if keep:
            a_parts.append(m.lora_A[adapter].weight.float())
            b_blocks.append(m.lora_B[adapter].weight.float() * m.scaling[adapter])
        else:  # a module merged or without adapter contributes nothing to the side path
            b_blocks.append(torch.zeros((out_features, 0), device=m.base_layer.weight.device))
    a = torch.cat(a_parts)
    b = torch.block_diag(*b_blocks) if len(b_blocks) > 1 else b_blocks[0]
    return a.to(dtype), b.to(dtype)


def _cat_bias(modules: Sequence[torch.nn.Module]) -> torch.Tensor | None:
    """Fused bias of fused projections (Qwen2 has Q/K/V biases; Llama has none)."""
    layers = [getattr(m, "base_layer", m) for m in modules]
    if all(l.bias is None for l in layers):
        return None
    return torch.cat([
        l.bias if l.bias is not None else l.weight.new_zeros(l.out_features) for l in layers
    ])


_PACKING_WORKS: dict[torch.dtype, bool] = {}


def _packing_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's pre-reordered linear runs here and gives ``F.linear``'s numbers (checked once per dtype)."""
    if dtype not in _PACKING_WORKS:
        try:
            g = torch.Generator().manual_seed(0)
            w = torch.randn(24, 40, generator=g).to(dtype)
            x = torch.randn(3, 40, generator=g).to(dtype)
            packed = torch.ops.mkldnn._reorder_linear_weight(w, 64)
            got = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
            _PACKING_WORKS[dtype] = bool(torch.allclose(got.float(), F.linear(x, w).float(), atol=1e-2))
        except (AttributeError, RuntimeError, NotImplementedError):
            _PACKING_WORKS[dtype] = False
    return _PACKING_WORKS[dtype]


class Dense:
    """One inference-only linear map ``x·Wᵀ (+ b)``.

    On a CPU, W is reordered once into oneDNN's blocked layout (what ``torch.compile``'s freezing pass does for
    CPU linears): measured here in bf16, 1.35× faster per decode matmul at batch 64 and 1.85× at batch 16, with
    bit-identical outputs. Elsewhere, or where oneDNN is missing, it is ``F.linear``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 low_rank: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``low_rank``: an unmerged adapter ``(a, b)`` added as ``x·aᵀ·bᵀ`` (see ``_low_rank``)."""
        self.bias = bias
        self.packed = None
        self.low_rank = low_rank
        if (weight.device.type == "cpu" and weight.dtype in (torch.float32, torch.bfloat16)
                and torch.backends.mkldnn.is_available() and _packing_works(weight.dtype)):
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 64)
        self.weight = None if self.packed is not None else weight  # the packed copy replaces it

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is not None:
            y = torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        else:
            y = F.linear(x, self.weight, self.bias)
        if self.low_rank is not None:
            a, b = self.low_rank
            y = y + F.linear(F.linear(x, a), b)
        return y


@dataclass
class LayerWeights:
    ln_in: torch.Tensor
    ln_post: torch.Tensor
    qkv: Dense
    o: Dense
    gate_up: Dense
    down: Dense


@dataclass
class DecoderWeights:
    """Everything one forward needs, for one set of adapter weights."""

    embed: torch.Tensor
    layers: list[LayerWeights]
    norm: torch.Tensor
    lm_head: Dense


def _dense(modules: Sequence[torch.nn.Module], adapter: str | None, bias: torch.Tensor | None = None) -> Dense:
    """One ``Dense`` for (fused) ``modules`` under ``adapter``: merged weights, plus the unmerged side path."""
    weight = torch.cat([_weight(m, adapter) for m in modules]) if len(modules) > 1 else _weight(modules[0], adapter)
    return Dense(weight, bias, _low_rank(modules, adapter))


def extract_weights(model: torch.nn.Module, adapter: str | None) -> DecoderWeights:
    """Fused weights of ``model`` under ``adapter`` (None: base weights, adapters off); the adapter merged or as
    a low-rank side path (see the module docstring)."""
    lm = inner_model(model)
    body = lm.model
    layers = []
    with torch.no_grad():
        for layer in body.layers:
            att, mlp = layer.self_attn, layer.mlp
            qkv_mods = (att.q_proj, att.k_proj, att.v_proj)
            layers.append(
                LayerWeights(
                    ln_in=layer.input_layernorm.weight,
                    ln_post=layer.post_attention_layernorm.weight,
                    qkv=_dense(qkv_mods, adapter, _cat_bias(qkv_mods)),
                    o=_dense([att.o_proj], adapter),
                    gate_up=_dense([mlp.gate_proj, mlp.up_proj], adapter),
                    down=_dense([mlp.down_proj], adapter),
                )
            )
        head = _dense([lm.lm_head], adapter)
    return DecoderWeights(embed=body.embed_tokens.weight, layers=layers, norm=body.norm.weight, lm_head=head)


def weights_version(model: torch.nn.Module, adapter: str | None) -> tuple:
    """Changes whenever a weight that ``extract_weights`` reads is modified in place (optimiser steps, loads).

    Uses the tensors' in-place version counters (what autograd itself uses to detect in-place edits), so a
    cached set of merged weights is rebuilt exactly when the adapter (or base) changed.
    """
    tensors = []
    for name, p in inner_model(model).named_parameters():
        if adapter is None and "lora_" in name:
            continue
        if adapter is not None and "lora_" in name and f".{adapter}." not in name:
            continue
        tensors.append(p)
    return (adapter, tuple(t._version for t in tensors), tuple(t.data_ptr() for t in tensors[:4]))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # As HF's LlamaRMSNorm: normalise in fp32, cast back, then scale.
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all ``prompts`` share, leaving every prompt at least one token of its own (the
    last prompt token's logits start the decoding)."""
    first = prompts[0]
    limit = min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


class FastDecoder:
    """Prefill + incremental decoding over a preallocated KV cache for one batch of prompts."""

    def __init__(self, model: torch.nn.Module, weights: DecoderWeights):
        lm = inner_model(model)
        cfg = lm.config
        self.rotary = lm.model.rotary_emb
        self.w = weights
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.dtype = weights.embed.dtype
        self.device = weights.embed.device

    def _rope(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.rotary(x, positions)
        return cos.unsqueeze(1), sin.unsqueeze(1)

    def _layer_qkv(self, lw: LayerWeights, h: torch.Tensor, cos, sin):
        b, s, _ = h.shape
        x = _rms_norm(h, lw.ln_in, self.eps)
        qkv = lw.qkv(x)
        hq, hk = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        q = qkv[..., :hq].view(b, s, self.n_heads, self.head_dim).transpose(1, 2)
        k = qkv[..., hq : hq + hk].view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        v = qkv[..., hq + hk :].view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        return q, k, v

    def _layer_out(self, lw: LayerWeights, h: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        b, s = h.shape[:2]
        h = h + lw.o(attn.reshape(b, s, self.n_heads * self.head_dim))
        x = _rms_norm(h, lw.ln_post, self.eps)
        gate, up = lw.gate_up(x).chunk(2, dim=-1)
        return h + lw.down(F.silu(gate) * up)

    def _logits(self, h_last: torch.Tensor) -> torch.Tensor:
        return self.w.lm_head(_rms_norm(h_last, self.w.norm, self.eps)).float()

    PREFILL_SCORE_BYTES = 256 * 2**20
    """Rows of a prefill run together while their attention scores (rows × heads × width² floats) fit this; a
    batch of long prompts is prefilled a few rows at a time (64 WildJailbreak prompts of ~1,000 tokens would
    otherwise hold 2 GB of scores per layer call)."""

    PREFILL_GROUP_ROWS = 16
    """Rows are prefilled in groups of at most this many, each padded only to its own longest prompt (rows come
    sorted by length): a group is still a matrix of hundreds of tokens, and the padding of a mixed batch is gone."""

    def prefill(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        capacity: int,
        prefix: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the prompts, allocate the cache for ``capacity`` slots; logits of each row's last position.

        ``input_ids`` are left-padded. ``prefix`` (1-D token ids): a start that every row shares, run once and
        placed in cache slots ``[0, len(prefix))`` of every row; ``input_ids`` then hold only what follows it, and
        ``positions`` count from the prefix's end. Attention does not depend on where a key sits in the cache,
        only on its rotary position and the mask, so the shared start needs no copy per row in the prefill."""
        b, s = input_ids.shape
        p = 0 if prefix is None else int(prefix.numel())
        # Keys are kept transposed, (rows, kv heads, head_dim, slots): a decode step's q·Kᵀ then reads the first
        # t slots as an ordinary strided matrix (SDPA on a slice of a preallocated cache runs at half the speed).
        # Zeros, not empty: slots left of a short row's prompt are never written but are read (masked), and a
        # masked NaN would still poison the weighted sum of V.
        self.kt = [torch.zeros((b, self.n_kv, self.head_dim, capacity), dtype=self.dtype, device=self.device)
                   for _ in self.w.layers]
        self.v = [torch.zeros((b, self.n_kv, capacity, self.head_dim), dtype=self.dtype, device=self.device)
                  for _ in self.w.layers]
        self.valid = torch.zeros((b, capacity), dtype=torch.bool, device=self.device)
        self.valid[:, :p] = True
        self.valid[:, p : p + s] = mask.bool()
        self.length = p + s
        if p:
            self._prefill_prefix(prefix)
        lengths = mask.sum(-1).tolist()
        logits = []
        r = 0
        while r < b:
            end = min(b, r + self.PREFILL_GROUP_ROWS)
            width = max(1, max(int(x) for x in lengths[r:end]))  # the group's columns: the last ``width``
            rows = max(1, int(self.PREFILL_SCORE_BYTES // (4 * self.n_heads * width * (p + width))))
            end = min(end, r + rows)
            logits.append(self._prefill_rows(slice(r, end), input_ids[:, s - width :], mask[:, s - width :],
                                             positions[:, s - width :], p, p + s - width))
            r = end
        return logits[0] if len(logits) == 1 else torch.cat(logits)

    def _prefill_prefix(self, prefix: torch.Tensor) -> None:
        """Run the shared prefix once (one row) and copy its keys and values into every row's first slots."""
        p = int(prefix.numel())
        h = F.embedding(prefix[None], self.w.embed)
        cos, sin = self._rope(h, torch.arange(p, device=self.device)[None])
        group = self.n_heads // self.n_kv
        for i, lw in enumerate(self.w.layers):
            q, k, v = self._layer_qkv(lw, h, cos, sin)
            self.kt[i][..., :p] = k.transpose(-1, -2)
            self.v[i][:, :, :p] = v
            if group > 1:
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = self._layer_out(lw, h, attn.transpose(1, 2))

    def _prefill_rows(
        self, rows: slice, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, p: int, at: int
    ) -> torch.Tensor:
        """Prefill ``rows`` whose tokens are ``input_ids[rows]`` (left-padded), written to cache slots from ``at``
        on; they attend to the shared prefix in slots ``[0, p)`` and causally to their own tokens (slots between
        the two stay zero and masked)."""
        s = input_ids.shape[1]
        causal = torch.ones((s, s), dtype=torch.bool, device=self.device).tril()
        # Padding queries attend to themselves so no row is fully masked (a NaN row would poison V sums).
        own = (causal[None] & mask[rows].bool()[:, None, :]) | torch.eye(s, dtype=torch.bool, device=self.device)[None]
        allowed = torch.cat([own.new_ones((own.shape[0], s, p)), own], dim=-1) if p else own
        allowed = allowed[:, None]
        h = F.embedding(input_ids[rows], self.w.embed)
        cos, sin = self._rope(h, positions[rows])
        group = self.n_heads // self.n_kv
        for i, lw in enumerate(self.w.layers):
            q, k, v = self._layer_qkv(lw, h, cos, sin)
            self.kt[i][rows, ..., at : at + s] = k.transpose(-1, -2)
            self.v[i][rows, :, at : at + s] = v
            if p:
                k = torch.cat([self.kt[i][rows, ..., :p].transpose(-1, -2), k], dim=2)
                v = torch.cat([self.v[i][rows, :, :p], v], dim=2)
            if group > 1:
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            h = self._layer_out(lw, h, attn.transpose(1, 2))
        return self._logits(h[:, -1])

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Append one token per row; logits of the next."""
        b = tokens.shape[0]
        t = self.length
        self.valid[:, t] = True
        self.length = t + 1
        h = F.embedding(tokens[:, None], self.w.embed)
        cos, sin = self._rope(h, positions[:, None])
        group = self.n_heads // self.n_kv
        # Attention written out as two batched products over the (rows × kv heads) key blocks, the mask and the
        # 1/√d scale folded into the first (``baddbmm``); softmax in fp32. SDPA on a slice of the preallocated
        # cache, or ``matmul`` on 4-D views, copies the slice every layer.
        bias = torch.zeros((b, 1, 1, t + 1), dtype=self.dtype, device=self.device)
        bias.masked_fill_(~self.valid[:, None, None, : t + 1], float("-inf"))
        bias = bias.expand(b, self.n_kv, group, t + 1).reshape(b * self.n_kv, group, t + 1)
        scale = self.head_dim**-0.5
        for i, lw in enumerate(self.w.layers):
            q, k, v = self._layer_qkv(lw, h, cos, sin)
            self.kt[i][..., t] = k[:, :, 0]
            self.v[i][:, :, t] = v[:, :, 0]
            # (b, heads, 1, d) -> (b·kv, group, d): each K/V head serves its group as a short query block.
            qg = q.reshape(b * self.n_kv, group, self.head_dim)
            kt = self.kt[i].view(b * self.n_kv, self.head_dim, -1)[..., : t + 1]
            scores = torch.baddbmm(bias, qg, kt, alpha=scale)
            probs = scores.softmax(-1, dtype=torch.float32).to(self.dtype)
            attn = torch.bmm(probs, self.v[i].view(b * self.n_kv, -1, self.head_dim)[:, : t + 1])
            h = self._layer_out(lw, h, attn.reshape(b, 1, self.n_heads, self.head_dim))
        return self._logits(h[:, -1])

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in ``rows`` (indices into the current batch)."""
        self.kt = [k.index_select(0, rows) for k in self.kt]
        self.v = [v.index_select(0, rows) for v in self.v]
        self.valid = self.valid.index_select(0, rows)


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

        tokens: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        reasons: list[FinishReason] = ["length"] * n
        rows = list(range(n))  # batch row -> original row
        alive = list(range(n))  # batch rows still generating
        matcher = _StopMatcher(self.tokenizer, sampling.stop)
        chosen_all = torch.zeros(n, dtype=torch.long, device=device)
        lp_temperature = logprob_temperature(sampling)
        for step in range(sampling.max_new_tokens):
            live = torch.tensor(alive, device=device)
            sub = logits if len(alive) == logits.shape[0] else logits.index_select(0, live)
            chosen = sample_next(sub, sampling, gen)
            lp = chosen_logprobs(sub, chosen, lp_temperature)
            still: list[int] = []
            for b, tok, val in zip(alive, chosen.tolist(), lp.tolist()):
                r = rows[b]
                tokens[r].append(tok)
                logprobs[r].append(val)
                if tok in self.eos_ids and not self.ignore_eos:
                    reasons[r] = "eos"
                elif matcher.hit(tokens[r]):
                    reasons[r] = "stop"
                else:
                    still.append(b)
            if not still or step == sampling.max_new_tokens - 1:
                break
            chosen_all = chosen_all.index_copy(0, live, chosen)
            dead = len(rows) - len(still)
            if dead and dead >= max(1, int(self.compact_fraction * len(rows))):
                keep = torch.tensor(still, device=device)
                dec.keep(keep)
                chosen_all, next_pos = chosen_all.index_select(0, keep), next_pos.index_select(0, keep)
                rows = [rows[b] for b in still]
                still = list(range(len(still)))
            alive = still
            logits = dec.step(chosen_all, next_pos)
            next_pos = next_pos + 1

        completions = []
        for r in range(n):
            text = self.tokenizer.decode(tokens[r], skip_special_tokens=True)
            if reasons[r] == "stop":
                text = matcher.cut(text)
            completions.append(Completion(text, list(prompt_ids[r]), tokens[r], logprobs[r], reasons[r],
                                          temperature=lp_temperature))
        return completions
