"""HFGenerator on a tiny random Llama with the bundled tokenizer: seeding, logprobs, stops, ordering."""

from __future__ import annotations

import copy

import pytest
import torch

from safeplay.generation.base import ChatPrompt, SamplingParams
from safeplay.generation.hf import HFGenerator
from safeplay.generation.sampling import sample_next
from safeplay.models import tiny_model
from safeplay.models.logprobs import token_logprobs


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=0)


def prompts(n: int = 5) -> list[ChatPrompt]:
    # Different lengths so micro-batches are padded and reordered.
    return [ChatPrompt([{"role": "user", "content": "Tell me about item " + "x " * (3 * i)}]) for i in range(n)]


def pad_left(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(s)
        mask[i, width - len(s) :] = 1
    return ids, mask


def test_same_seed_same_outputs_and_global_rng_untouched(tiny):
    model, tok = tiny
    gen = HFGenerator(model, tok, micro_batch_size=2)
    sp = SamplingParams(temperature=1.0, top_p=0.9, top_k=50, max_new_tokens=10)
    state = torch.get_rng_state()
    a = gen.generate(prompts(), sp, seed=7)
    assert torch.equal(state, torch.get_rng_state())
    b = gen.generate(prompts(), sp, seed=7)
    c = gen.generate(prompts(), sp, seed=8)
    assert [x.token_ids for x in a] == [x.token_ids for x in b]
    assert [x.logprobs for x in a] == [x.logprobs for x in b]
    assert [x.token_ids for x in a] != [x.token_ids for x in c]


def test_results_in_input_order_and_prompt_ids(tiny):
    model, tok = tiny
    gen = HFGenerator(model, tok, micro_batch_size=2)
    ps = prompts(4)
    outs = gen.generate(ps, SamplingParams(temperature=0, max_new_tokens=4))
    for p, o in zip(ps, outs):
        assert o.prompt_ids == tok(gen.render(p), add_special_tokens=False)["input_ids"]
    # Greedy output of a prompt does not depend on what it is batched with.
    alone = gen.generate([ps[2]], SamplingParams(temperature=0, max_new_tokens=4))[0]
    assert alone.token_ids == outs[2].token_ids


def test_render_uses_template_and_prefill(tiny):
    model, tok = tiny
    gen = HFGenerator(model, tok)
    text = gen.render(ChatPrompt([{"role": "user", "content": "hi"}], prefill="Let's think"))
    assert text.endswith("<|im_start|>assistant\nLet's think")
    assert "<|im_start|>user\nhi<|im_end|>" in text


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.0, 1.3])
def test_logprobs_match_teacher_forcing(tiny, temperature):
    model, tok = tiny
    gen = HFGenerator(model, tok, micro_batch_size=3)
    sp = SamplingParams(temperature=temperature, top_p=0.8, max_new_tokens=12)
    outs = gen.generate(prompts(), sp, seed=3)
    ids, mask = pad_left([o.prompt_ids + o.token_ids for o in outs], tok.pad_token_id)
    # Reported at the sampling temperature (1 for greedy), where a learner scores them too.
    t = temperature if temperature > 0 else 1.0
    assert all(o.temperature == t for o in outs)
    with torch.no_grad():
        tf = token_logprobs(model, ids, mask, temperature=torch.full((len(outs),), t))
        raw = token_logprobs(model, ids, mask)
    for i, o in enumerate(outs):
        got = torch.tensor(o.logprobs)
        want = tf[i, -len(o.token_ids) :]
        # Incremental decoding with a KV cache vs one full forward: equal up to fp32 rounding.
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
        if t != 1.0:  # and not the raw distribution's
            assert not torch.allclose(got, raw[i, -len(o.token_ids) :], atol=1e-3)


def test_token_logprobs_same_for_left_and_right_padding(tiny):
    model, tok = tiny
    seqs = [[1, 5, 9, 13, 17, 21], [1, 7, 8]]
    left_ids, left_mask = pad_left(seqs, tok.pad_token_id)
    right_ids = torch.full_like(left_ids, tok.pad_token_id)
    right_mask = torch.zeros_like(left_mask)
    for i, s in enumerate(seqs):
        right_ids[i, : len(s)] = torch.tensor(s)
        right_mask[i, : len(s)] = 1
    with torch.no_grad():
        left = token_logprobs(model, left_ids, left_mask)
        right = token_logprobs(model, right_ids, right_mask)
    assert torch.isfinite(left).all() and torch.isfinite(right).all()
    assert torch.allclose(left[1, -2:], right[1, :2], atol=1e-5)
    assert torch.allclose(left[0], right[0], atol=1e-5)
    assert (left[1, :-2] == 0).all()


