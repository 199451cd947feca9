"""model.gradient_checkpointing: the same gradients with less kept activation memory (LoRA on a frozen base)."""

from __future__ import annotations

import torch

from safeplay.models.loading import ModelConfig, enable_gradient_checkpointing, tiny_model
from safeplay.models.policy_config import PolicyConfig
from safeplay.models.roles import RolePolicies


def lora_grads(checkpointing: bool) -> dict[str, torch.Tensor]:
    model, tok = tiny_model(seed=0)
    if checkpointing:
        enable_gradient_checkpointing(model)
    torch.manual_seed(0)
    pol = RolePolicies(model, tok, ["defender"], PolicyConfig(lora_r=4))
    with torch.no_grad():  # LoRA B starts at zero; move it so every adapter weight gets a gradient
        for p in pol.trainable_parameters("defender"):
            p.add_(0.02)
    pol.train()
    ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    pol.token_logprobs("defender", ids, mask).sum().backward()
    names = dict(pol.model.named_parameters())
    return {n: p.grad.clone() for n, p in names.items() if "lora_" in n and p.grad is not None}, pol


def test_gradient_checkpointing_gives_the_same_lora_gradients():
    plain, _ = lora_grads(False)
    ckpt, pol = lora_grads(True)
    inner = pol.model.base_model.model
    assert getattr(inner, "is_activation_checkpointing", None) or inner.is_gradient_checkpointing
    assert plain and set(plain) == set(ckpt)  # no adapter lost its gradient (the reentrant variant would)
    for k in plain:
        assert torch.allclose(plain[k], ckpt[k], atol=1e-6), k


def test_config_field_defaults_off():
    assert ModelConfig().gradient_checkpointing is False
