"""Model loading: dtype/device choice, tiny models, the bundled model's cache, and clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from safeplay.config import ConfigError
from safeplay.errors import SafeplayError
from safeplay.models import ModelConfig, load_model, load_tokenizer, resolve_device, resolve_dtype, tiny_model
from safeplay.models import bundled, loading
from safeplay.models.cache import read_manifest


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("SAFEPLAY_CACHE", str(root))
    return root


def test_resolve_dtype_follows_cpu_flags(monkeypatch, caplog):
    cpu = torch.device("cpu")
    monkeypatch.setattr(loading, "cpu_bf16_flags", lambda: ())
    with caplog.at_level(logging.INFO, logger="safeplay"):
        assert resolve_dtype("auto", cpu) == torch.float32
    assert "bf16 would be emulated" in caplog.text
    monkeypatch.setattr(loading, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert resolve_dtype("auto", cpu) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("float16", cpu) == torch.float16
    with pytest.raises(SafeplayError, match="unknown dtype"):
        resolve_dtype("int8", cpu)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SafeplayError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_model_config_validation():
    assert ModelConfig().spec == "smollm2-135m"
    with pytest.raises(ConfigError, match="dtype: 'fp8' is not allowed"):
        ModelConfig(dtype="fp8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="device: 'gpu' is not allowed"):
        ModelConfig(device="gpu")


@pytest.mark.slow
def test_tiny_model_is_deterministic_and_uses_bundled_tokenizer():
    a, tok = tiny_model(seed=3)
    b, _ = tiny_model(seed=3)
    c, _ = tiny_model(seed=4)
    assert type(a).__name__ == "LlamaForCausalLM"
    assert a.config.vocab_size == len(tok) == 49152 and a.config.num_hidden_layers == 2
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    assert "<|im_start|>assistant" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert tiny_model(num_hidden_layers=3)[0].config.num_hidden_layers == 3


@pytest.mark.slow
def test_local_directory_round_trip(tmp_path):
    model, tok = tiny_model(seed=1)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, tok2 = load_model(str(tmp_path / "m"), dtype="float32", device="cpu")
    assert not loaded.training
    assert tok2.padding_side == "left"
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_unknown_specs_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SafeplayError, match="unknown model './no/such/dir'"):
        load_model("./no/such/dir")
    with pytest.raises(SafeplayError, match="unknown model 'not a model!'"):
        load_model("not a model!")
    with pytest.raises(SafeplayError, match="cannot load model 'no-such-model-xyz-1'.*not available from the hub"):
        load_model("no-such-model-xyz-1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SafeplayError, match="has no config.json"):
        load_model(str(tmp_path / "empty"))


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    # Tests run as root, which ignores permission bits: a path below a regular file can never be created.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("SAFEPLAY_CACHE", str(blocker / "cache"))
    with pytest.raises(SafeplayError, match="cache dir .* is not writable"):
        load_tokenizer()


@pytest.mark.slow
def test_corrupt_cache_is_detected_and_rebuilt(fresh_cache, caplog):
    load_tokenizer()
    tok_dir = fresh_cache / "tokenizers" / "smollm2-135m"
    manifest = read_manifest(tok_dir)
    assert manifest and "tokenizer.json" in manifest["files"]
    assert bundled._verify(tok_dir, bundled._gguf_identity(bundled.gguf_path())) == manifest
    # Same size, different bytes: only the checksum can tell.
    path = tok_dir / "tokenizer.json"
    data = bytearray(path.read_bytes())
    data[100:110] = b"!" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(SafeplayError, match="corrupt"):
        bundled._verify(tok_dir, bundled._gguf_identity(bundled.gguf_path()))
    with caplog.at_level(logging.WARNING, logger="safeplay"):
        tok = load_tokenizer()
    assert "corrupt" in caplog.text and "rebuilding" in caplog.text
    assert read_manifest(tok_dir)["files"]["tokenizer.json"] == manifest["files"]["tokenizer.json"]
    assert tok("hello")["input_ids"]
    # A half-written folder (no manifest) is rebuilt too; no temp folders are left behind.
    (tok_dir / "manifest.json").unlink()
    load_tokenizer()
    assert read_manifest(tok_dir) is not None
    assert sorted(p.name for p in tok_dir.parent.iterdir()) == ["smollm2-135m"]


def test_missing_or_broken_gguf_fails_clearly(fresh_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "GGUF_FILE", "nope.gguf")
    with pytest.raises(SafeplayError, match="bundled model file missing: .*nope.gguf"):
        load_tokenizer()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setattr(bundled, "gguf_path", lambda: broken)
    with pytest.raises(SafeplayError, match="cannot read the tokenizer from .*broken.gguf"):
        load_tokenizer()
    with pytest.raises(SafeplayError, match="cannot read the bundled model .*broken.gguf"):
        load_model(dtype="float32", device="cpu")
    assert not (fresh_cache / "models" / "smollm2-135m").exists()


@pytest.mark.e2e
def test_bundled_model_answers_and_cache_matches_gguf():
    from transformers import AutoModelForCausalLM

    from safeplay.generation.base import ChatPrompt, SamplingParams
    from safeplay.generation.hf import HFGenerator

    model, tok = load_model("smollm2-135m", dtype="float32", device="cpu")
    assert bundled.cache_status() == "ready"
    out = HFGenerator(model, tok).generate(
        [ChatPrompt([{"role": "user", "content": "What is the capital of France?"}])],
        SamplingParams(temperature=0, max_new_tokens=32),
    )[0]
    assert "Paris" in out.text
    gguf = bundled.gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    ids = torch.tensor([out.prompt_ids + out.token_ids])
    with torch.no_grad():
        cached_logits = model(ids).logits
        gguf_logits = direct(ids).logits
    assert torch.equal(cached_logits, gguf_logits)
