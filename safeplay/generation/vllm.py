"""vLLM rollouts behind the ``Generator`` interface, with the trained weights synced after each update (GPU only).

Install with ``pip install safeplay[vllm]`` on a CUDA machine. **Not verified**: vLLM does not install on the
machines this project is developed on (no CUDA); the logic below — prompt rendering, sampling parameters, output
conversion, adapter and weight sync — is tested against a stand-in object with vLLM's API shape, never against a
real engine. Treat a first GPU run as the test.

How it maps onto vLLM:

* prompts are rendered with the model's chat template exactly as ``HFGenerator`` renders them and passed as token
  ids, so the prompt ids of a ``Completion`` are the ones the learner scores;
* each prompt gets its own sampling seed derived from the call's seed and its index (vLLM seeds per request);
* stop strings stay in the text (``include_stop_str_in_output``), as in the HF generators; the reported
  log-probs are vLLM's sampled-token log-probs (raw model distribution by default in vLLM's V1 engine);
* **weight sync**: in ``lora`` mode each policy's adapter is written as a PEFT folder and served as a
  ``LoRARequest`` with a new id per weights version (vLLM's public API for swapping adapters); in ``full`` mode the
  weights are loaded into the engine's model with its ``load_weights`` (an internal path that moves between vLLM
  versions — the least certain part of this module).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

from safeplay.config import check
from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, FinishReason, SamplingParams

VLLM_DTYPES = ("auto", "bfloat16", "float16", "half", "float32", "float")
"""The dtypes a vLLM engine takes."""


@dataclass
class VLLMConfig:
    """Settings of the vLLM engine of a rollout worker."""

    gpu_memory_utilization: float = 0.45
    """Share of the GPU's memory vLLM may take (weights + KV cache); leave room for a learner on the same GPU."""
    tensor_parallel_size: int = 1
    """GPUs one engine spans (1 fits a 7–8B model in bf16 on an 80 GB GPU)."""
    max_model_len: int = 6144
    """Longest prompt + completion the engine accepts (Self-RedTeam: 2048-token prompts and answers)."""
    dtype: str = "bfloat16"
    """Engine dtype."""
    enforce_eager: bool = False
    """Skip CUDA graph capture (slower decoding, faster start, less memory)."""
    max_loras: int = 4
    """LoRA adapters resident at once (one per policy is enough)."""

    def __post_init__(self) -> None:
        check(0 < self.gpu_memory_utilization <= 1, "gpu_memory_utilization", "must be in (0, 1]")
        check(self.tensor_parallel_size >= 1, "tensor_parallel_size", "must be >= 1")
        check(self.max_model_len >= 16, "max_model_len", "must be >= 16")
        check(self.max_loras >= 1, "max_loras", "must be >= 1")
        check(self.dtype in VLLM_DTYPES, "dtype",
              f"{self.dtype!r} is not allowed; choose one of {', '.join(VLLM_DTYPES)}")


