"""Write a run's LoRA weights as a standard PEFT adapter folder (``adapter_config.json`` +
``adapter_model.safetensors``), loadable by ``peft.PeftModel.from_pretrained`` with no safeplay installed.

The checkpoint already stores the adapter under PEFT's own key names (``get_peft_model_state_dict``: no adapter
name in the keys), so the weights file is copied as it is, after checking its keys; the config is written by
peft's ``LoraConfig`` from the run's LoRA settings, so its format is whatever the installed peft writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from safeplay.errors import SafeplayError
from safeplay.export.run_weights import RoleWeights

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def write_adapter(src: RoleWeights, out: Path, base_model: str) -> str:
    """Write the adapter of ``src`` into ``out`` (``base_model`` goes to ``base_model_name_or_path``); returns the
    weights' dtype name."""
    from peft import LoraConfig
    from safetensors import safe_open

    if src.mode != "lora":
        raise SafeplayError(f"{src.weights_dir} holds full weights (policy.mode={src.mode}), not a LoRA adapter")
    lora = src.meta.get("lora") or {}
    if not {"r", "alpha", "target_modules"} <= set(lora):
        raise SafeplayError(f"{src.weights_dir}/policy.json lacks the LoRA settings (r, alpha, target_modules)")
    with safe_open(str(src.weights_file), framework="pt") as f:
        keys = list(f.keys())
        dtypes = {str(f.get_slice(k).get_dtype()) for k in keys}
    odd = [k for k in keys if not k.startswith("base_model.model.") or not (".lora_A." in k or ".lora_B." in k)]
    if not keys or odd:
        raise SafeplayError(f"{src.weights_file} does not hold PEFT LoRA weights"
                            + (f" (unexpected key {odd[0]})" if odd else " (no tensors)"))
    config = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=lora["alpha"],
        lora_dropout=float((src.config.get("policy") or {}).get("lora_dropout", 0.0)),
        target_modules=list(lora["target_modules"]),
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_model,
        inference_mode=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    shutil.copyfile(src.weights_file, out / ADAPTER_WEIGHTS)
    return _dtype_name(dtypes)


def _dtype_name(dtypes: set[str]) -> str:
    names = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
    return ", ".join(sorted(names.get(d, d.lower()) for d in dtypes))
