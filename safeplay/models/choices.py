"""Constrained answers: the log-probability of each of a few fixed answers (label words, yes/no) to a prompt.

A small model asked to "reply with exactly one word" often writes anything but that word (the 135M evaluator's
free-form labels were unreadable on 96% of held-out items). Scoring the allowed answers instead of sampling
text always yields one of them.

When the answers' first tokens differ (``unsafe`` / ``refusal`` / ``helpful`` under the bundled tokenizer),
an answer's score is the log-probability of its **first token** after the prompt, renormalised over the
answers. That is exactly constrained decoding: once the first token is chosen, the rest of the word is the
only allowed continuation, so it carries no choice. One forward pass per prompt, its last position only.
When first tokens collide, each answer's score is the summed log-probability of all its tokens (one
teacher-forced pass per prompt × answer).
"""

from __future__ import annotations

from typing import Sequence

import torch

from safeplay.models.logprobs import position_ids_from_mask, token_logprobs


def _left_padded(rows: Sequence[Sequence[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(list(r), dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def choice_logprobs(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    choices: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 8,
) -> torch.Tensor:
    """(N, K) log-probabilities of the K ``choices`` (token ids) after each of the N prompts, normalised over
    the choices (each row sums to 1 in probability)."""
    if not choices or any(not c for c in choices):
        raise ValueError("choices must be non-empty token sequences")
    device = next(model.parameters()).device
    firsts = [c[0] for c in choices]
    rows: list[torch.Tensor] = []
    if len(set(firsts)) == len(firsts):
        first = torch.tensor(firsts, device=device)
        for s in range(0, len(prompt_ids), batch_size):
            ids, mask = _left_padded(prompt_ids[s : s + batch_size], pad_id, device)
            out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                        use_cache=False, logits_to_keep=1)
            rows.append(torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, first])
    else:
        flat = [list(p) + list(c) for p in prompt_ids for c in choices]
        lens = [len(c) for _ in prompt_ids for c in choices]
        scores = []
        for s in range(0, len(flat), batch_size):
            ids, mask = _left_padded(flat[s : s + batch_size], pad_id, device)
            lp = token_logprobs(model, ids, mask)
            scores += [float(lp[i, -n:].sum()) for i, n in enumerate(lens[s : s + batch_size])]
        rows.append(torch.tensor(scores, device=device).view(len(prompt_ids), len(choices)))
    if not rows:
        return torch.zeros((0, len(choices)))
    return torch.log_softmax(torch.cat(rows).cpu(), dim=-1)
