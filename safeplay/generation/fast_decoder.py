"""The lean decoder's forward passes: prefill and one-token steps over a preallocated KV cache.

``FastDecoder`` runs the Llama layer maths on fused ``DecoderWeights`` (``generation.fast_weights``): RMSNorm in
fp32 as in HF, the model's own rotary embedding, SDPA in the prefill (a shared prompt start run once, the rest in
length groups) and the same softmax attention written out for a decode step, over a cache written in place and
compacted by ``keep``. ``generation.fast`` drives it and explains the choices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from safeplay.generation.fast_weights import DecoderWeights, LayerWeights
from safeplay.models.logprobs import inner_model


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # As HF's LlamaRMSNorm: normalise in fp32, cast back, then scale.
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


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
