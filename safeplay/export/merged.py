"""Write a run's role as a full Hugging Face model folder (config, safetensors weights, tokenizer, generation
config) that plain ``transformers`` loads with no safeplay installed.

LoRA runs: the adapter is written as a PEFT folder first and merged by peft itself (``merge_and_unload``) into a
float32 copy of the base, so the merged weights are exactly ``W + scale·B·A`` as peft computes it — the same sum
safeplay's lean decoder generates with. Full-weight runs: the saved weights are loaded into the base model in
place of its own. The result is cast to ``dtype`` (default: the dtype the base model's weights are stored in).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from safeplay.errors import SafeplayError
from safeplay.export.run_weights import RoleWeights
from safeplay.models.loading import DTYPES


def stored_dtype(spec: str) -> str:
    """The dtype a model's weights are stored in (its config's ``dtype``), float32 when it does not say."""
    import torch
    from transformers import AutoConfig

    from safeplay.models.loading import _resolve_source

    source, kwargs = _resolve_source(spec)
    try:
        dtype = getattr(AutoConfig.from_pretrained(source, **kwargs), "dtype", None)
    except (OSError, ValueError) as e:
        raise SafeplayError(f"cannot read the config of {spec}: {str(e).splitlines()[0]}") from None
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else "float32"


def write_merged(src: RoleWeights, out: Path, dtype: str | None = None) -> str:
    """Write the merged model of ``src`` into ``out``; returns the dtype name it was saved in."""
    import torch

    from safeplay.models.loading import load_model

    dtype = dtype or stored_dtype(src.model_spec)
    if dtype not in DTYPES or dtype == "auto":
        raise SafeplayError(f"export dtype {dtype!r} is not allowed; choose one of float32, bfloat16, float16")
    model, tokenizer = load_model(src.model_spec, dtype="float32", device="cpu")
    if src.mode == "lora":
        from peft import PeftModel

        from safeplay.export.adapter import write_adapter

        with tempfile.TemporaryDirectory(prefix="safeplay-adapter-") as tmp:
            write_adapter(src, Path(tmp), src.model_spec)
            with warnings.catch_warnings():
                # peft probes a deprecated transformers attribute; nothing for users to act on.
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                model = PeftModel.from_pretrained(model, tmp).merge_and_unload()
    else:
        _load_full_weights(model, src)
    model.to(getattr(torch, dtype))
    # The bundled model's config was converted from GGUF and names no architecture; hub tools and pipelines want one.
    model.config.architectures = [type(model).__name__]
    gen = model.generation_config
    gen.pad_token_id = tokenizer.pad_token_id if gen.pad_token_id is None else gen.pad_token_id
    gen.eos_token_id = tokenizer.eos_token_id if gen.eos_token_id is None else gen.eos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return dtype


def _load_full_weights(model, src: RoleWeights) -> None:
    """Replace the base model's parameters by the run's full weights (same names as ``named_parameters``)."""
    import torch
    from safetensors.torch import load_file

    sd = load_file(str(src.weights_file))
    params = dict(model.named_parameters())  # the tied lm_head is not listed twice, as in the checkpoint
    if set(sd) != set(params):
        missing, extra = sorted(set(params) - set(sd)), sorted(set(sd) - set(params))
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise SafeplayError(f"{src.weights_file} does not fit the base model {src.model_spec} ({detail})")
    with torch.no_grad():
        for name, value in sd.items():
            if params[name].shape != value.shape:
                raise SafeplayError(f"{src.weights_file}: {name} has shape {tuple(value.shape)}, the base model's "
                                    f"is {tuple(params[name].shape)}")
            params[name].copy_(value.to(params[name].dtype))
