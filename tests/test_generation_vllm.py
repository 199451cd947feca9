"""The vLLM generator's logic against a stand-in with vLLM's API shape (vLLM itself is not installed in tests):
prompt ids, sampling parameters, output conversion, LoRA and full-weight sync after each update."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, SamplingParams
from safeplay.generation.hf import render_prompt
from safeplay.generation.vllm import VLLMConfig, VLLMEngine, VLLMRoles, import_vllm, to_vllm_sampling
from safeplay.models.bundled import BUNDLED
from safeplay.models.loading import load_tokenizer


class FakeSamplingParams:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class FakeLoRARequest(SimpleNamespace):
    def __init__(self, lora_name, lora_int_id, lora_path):
        super().__init__(lora_name=lora_name, lora_int_id=lora_int_id, lora_path=lora_path)


class FakeLLM:
    """Records what it is asked; 'generates' token ids derived from the prompt length and the request seed."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple] = []
        self.loaded: list[dict] = []
        model = SimpleNamespace(load_weights=lambda weights: self.loaded.append(dict(weights)))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(
            driver_worker=SimpleNamespace(model_runner=SimpleNamespace(model=model))))

    def generate(self, requests, params, lora_request=None, use_tqdm=True):
        self.calls.append((requests, params, lora_request))
        outs = []
        for i, (req, p) in enumerate(zip(requests, params)):
            ids = [len(req["prompt_token_ids"]) % 50, p.seed % 50, 2]
            logprobs = [{t: SimpleNamespace(logprob=-0.5 * (k + 1))} for k, t in enumerate(ids)]
            kinds = [("stop", None), ("length", None), ("stop", "</answer>")]
            reason, stop_reason = kinds[i % 3]
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(text=f"out{i}", token_ids=ids, logprobs=logprobs,
                                                                 finish_reason=reason, stop_reason=stop_reason)]))
        return outs


API = SimpleNamespace(LLM=FakeLLM, SamplingParams=FakeSamplingParams, LoRARequest=FakeLoRARequest)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(BUNDLED)


def prompts():
    return [ChatPrompt([{"role": "user", "content": "hi " * (i + 1)}], prefill="<think>") for i in range(3)]


def test_missing_vllm_is_a_clear_error():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(SafeplayError, match=r"needs vLLM on a CUDA machine: pip install 'safeplay\[vllm\]'"):
            import_vllm()
    else:
        pytest.skip("vLLM is installed here")


def test_sampling_params_map_onto_vllm():
    p = to_vllm_sampling(API, SamplingParams(temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=12,
                                             stop=["</answer>"]), seed=5)
    assert (p.temperature, p.top_p, p.top_k, p.max_tokens, p.seed) == (0.7, 0.9, -1, 12, 5)
    assert p.stop == ["</answer>"] and p.include_stop_str_in_output and p.logprobs == 0


def test_engine_prompt_ids_outputs_and_per_request_seeds(tok):
    engine = VLLMEngine("some/model", tok, VLLMConfig(), lora_rank=8, api=API)
    assert engine.llm.kwargs["enable_lora"] and engine.llm.kwargs["max_lora_rank"] == 8
    sp = SamplingParams(max_new_tokens=4)
    out = engine.generate(prompts(), sp, seed=11)
    for p, c in zip(prompts(), out):  # the ids the learner scores: chat template + prefill, as HFGenerator renders
        assert c.prompt_ids == tok(render_prompt(tok, p), add_special_tokens=False)["input_ids"]
    assert [c.finish_reason for c in out] == ["eos", "length", "stop"]
    assert out[0].logprobs == [-0.5, -1.0, -1.5] and out[1].text == "out1"
    seeds = [p.seed for p in engine.llm.calls[0][1]]
    assert len(set(seeds)) == 3  # each request its own seed...
    engine.generate(prompts(), sp, seed=11)
    assert [p.seed for p in engine.llm.calls[1][1]] == seeds  # ...fixed by the call's seed
    assert engine.generate([], sp, seed=1) == []


class Snap(SimpleNamespace):
    pass


