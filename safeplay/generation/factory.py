"""Pick the generation backend for a model: the lean decoder where the architecture allows, else HF."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal

from safeplay.errors import SafeplayError

if TYPE_CHECKING:
    import torch

    from safeplay.generation.hf import HFGenerator

Backend = Literal["auto", "fast", "hf"]
BACKENDS = ("auto", "fast", "hf")


def make_generator(
    model: "torch.nn.Module",
    tokenizer,
    micro_batch_size: int = 64,
    backend: Backend = "auto",
    adapter: Callable[[], str | None] = lambda: None,
) -> "HFGenerator":
    """``auto``: ``FastGenerator`` for Llama-family models, ``HFGenerator`` otherwise; ``fast`` insists on the
    lean decoder (an error for other architectures); ``hf`` is the plain per-step HF forward.

    ``adapter`` returns the LoRA adapter whose merged weights the fast decoder uses (None: base weights); the
    HF backend uses whatever adapter is active on the model.
    """
    from safeplay.generation.fast import FastGenerator, supports
    from safeplay.generation.hf import HFGenerator

    if backend not in BACKENDS:
        raise SafeplayError(f"generation backend {backend!r} is not allowed; choose one of {', '.join(BACKENDS)}")
    if backend == "hf" or (backend == "auto" and not supports(model)):
        return HFGenerator(model, tokenizer, micro_batch_size)
    if not supports(model):
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise SafeplayError(f"the fast decoder does not support model type {kind!r}; use backend hf")
    return FastGenerator(model, tokenizer, micro_batch_size, adapter=adapter)
