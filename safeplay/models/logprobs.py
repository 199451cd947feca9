"""Teacher-forced per-token log-probabilities of a causal LM, for any padding side."""

from __future__ import annotations

import torch


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, … counted over real tokens only, so left- and right-padded rows see the same positions."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def gather_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[targets] in fp32, without materialising the full log-softmax tensor."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


LM_HEAD_ONLY = ("llama", "qwen2", "mistral")
"""Model types whose logits are exactly ``lm_head(last hidden state)`` (no soft-capping or logit scale), so the
head can be applied here to a contiguous 2-D slice of hidden states."""


def inner_model(model: torch.nn.Module) -> torch.nn.Module:
    """The ``*ForCausalLM`` module under any peft wrappers (the adapters live in its modules)."""
    base = getattr(model, "get_base_model", None)
    return base() if callable(base) else model


def _body_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    lm = inner_model(model)
    if getattr(getattr(lm, "config", None), "model_type", None) not in LM_HEAD_ONLY:
        return None
    body, head = getattr(lm, "model", None), getattr(lm, "lm_head", None)
    return (body, head) if body is not None and head is not None else None


def token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    start: int = 0,
    only: torch.Tensor | None = None,
    temperature: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, L-1): log p(input_ids[:, t+1] | input_ids[:, :t+1]); 0 where either token is padding.

    ``temperature``: (B,) per-row softmax temperatures — the log-probs of ``softmax(logits / T)``, the distribution
    a row was sampled from (None: 1 everywhere). A learner must score its samples at the temperature they were
    drawn at, or the policy gradient and the KL term belong to another distribution than the one that played.

    ``start``: positions before it are not needed (they score prompt tokens) and come back as 0 — the LM head,
    a fifth of the forward's FLOPs and most of its memory (B·L·vocab logits), then runs on the rest only.
    ``only``: a (B, L-1) mask of the positions wanted (e.g. a batch's response mask); the rest come back as 0 and,
    for Llama-family models, the head runs on the wanted positions alone — in a batch of prompts of different
    lengths most positions after ``start`` still score prompt tokens or padding.
    Gradients flow when autograd is enabled. Positions come from the attention mask.

    For Llama-family models the head runs on a contiguous (positions, hidden) matrix: through the model's own
    ``logits_to_keep`` slice, a strided 3-D input, ``matmul`` broadcasts the (vocab × hidden) head weight into a
    batched product and copies it once per row — on a CPU, a fifth of an update's time.
    """
    attention_mask = attention_mask.to(input_ids.device)
    width = input_ids.shape[1]
    start = max(0, min(int(start), width - 1))
    valid = attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()
    if only is not None:
        valid = valid & only.to(valid.device).bool()
    positions = position_ids_from_mask(attention_mask)
    parts = _body_and_head(model)
    if parts is not None:
        body, head = parts
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False)
        h = hidden.last_hidden_state[:, :-1]
        if only is not None:
            where = valid.nonzero(as_tuple=True)
            logits = head(h[where])
            if temperature is not None:
                logits = logits.float() / temperature.to(logits.device)[where[0]].unsqueeze(-1)
            picked = gather_logprobs(logits, input_ids[:, 1:][where])
            return picked.new_zeros(valid.shape).index_put(where, picked)
        h = h[:, start:]
        logits = head(h.reshape(-1, h.shape[-1])).view(h.shape[0], h.shape[1], -1)
    else:
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False,
                    logits_to_keep=width - start)
        logits = out.logits[:, :-1]  # covers positions start .. L-2; the last one predicted past the sequence
    if temperature is not None:
        logits = logits.float() / temperature.to(logits.device)[:, None, None]
    lp = gather_logprobs(logits, input_ids[:, start + 1 :])
    # Padding positions may hold junk (a fully masked query row); zero them so masked sums stay finite.
    lp = torch.where(valid[:, start:], lp, torch.zeros_like(lp))
    return torch.nn.functional.pad(lp, (start, 0)) if start else lp