def import_vllm() -> Any:
    """The parts of vLLM this module uses, or a SafeplayError saying how to get them."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise SafeplayError("rollout.generator=vllm needs vLLM on a CUDA machine: pip install 'safeplay[vllm]'") from None
    return SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams, LoRARequest=LoRARequest)


def request_seed(seed: int | None, index: int) -> int | None:
    return None if seed is None else (int(seed) * 1_000_003 + index * 7919) % (2**31 - 1)


def to_vllm_sampling(api: Any, sampling: SamplingParams, seed: int | None) -> Any:
    return api.SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k if sampling.top_k > 0 else -1,  # -1 disables top-k in every vLLM release
        max_tokens=sampling.max_new_tokens,
        stop=list(sampling.stop) or None,
        include_stop_str_in_output=True,
        logprobs=0,  # the sampled token's log-prob only
        seed=seed,
    )


def to_completion(prompt_ids: list[int], out: Any) -> Completion:
    """A vLLM ``CompletionOutput`` as our ``Completion``."""
    token_ids = list(out.token_ids)
    logprobs: list[float] = []
    for tok, entry in zip(token_ids, out.logprobs or []):
        lp = entry[tok] if isinstance(entry, dict) else entry
        logprobs.append(float(getattr(lp, "logprob", lp)))
    reason: FinishReason
    if out.finish_reason == "length":
        reason = "length"
    elif isinstance(getattr(out, "stop_reason", None), str):
        reason = "stop"  # a stop string matched (None or a token id: the model ended)
    else:
        reason = "eos"
    # vLLM reports the raw distribution's log-probs (its default logprobs mode), i.e. temperature 1: a learner that
    # samples at another temperature recomputes them (``sample_from`` drops mismatched ones).
    return Completion(out.text, list(prompt_ids), token_ids, logprobs, reason, temperature=1.0)


class VLLMEngine:
    """One vLLM engine over a base model; generates with an optional LoRA adapter."""

    def __init__(self, model: str, tokenizer: Any, cfg: VLLMConfig, lora_rank: int | None = None,
                 api: Any = None, llm: Any = None):
        """``api``/``llm`` replace the vLLM module and engine (tests use stand-ins; None = the real vLLM)."""
        self.api = api or import_vllm()
        self.tokenizer = tokenizer
        if llm is None:
            if lora_rank is None:
                # full-weight sync reaches into the engine's model, which must then live in this process
                os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            kwargs: dict[str, Any] = dict(
                model=model, tokenizer=model, dtype=cfg.dtype, gpu_memory_utilization=cfg.gpu_memory_utilization,
                tensor_parallel_size=cfg.tensor_parallel_size, max_model_len=cfg.max_model_len,
                enforce_eager=cfg.enforce_eager,
            )
            if lora_rank is not None:
                kwargs.update(enable_lora=True, max_lora_rank=lora_rank, max_loras=cfg.max_loras)
            llm = self.api.LLM(**kwargs)
        self.llm = llm

    def encode(self, prompt: ChatPrompt) -> list[int]:
        from safeplay.generation.hf import render_prompt

        return self.tokenizer(render_prompt(self.tokenizer, prompt), add_special_tokens=False)["input_ids"]

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None,
                 lora: Any = None) -> list[Completion]:
        if not prompts:
            return []
        ids = [self.encode(p) for p in prompts]
        params = [to_vllm_sampling(self.api, sampling, request_seed(seed, i)) for i in range(len(ids))]
        requests = [{"prompt_token_ids": p} for p in ids]
        outputs = self.llm.generate(requests, params, lora_request=lora, use_tqdm=False)
        return [to_completion(p, o.outputs[0]) for p, o in zip(ids, outputs)]

    def load_weights(self, state_dict: dict[str, Any]) -> None:
        """Full-parameter sync: the learner's HF-named weights into the engine's model (vLLM maps the names)."""
        self._model().load_weights(weights=list(state_dict.items()))

    def _model(self) -> Any:
        """The engine's model module. Only reachable when vLLM runs the model in this process (hence
        ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, set before the engine starts in full mode); the attribute path has
        moved between vLLM releases, so both known ones are tried."""
        worker = getattr(getattr(self.llm.llm_engine, "model_executor", None), "driver_worker", None)
        for path in (("model_runner", "model"), ("worker", "model_runner", "model")):
            obj = worker
            for attr in path:
                obj = getattr(obj, attr, None)
            if obj is not None and hasattr(obj, "load_weights"):
                return obj
        raise SafeplayError("cannot reach the vLLM engine's model to load full weights into (this vLLM release "
                            "keeps it elsewhere); use policy.mode=lora, whose adapters sync through vLLM's public API")


class VLLMGenerator:
    """``Generator`` over a ``VLLMEngine``, bound to one policy's current adapter (or the engine's own weights)."""

    def __init__(self, engine: VLLMEngine, adapter: Any = lambda: None):
        self.engine = engine
        self.adapter = adapter
        self.tokenizer = engine.tokenizer

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None = None
                 ) -> list[Completion]:
        return self.engine.generate(prompts, sampling, seed, lora=self.adapter())


class VLLMRoles:
    """The game's roles on one vLLM engine: the role → policy map of the learner, each policy's weights synced from
    ``WeightSnapshot``s (``safeplay.distributed.weights``). Stands in for ``RolePolicies`` in rollout workers."""

    def __init__(self, engine: VLLMEngine, policy_of: dict[str, str], mode: str, base_model: str = ""):
        if mode != "lora" and len(set(policy_of.values())) > 1:
            raise SafeplayError(
                f"vLLM rollouts hold one set of full weights per engine, but roles map to "
                f"{len(set(policy_of.values()))} policies; use policy.mode=lora or one shared policy"
            )
        self.engine = engine
        self.policy_of = dict(policy_of)
        self.roles = tuple(policy_of)
        self.mode = mode
        self.base_model = base_model
        self.version = -1
        self._adapters: dict[str, Any] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="safeplay-vllm-lora-"))

    def policy_name(self, role: str) -> str:
        if role not in self.policy_of:
            raise SafeplayError(f"unknown role {role!r}; this game plays {', '.join(self.roles)}")
        return self.policy_of[role]

    def generator(self, role: str) -> VLLMGenerator:
        name = self.policy_name(role)
        return VLLMGenerator(self.engine, lambda: self._adapters.get(name))

    def generate(self, role: str, prompts: Sequence[ChatPrompt], sampling: SamplingParams,
                 seed: int | None = None) -> list[Completion]:
        return self.generator(role).generate(prompts, sampling, seed)

    def load_snapshot(self, snap: Any) -> None:
        """Sync the engine to a ``WeightSnapshot`` (called after each update of the learner)."""
        if snap.version == self.version:
            return
        if snap.mode == "lora":
            for role, sd in snap.weights.items():
                self._adapters[self.policy_name(role)] = self._write_adapter(role, sd, snap)
        else:
            for sd in snap.weights.values():
                self.engine.load_weights(sd)
        self.version = snap.version

    def _write_adapter(self, role: str, sd: dict[str, Any], snap: Any) -> Any:
        """A PEFT adapter folder for this version, and the ``LoRARequest`` that makes vLLM load it.

        A new ``lora_int_id`` per version: vLLM caches adapters by id, so reusing one would keep serving old weights.
        """
        from safetensors.torch import save_file

        name = self.policy_name(role)
        folder = self._dir / f"{name}-v{snap.version}"
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "adapter_model.safetensors"))
        lora = snap.lora or {}
        (folder / "adapter_config.json").write_text(json.dumps({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": self.base_model,
            "r": lora.get("r"), "lora_alpha": lora.get("alpha"), "target_modules": lora.get("target_modules"),
            "lora_dropout": 0.0, "bias": "none",
        }))
        names = sorted(set(self.policy_of.values()))
        lora_id = snap.version * len(names) + names.index(name) + 1  # unique per (version, policy), never 0
        old = self._adapters.get(name)
        if old is not None:  # no request uses the previous version any more
            shutil.rmtree(old.lora_path, ignore_errors=True)
        return self.engine.api.LoRARequest(f"{name}-v{snap.version}", lora_id, str(folder))
