"""Models: loading (bundled GGUF, HF folders, hub ids, tiny test models) and role policies."""

from safeplay.models.loading import ModelConfig, load_model, load_tokenizer, resolve_device, resolve_dtype, tiny_model
from safeplay.models.policy_config import ROLES, PolicyConfig
from safeplay.models.roles import RolePolicies, build_policies

__all__ = [
    "ROLES",
    "ModelConfig",
    "PolicyConfig",
    "RolePolicies",
    "build_policies",
    "load_model",
    "load_tokenizer",
    "resolve_device",
    "resolve_dtype",
    "tiny_model",
]
