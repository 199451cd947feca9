"""Load a PEFT adapter folder (``safeplay export --format adapter``, or any PEFT LoRA folder) as a plain model.

The adapter is merged into a float32 copy of its base by peft (``merge_and_unload``), then cast to the requested
dtype: the result is the model a merged export of the same adapter holds, and every generator (the lean decoder
included, which reads the plain weights) uses the adapter. The base is the one safeplay names in ``export.json``
when the folder has it (``smollm2-135m`` is found on any machine), else ``base_model_name_or_path``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from safeplay.errors import SafeplayError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ADAPTER_CONFIG = "adapter_config.json"
EXPORT_FILE = "export.json"


def is_adapter_dir(spec: str | None) -> bool:
    """A folder holding a PEFT adapter and no full model."""
    if not spec:
        return False
    path = Path(spec).expanduser()
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def adapter_base(directory: str | Path) -> str:
    """The base model spec of an adapter folder."""
    directory = Path(directory).expanduser()
    try:
        export = json.loads((directory / EXPORT_FILE).read_text(encoding="utf-8"))
        if isinstance(export, dict) and export.get("base_model"):
            return str(export["base_model"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise SafeplayError(f"cannot read {directory / EXPORT_FILE}: {e}") from None
    try:
        base = json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as e:
        raise SafeplayError(f"cannot read {directory / ADAPTER_CONFIG}: {e}") from None
    if not base:
        raise SafeplayError(f"{directory / ADAPTER_CONFIG} names no base model (base_model_name_or_path)")
    return str(base)


def load_adapter_model(directory: str | Path, dtype: str, device: str) -> tuple["PreTrainedModel",
                                                                                 "PreTrainedTokenizerBase"]:
    """(model with the adapter merged in, the base's tokenizer) on ``device`` in ``dtype``."""
    import logging

    from peft import PeftModel

    from safeplay.models.loading import load_model, resolve_device, resolve_dtype

    base = adapter_base(directory)
    if is_adapter_dir(base):
        raise SafeplayError(f"the base of adapter {directory} is itself an adapter folder ({base})")
    model, tok = load_model(base, dtype="float32", device="cpu")
    try:
        with warnings.catch_warnings():
            # peft probes a deprecated transformers attribute; nothing for users to act on.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = PeftModel.from_pretrained(model, str(directory)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise SafeplayError(f"cannot apply adapter {directory} to {base}: {str(e).splitlines()[0]}") from None
    dev = resolve_device(device)
    model.to(device=dev, dtype=resolve_dtype(dtype, dev))
    model.eval()
    logging.getLogger("safeplay").info("merged adapter %s into %s", directory, base)
    return model, tok
