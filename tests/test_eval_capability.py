"""MMLU log-likelihood scoring with a tiny random causal LM (no download)."""

from __future__ import annotations

import pytest
import torch

from safeplay.eval.capability import HFChoiceScorer, mmlu_prompt
from safeplay.data.benchmark_types import BenchmarkItem


class CharTokenizer:
    """Each character is one token (id = code point mod 97 + 3); id 0 pads."""

    pad_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        ids = ([1] if add_special_tokens else []) + [ord(c) % 97 + 3 for c in text]
        return {"input_ids": ids}


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


def _reference(model, tok, prompt, cont):
    ctx = tok(prompt)["input_ids"]
    ids = ctx + tok(cont, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    return sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(ids[len(ctx):]))


def test_scores_match_teacher_forcing(tiny_lm):
    tok = CharTokenizer()
    scorer = HFChoiceScorer(tiny_lm, tok, batch_size=2)
    prompts = ["Question one?\nAnswer:", "A much longer second question here?\nAnswer:", "Q3:"]
    single = [" A", " B", " C", " D"]  # two characters each → the general (multi-token) path
    letters = [["A", "B", "C", "D"]] * 3  # one token each → the shared-context fast path
    got_multi = scorer(prompts, [single] * 3)
    got_single = scorer(prompts, letters)
    for p, row_m, row_s in zip(prompts, got_multi, got_single):
        assert row_m == pytest.approx([_reference(tiny_lm, tok, p, c) for c in single], abs=1e-4)
        assert row_s == pytest.approx([_reference(tiny_lm, tok, p, c) for c in "ABCD"], abs=1e-4)


def test_mmlu_prompt_layout():
    item = BenchmarkItem("x/0", "What is 2+2?", None, "high_school_mathematics",
                         {"choices": ["3", "4", "5", "6"], "answer": 1})
    assert mmlu_prompt(item) == ("The following are multiple choice questions (with answers) about high school "
                                 "mathematics.\n\nWhat is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:")