def lora_snapshot(version, value):
    sd = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.full((2, 4), value)}
    return Snap(version=version, mode="lora", weights={"attacker": sd},
                policy_of={"attacker": "player", "defender": "player"},
                lora={"r": 2, "alpha": 4, "target_modules": ["q_proj"]})


def test_lora_sync_writes_a_peft_adapter_with_a_new_id_per_version(tok):
    from safetensors.torch import load_file

    engine = VLLMEngine("m", tok, VLLMConfig(), lora_rank=2, api=API)
    roles = VLLMRoles(engine, {"attacker": "player", "defender": "player"}, "lora", base_model="m")
    roles.generate("defender", prompts()[:1], SamplingParams(max_new_tokens=2), seed=1)
    assert engine.llm.calls[-1][2] is None  # no snapshot yet: base weights
    roles.load_snapshot(lora_snapshot(1, 1.0))
    roles.generate("defender", prompts()[:1], SamplingParams(max_new_tokens=2), seed=1)
    first = engine.llm.calls[-1][2]
    folder = Path(first.lora_path)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert (cfg["peft_type"], cfg["r"], cfg["lora_alpha"], cfg["target_modules"]) == ("LORA", 2, 4, ["q_proj"])
    assert torch.equal(load_file(str(folder / "adapter_model.safetensors"))[
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"], torch.full((2, 4), 1.0))
    roles.load_snapshot(lora_snapshot(1, 9.0))  # same version: nothing to do
    roles.load_snapshot(lora_snapshot(2, 2.0))
    roles.generate("attacker", prompts()[:1], SamplingParams(max_new_tokens=2), seed=1)
    second = engine.llm.calls[-1][2]
    assert second.lora_int_id != first.lora_int_id and second.lora_int_id > 0  # vLLM caches adapters by id
    assert not folder.exists()  # the old version's files are gone


def test_full_sync_loads_weights_into_the_engine_model(tok):
    engine = VLLMEngine("m", tok, VLLMConfig(), api=API)
    roles = VLLMRoles(engine, {"attacker": "player", "defender": "player"}, "full")
    sd = {"model.embed_tokens.weight": torch.ones(3, 2)}
    roles.load_snapshot(Snap(version=1, mode="full", weights={"attacker": sd}, policy_of={}, lora=None))
    assert list(engine.llm.loaded[0]) == ["model.embed_tokens.weight"]
    with pytest.raises(SafeplayError, match="use policy.mode=lora or one shared policy"):
        VLLMRoles(engine, {"attacker": "attacker", "defender": "defender"}, "full")


def test_local_executor_syncs_the_vllm_roles_after_each_update(tok):
    from safeplay.distributed.local import LocalExecutor
    from safeplay.models.loading import tiny_model
    from safeplay.models.policy_config import PolicyConfig
    from safeplay.models.roles import RolePolicies

    model, _ = tiny_model(seed=0)
    cfg = PolicyConfig(share={"attacker": "player", "defender": "player"}, lora_r=2, target_modules=["q_proj"])
    policies = RolePolicies(model, tok, ["attacker", "defender"], cfg)
    roles = VLLMRoles(VLLMEngine("m", tok, VLLMConfig(), lora_rank=2, api=API),
                      {"attacker": "player", "defender": "player"}, "lora")
    ex = LocalExecutor(policies, None, roles=roles)
    ex.publish(policies)
    ex.publish(policies)
    assert roles.version == 2
    out = ex.generate("defender", [prompts()[:2]], SamplingParams(max_new_tokens=2), [3])
    assert len(out[0]) == 2 and roles.engine.llm.calls[-1][2].lora_name == "player-v2"


def test_vllm_generator_without_vllm_installed_fails_clearly_at_startup():
    from safeplay.distributed.launch import make_executor
    from safeplay.engine.setup import resolve_config

    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    cfg = resolve_config("self-redteam", overrides=["rollout.generator=vllm"])
    with pytest.raises(SafeplayError, match="needs vLLM"):
        make_executor(cfg, SimpleNamespace(policies=None, judge=None), "local")
