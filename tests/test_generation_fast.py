"""The lean decoder (``FastGenerator``) against the plain HF path on tiny random models.

Tolerance: on fp32 tiny models both paths run the same maths in a different order (fused projections, merged
LoRA weights, a shared prompt start run once), so the chosen tokens must be identical and the reported log-probs
agree within 1e-4. Sampled comparisons keep a top-k cut: a random tiny model's next-token distribution is nearly
uniform over 49k tokens, where rounding noise of 1e-7 moves an inverse-CDF draw to the neighbouring token.
"""

from __future__ import annotations

import pytest
import torch

from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, SamplingParams
from safeplay.generation.factory import make_generator
from safeplay.generation.fast import FastGenerator, supports
from safeplay.generation.hf import HFGenerator
from safeplay.models import tiny_model
from safeplay.models.logprobs import token_logprobs

TOL = 1e-4
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def prompts(n: int = 6) -> list[ChatPrompt]:
    return [ChatPrompt([{"role": "user", "content": "Tell me about item " + "x " * (3 * i)}]) for i in range(n)]


def lora_model(seed: int = 0, adapters=("a", "b")):
    from peft import LoraConfig, get_peft_model

    model, tok = tiny_model(seed=seed)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS)
    pm = get_peft_model(model, cfg, adapter_name=adapters[0])
    for name in adapters[1:]:
        pm.add_adapter(name, cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:  # peft starts B at zero; make every adapter change the outputs
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return pm, tok


def assert_same(a, b):
    assert [x.token_ids for x in a] == [x.token_ids for x in b]
    assert [x.finish_reason for x in a] == [x.finish_reason for x in b]
    assert [x.text for x in a] == [x.text for x in b]
    worst = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x.logprobs, y.logprobs))
    assert worst < TOL


@pytest.mark.parametrize("sampling", [
    SamplingParams(temperature=0, max_new_tokens=12),
    SamplingParams(temperature=1.0, top_p=0.9, top_k=40, max_new_tokens=12),
])
@pytest.mark.slow
def test_matches_hf_on_the_base_model(sampling):
    model, tok = tiny_model(seed=0)
    a = HFGenerator(model, tok, micro_batch_size=4).generate(prompts(), sampling, seed=5)
    b = FastGenerator(model, tok, micro_batch_size=4).generate(prompts(), sampling, seed=5)
    assert_same(a, b)


@pytest.mark.slow
def test_matches_hf_under_each_adapter_and_with_adapters_off():
    pm, tok = lora_model()
    hf = HFGenerator(pm, tok, micro_batch_size=3)
    current = {"name": "a"}
    fast = FastGenerator(pm, tok, micro_batch_size=3, adapter=lambda: current["name"])
    sp = SamplingParams(temperature=1.0, top_k=50, max_new_tokens=10)
    outs = {}
    for name in ("a", "b"):
        pm.set_adapter(name)
        current["name"] = name
        outs[name] = fast.generate(prompts(), sp, seed=1)
        assert_same(hf.generate(prompts(), sp, seed=1), outs[name])
    assert [o.token_ids for o in outs["a"]] != [o.token_ids for o in outs["b"]]
    current["name"] = None
    with pm.disable_adapter():
        assert_same(hf.generate(prompts(), sp, seed=1), fast.generate(prompts(), sp, seed=1))


def test_merged_weights_follow_in_place_updates():
    pm, tok = lora_model(adapters=("a",))
    hf = HFGenerator(pm, tok)
    fast = FastGenerator(pm, tok, adapter=lambda: "a")
    sp = SamplingParams(temperature=0, max_new_tokens=8)
    before = fast.generate(prompts(3), sp)
    opt = torch.optim.SGD([p for n, p in pm.named_parameters() if "lora_" in n], lr=5.0)
    for n, p in pm.named_parameters():
        if "lora_" in n:
            p.grad = torch.randn_like(p)
    opt.step()  # an in-place update, exactly as training does it
    after = fast.generate(prompts(3), sp)
    assert [o.token_ids for o in after] != [o.token_ids for o in before]
    assert_same(hf.generate(prompts(3), sp), after)