def test_token_logprobs_carry_gradients(tiny):
    model, tok = tiny
    ids, mask = pad_left([[1, 5, 9, 13]], tok.pad_token_id)
    out = token_logprobs(model, ids, mask)
    assert out.requires_grad
    out.sum().backward()
    assert model.model.embed_tokens.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_token_logprobs_match_a_full_forward_with_a_lora_adapter(tiny):
    """The head-on-hidden-states path equals log_softmax over the model's own full logits, values and gradients."""
    from peft import LoraConfig, get_peft_model

    model, tok = tiny
    torch.manual_seed(1)
    peft = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "lm_head"]))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    ids, mask = pad_left([[1, 5, 9, 13, 17, 21], [1, 7, 8]], tok.pad_token_id)
    got = token_logprobs(peft, ids, mask, start=2)
    logits = peft(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    full = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    valid = (mask[:, 1:] * mask[:, :-1]).bool()
    valid[:, :2] = False
    assert torch.allclose(got[valid], full[valid], atol=1e-5)
    assert (got[~valid] == 0).all()
    lora = [p for n, p in peft.named_parameters() if "lora_A" in n and p.requires_grad]
    g_got = torch.autograd.grad(got[valid].sum(), lora, retain_graph=True)
    g_full = torch.autograd.grad(full[valid].sum(), lora, retain_graph=True)
    for a, b in zip(g_got, g_full):
        assert torch.allclose(a, b, atol=1e-5)
    only = valid.clone()
    only[0, 3] = False  # a hole inside a row: scored positions need not be contiguous
    picked = token_logprobs(peft, ids, mask, only=only)
    assert torch.allclose(picked[only], full[only], atol=1e-5) and (picked[~only] == 0).all()
    g_picked = torch.autograd.grad(picked.sum(), lora)
    g_want = torch.autograd.grad(full[only].sum(), lora)
    for a, b in zip(g_picked, g_want):
        assert torch.allclose(a, b, atol=1e-5)


def test_stop_string_truncates(tiny):
    model, tok = tiny
    gen = HFGenerator(model, tok)
    sp = SamplingParams(temperature=1.0, max_new_tokens=16)
    free = gen.generate(prompts(1), sp, seed=5)[0]
    assert free.finish_reason == "length" and len(free.token_ids) == 16
    # Stop on a piece of text this seed is known to produce, taken from the middle of the completion.
    stop = next(t for i in range(6, 14) if (t := tok.decode(free.token_ids[i : i + 2]).strip()))
    n = next(k for k in range(1, 17) if stop in tok.decode(free.token_ids[:k], skip_special_tokens=True))
    out = gen.generate(prompts(1), SamplingParams(temperature=1.0, max_new_tokens=16, stop=["@@never@@", stop]), seed=5)[0]
    assert out.finish_reason == "stop"
    assert out.token_ids == free.token_ids[:n]
    assert out.logprobs == free.logprobs[:n]
    assert out.text.endswith(stop) and out.text.count(stop) == 1
    assert n < 16


def test_eos_ends_generation(tiny):
    model, tok = tiny
    gen = HFGenerator(model, tok)
    # Make EOS overwhelmingly likely through the output bias: a model that always ends at once.
    with torch.no_grad():
        saved = model.lm_head.weight[tok.eos_token_id].clone()
        model.lm_head.weight[tok.eos_token_id] = model.model.norm.weight.sign() * 50
    try:
        out = gen.generate(prompts(2), SamplingParams(temperature=1.0, max_new_tokens=8), seed=0)
    finally:
        with torch.no_grad():
            model.lm_head.weight[tok.eos_token_id] = saved
    for o in out:
        assert o.finish_reason == "eos"
        assert o.token_ids[-1] == tok.eos_token_id
        assert "<|im_end|>" not in o.text


def test_sample_next_truncations():
    logits = torch.tensor([[0.0, 1.0, 5.0, 2.0]])
    gen = torch.Generator().manual_seed(0)
    assert sample_next(logits, SamplingParams(temperature=0), gen).item() == 2
    picks = {sample_next(logits, SamplingParams(top_k=1), gen).item() for _ in range(20)}
    assert picks == {2}
    picks = {sample_next(logits, SamplingParams(top_p=0.5), gen).item() for _ in range(20)}
    assert picks == {2}
    picks = {sample_next(logits, SamplingParams(top_k=2, temperature=5.0), gen).item() for _ in range(200)}
    assert picks == {2, 3}
