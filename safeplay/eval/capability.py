"""Capability checks: GSM8K prompts and MMLU multiple choice scored by log-likelihood.

MMLU is scored zero-shot in the lm-evaluation-harness layout — plain text (no chat template)::

    The following are multiple choice questions (with answers) about <subject>.

    <question>
    A. <choice0>
    B. <choice1>
    C. <choice2>
    D. <choice3>
    Answer:

and the prediction is the letter continuation (" A" … " D") with the highest log-likelihood under the model.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from safeplay.data.benchmark_types import BenchmarkItem

ChoiceScorer = Callable[[Sequence[str], Sequence[Sequence[str]]], list[list[float]]]
"""``choice_logprobs(prompts, choices)``: for each prompt, the summed log-probability of each choice continuation."""

LETTERS = ("A", "B", "C", "D")
GSM8K_INSTRUCTION = "Solve the problem step by step. End with a final line of the form '#### <number>'."


def gsm8k_prompt(question: str) -> str:
    return f"{question}\n\n{GSM8K_INSTRUCTION}"


def mmlu_prompt(item: BenchmarkItem) -> str:
    subject = item.category.replace("_", " ")
    lines = [f"The following are multiple choice questions (with answers) about {subject}.", "", item.prompt]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, item.extra["choices"], strict=True)]
    lines.append("Answer:")
    return "\n".join(lines)


MMLU_CHOICES = [f" {letter}" for letter in LETTERS]


class HFChoiceScorer:
    """Log-likelihood of continuations under a Hugging Face causal LM (teacher forcing, no sampling).

    When every continuation is a single token (the MMLU letters), one forward pass per prompt reads all of them
    from the next-token distribution; otherwise each (prompt, continuation) pair is scored in padded batches.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 8, max_length: int = 2048) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length

    def _encode(self, text: str, special: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def __call__(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[list[float]]:
        rows = []
        for prompt, conts in zip(prompts, choices, strict=True):
            ctx = self._encode(prompt, special=True)[-self.max_length + 8:]
            rows.append((ctx, [self._encode(c, special=False) for c in conts]))
        out: list[list[float]] = []
        for i in range(0, len(rows), self.batch_size):
            out.extend(self._score_batch(rows[i : i + self.batch_size]))
        return out

    def _score_batch(self, rows: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        import torch

        # One sequence per (context, continuation); single-token continuations share the context's sequence.
        seqs: list[list[int]] = []
        spans: list[list[tuple[int, int, list[int]]]] = []  # per row: (seq index, start, continuation ids)
        for ctx, conts in rows:
            row_spans = []
            if all(len(c) == 1 for c in conts):
                seqs.append(ctx)
                row_spans = [(len(seqs) - 1, len(ctx), c) for c in conts]
            else:
                for c in conts:
                    seqs.append(ctx + c)
                    row_spans.append((len(seqs) - 1, len(ctx), c))
            spans.append(row_spans)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        device = next(self.model.parameters()).device
        with torch.no_grad():
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1).cpu()
        out = []
        for row_spans in spans:
            scores = []
            for seq, start, cont in row_spans:
                # token at position p is predicted by the logits at p - 1
                scores.append(float(sum(logprobs[seq, start - 1 + k, tok] for k, tok in enumerate(cont))))
            out.append(scores)
        return out


def scorer_from(generator: Any) -> ChoiceScorer | None:
    """An ``HFChoiceScorer`` for a generator that exposes its HF ``model`` and ``tokenizer``; else None."""
    model = getattr(generator, "model", None)
    tokenizer = getattr(generator, "tokenizer", None)
    if model is None or tokenizer is None or not hasattr(model, "parameters"):
        return None
    return HFChoiceScorer(model, tokenizer)