def test_rows_that_stop_early_are_compacted_without_changing_results():
    model, tok = tiny_model(seed=0)
    sp = SamplingParams(temperature=0, max_new_tokens=12)
    probe = HFGenerator(model, tok, micro_batch_size=8).generate(prompts(8), sp)
    # Make the 3rd greedy token of two rows an end-of-sequence token: those rows stop at different steps.
    stops = {probe[0].token_ids[2], probe[5].token_ids[4]}
    hf = HFGenerator(model, tok, micro_batch_size=8)
    fast = FastGenerator(model, tok, micro_batch_size=8, compact_fraction=0.0)
    for g in (hf, fast):
        g.eos_ids = g.eos_ids | stops
    a, b = hf.generate(prompts(8), sp), fast.generate(prompts(8), sp)
    assert sum(o.finish_reason == "eos" for o in a) >= 2
    assert_same(a, b)


def test_prefill_of_long_prompts_a_few_rows_at_a_time_changes_nothing(monkeypatch):
    from safeplay.generation.fast_decoder import FastDecoder

    model, tok = tiny_model(seed=0)
    sp = SamplingParams(temperature=1.0, top_k=50, max_new_tokens=8)
    whole = FastGenerator(model, tok, micro_batch_size=8).generate(prompts(8), sp, seed=3)
    monkeypatch.setattr(FastDecoder, "PREFILL_SCORE_BYTES", 1)  # one row per prefill chunk
    rows = FastGenerator(model, tok, micro_batch_size=8).generate(prompts(8), sp, seed=3)
    assert_same(whole, rows)


def test_shared_prefix_duplicates_and_length_groups_match_hf(monkeypatch):
    """The prompts share the chat template's system-prompt start (prefilled once), two are exact repeats (a GRPO
    group: prefilled once, then copied), and rows are prefilled in groups of 2 padded to their own length."""
    from safeplay.generation.fast import shared_prefix_length
    from safeplay.generation.fast_decoder import FastDecoder

    model, tok = tiny_model(seed=0)
    batch = prompts(5) + [prompts(5)[3], prompts(5)[1]]
    hf_gen, fast_gen = HFGenerator(model, tok, micro_batch_size=8), FastGenerator(model, tok, micro_batch_size=8)
    assert shared_prefix_length([fast_gen.encode(q) for q in batch]) >= FastGenerator.MIN_SHARED_PREFIX
    monkeypatch.setattr(FastDecoder, "PREFILL_GROUP_ROWS", 2)
    for sp in (SamplingParams(temperature=0, max_new_tokens=10), SamplingParams(temperature=1.0, top_k=50, max_new_tokens=10)):
        assert_same(hf_gen.generate(batch, sp, seed=4), fast_gen.generate(batch, sp, seed=4))
    monkeypatch.setattr(FastGenerator, "MIN_SHARED_PREFIX", 10_000)  # the same without the shared prefix
    sp = SamplingParams(temperature=1.0, top_k=50, max_new_tokens=10)
    assert_same(hf_gen.generate(batch, sp, seed=4), fast_gen.generate(batch, sp, seed=4))


def test_shared_prefix_length_leaves_each_prompt_a_token():
    from safeplay.generation.fast import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0


def test_generation_logprobs_match_teacher_forcing():
    pm, tok = lora_model(adapters=("a",))
    fast = FastGenerator(pm, tok, micro_batch_size=4, adapter=lambda: "a")
    outs = fast.generate(prompts(4), SamplingParams(temperature=1.0, max_new_tokens=10), seed=3)
    for o in outs:
        ids = torch.tensor([o.prompt_ids + o.token_ids])
        with torch.no_grad():
            lp = token_logprobs(pm, ids, torch.ones_like(ids))[0, len(o.prompt_ids) - 1 :]
        assert torch.allclose(lp, torch.tensor(o.logprobs), atol=TOL)


def test_qwen2_layout_with_qkv_bias_matches_hf():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    _, tok = tiny_model()
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=True,
                      use_sliding_window=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.bias.normal_(0, 0.5)
    assert supports(model)
    sp = SamplingParams(temperature=0, max_new_tokens=8)
    assert_same(HFGenerator(model, tok).generate(prompts(4), sp), FastGenerator(model, tok).generate(prompts(4), sp))


def test_backend_choice():
    model, tok = tiny_model()
    assert type(make_generator(model, tok)) is FastGenerator
    assert type(make_generator(model, tok, backend="hf")) is HFGenerator
    with pytest.raises(SafeplayError, match="choose one of"):
        make_generator(model, tok, backend="turbo")

    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(tok)))
    assert type(make_generator(gpt2, tok)) is HFGenerator
    with pytest.raises(SafeplayError, match="does not support"):
        make_generator(gpt2, tok, backend="fast")


