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


def token_logprobs(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int = 0
) -> torch.Tensor:
    """(B, L-1): log p(input_ids[:, t+1] | input_ids[:, :t+1]); 0 where either token is padding.

    ``start``: positions before it are not needed (they score prompt tokens) and come back as 0 — the LM head,
    a fifth of the forward's FLOPs and most of its memory (B·L·vocab logits), then runs on the rest only.
    Gradients flow when autograd is enabled. Positions come from the attention mask.
    """
    attention_mask = attention_mask.to(input_ids.device)
    width = input_ids.shape[1]
    start = max(0, min(int(start), width - 1))
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
        logits_to_keep=width - start,
    )
    # The logits now cover positions start .. L-1; the last one predicts past the sequence.
    lp = gather_logprobs(out.logits[:, :-1], input_ids[:, start + 1 :])
    valid = attention_mask[:, start + 1 :].bool() & attention_mask[:, start:-1].bool()
    # Padding positions may hold junk (a fully masked query row); zero them so masked sums stay finite.
    lp = torch.where(valid, lp, torch.zeros_like(lp))
    return torch.nn.functional.pad(lp, (start, 0)) if start else lp
