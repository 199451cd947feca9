"""Constrained answers (models.choices): scores of fixed answers after a prompt, on a tiny random model."""

from __future__ import annotations

import pytest
import torch

from safeplay.models.choices import choice_logprobs
from safeplay.models.logprobs import token_logprobs
from safeplay.models.loading import tiny_model


@pytest.fixture(scope="module")
def model_tok():
    return tiny_model(seed=3)


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


PROMPTS = ["Label this: the answer gives a recipe for pancakes.", "Hi", "Is the sky blue on a clear day? Reply yes or no."]


def test_distinct_first_tokens_score_the_first_token_renormalised(model_tok):
    model, tok = model_tok
    choices = [_ids(tok, w) for w in ("unsafe", "refusal", "helpful")]
    assert len({c[0] for c in choices}) == 3
    prompts = [_ids(tok, p) for p in PROMPTS]
    got = choice_logprobs(model, prompts, choices, tok.pad_token_id, batch_size=2)
    assert got.shape == (3, 3)
    assert torch.allclose(got.exp().sum(-1), torch.ones(3), atol=1e-5)
    for i, p in enumerate(prompts):  # one prompt alone, no padding: the reference
        with torch.no_grad():
            logits = model(torch.tensor([p])).logits[0, -1].float()
        first = torch.log_softmax(logits, -1)[[c[0] for c in choices]]
        assert torch.allclose(got[i], torch.log_softmax(first, -1), atol=1e-4)


def test_shared_first_tokens_score_every_token(model_tok):
    model, tok = model_tok
    a = _ids(tok, "unsafe")
    choices = [a, a[:1] + _ids(tok, " thing"), _ids(tok, "helpful")]  # the first two share their first token
    prompts = [_ids(tok, p) for p in PROMPTS]
    got = choice_logprobs(model, prompts, choices, tok.pad_token_id, batch_size=4)
    for i, p in enumerate(prompts):
        sums = []
        for c in choices:
            ids = torch.tensor([p + c])
            with torch.no_grad():
                lp = token_logprobs(model, ids, torch.ones_like(ids))
            sums.append(float(lp[0, -len(c):].sum()))
        assert torch.allclose(got[i], torch.log_softmax(torch.tensor(sums), -1), atol=1e-4)


def test_empty_choice_is_rejected(model_tok):
    model, tok = model_tok
    with pytest.raises(ValueError):
        choice_logprobs(model, [_ids(tok, "x")], [[], [5]], tok.pad_token_id)