def _reference_distribution(logits: torch.Tensor, sampling: SamplingParams) -> torch.Tensor:
    """The textbook warpers: temperature, top-k mask, then a full sort for top-p."""
    x = logits / sampling.temperature
    if 0 < sampling.top_k < x.shape[-1]:
        kth = torch.topk(x, sampling.top_k).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    sorted_x, order = torch.sort(x, descending=True)
    probs = sorted_x.softmax(-1)
    sorted_x = sorted_x.masked_fill(probs.cumsum(-1) - probs > sampling.top_p, float("-inf"))
    return torch.full_like(x, float("-inf")).scatter(-1, order, sorted_x).softmax(-1)


@pytest.mark.parametrize("sampling", [
    SamplingParams(temperature=1.0),
    SamplingParams(temperature=0.7, top_p=0.9),
    SamplingParams(temperature=1.0, top_p=0.95, top_k=150),
    SamplingParams(temperature=1.3, top_k=20),
])
def test_sampler_draws_from_the_truncated_distribution(sampling):
    from safeplay.generation.sampling import sample_next

    gen = torch.Generator().manual_seed(0)
    # A flat row (its nucleus needs more than the sampler's first batch of candidates) and a peaked one.
    logits = torch.stack([torch.randn(120, generator=gen) * 0.3, torch.randn(120, generator=gen) * 4])
    want = _reference_distribution(logits, sampling)
    n = 20000
    draws = sample_next(logits.repeat_interleave(n, dim=0), sampling, gen).view(2, n)
    for row in range(2):
        freq = torch.bincount(draws[row], minlength=120).float() / n
        assert bool((freq[want[row] == 0] == 0).all()), "a token outside the truncated support was drawn"
        # Total variation distance; sampling noise alone is about 0.03 for the flat row at this n.
        assert 0.5 * (freq - want[row]).abs().sum() < 0.05


@pytest.mark.slow
def test_full_vocabulary_draw_by_blocks_follows_the_distribution():
    """The two-level (block, then position) inverse-CDF lookup used for whole vocabularies."""
    from safeplay.generation.sampling import CDF_BLOCK, sample_next

    gen = torch.Generator().manual_seed(0)
    vocab = 4 * CDF_BLOCK
    logits = torch.randn(1, vocab, generator=gen) * 3
    want = logits.softmax(-1)[0]
    n = 200_000
    draws = sample_next(logits.expand(n, -1), SamplingParams(temperature=1.0), gen)
    freq = torch.bincount(draws, minlength=vocab).float() / n
    assert draws.max() < vocab
    # Sampling noise alone gives a total variation of about 0.01 here.
    assert 0.5 * (freq - want).abs().sum() < 0.025


def test_bf16_rollouts_keep_a_small_adapter_instead_of_rounding_it_away():
    """In bf16 a merged weight keeps 8 significant bits, so a small adapter delta merged into it mostly vanishes and
    rollouts would come from another policy than the learner's. The decoder keeps such an adapter as a low-rank
    side path: its projections follow the learner's (peft's) outputs, not the base's."""
    import safeplay.generation.fast_weights as fast_weights
    from peft import LoraConfig, get_peft_model

    model, tok = tiny_model(seed=0)
    pm = get_peft_model(model.to(torch.bfloat16), LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS),
                        adapter_name="a")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 1e-4)
    layer = pm.base_model.model.model.layers[0]
    q = layer.self_attn.q_proj
    merged = (q.base_layer.weight.float() + q.get_delta_weight("a").float()).to(torch.bfloat16)
    assert (merged == q.base_layer.weight).float().mean() > 0.5  # merging would drop most of the adapter

    x = torch.randn(8, q.in_features, generator=gen).to(torch.bfloat16)
    mods = [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj]
    with torch.no_grad():
        learner = torch.cat([m(x) for m in mods], -1).float()
        base = torch.cat([m.base_layer(x) for m in mods], -1).float()
        rollout = fast_weights.extract_weights(pm, "a").layers[0].qkv(x).float()
    adapter_effect = (learner - base).abs().mean()
    assert (rollout - learner).abs().mean() < 0.01 * adapter_effect
    # fp32 weights are merged (exact there, and faster).
    model32, _ = tiny_model(seed=0)
    pm32 = get_peft_model(model32, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS), adapter_name="a")
    assert fast_weights.extract_weights(pm32, "a").layers[0].qkv.low_rank is None
