"""How a rollout or judge worker builds its own copy of the policies and the judge.

Workers never receive the learner's model object: each builds the same layout from the run's config (loading the
model itself, on its own device) and then takes the learner's weights from the first ``WeightSnapshot``. A spec
must be picklable; tests pass their own spec that builds tiny random models and a fake judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class WorkerSpec(Protocol):
    def build_engine(self) -> Any:
        """What generates in a rollout worker: a ``RolePolicies`` (or ``VLLMRoles``) of the run's roles."""
        ...

    def build_judge(self) -> Any:
        """The run's judge, built inside a judge worker."""
        ...


def policy_map(cfg: Any) -> dict[str, str]:
    from safeplay.recipes import recipe_class

    share = cfg.policy.share or recipe_class(cfg.recipe).default_share
    return {r: share.get(r, r) for r in recipe_class(cfg.recipe).roles}


def build_vllm_roles(cfg: Any) -> Any:
    """A ``VLLMRoles`` over the run's base model (the engine loads the model itself from its folder or hub id)."""
    from safeplay.generation.vllm import VLLMEngine, VLLMRoles, import_vllm
    from safeplay.models.bundled import BUNDLED, ensure_bundled_model
    from safeplay.models.loading import load_tokenizer

    import_vllm()  # a missing vLLM is reported before any model is touched
    source = str(ensure_bundled_model()) if cfg.model.spec == BUNDLED else cfg.model.spec
    lora_rank = cfg.policy.lora_r if cfg.policy.mode == "lora" else None
    engine = VLLMEngine(source, load_tokenizer(cfg.model.spec), cfg.rollout.vllm, lora_rank=lora_rank)
    return VLLMRoles(engine, policy_map(cfg), cfg.policy.mode, base_model=source)


@dataclass
class ConfigWorkerSpec:
    """Workers of a run built from its ``TrainConfig`` (what ``safeplay train --distributed ray`` uses)."""

    cfg: Any
    """The run's resolved TrainConfig."""

    def build_engine(self) -> Any:
        if self.cfg.rollout.generator == "vllm":
            return build_vllm_roles(self.cfg)
        import torch

        from safeplay.models.roles import build_policies
        from safeplay.recipes import recipe_class

        torch.manual_seed(self.cfg.seed)  # same LoRA init as the learner (the first snapshot overwrites it anyway)
        return build_policies(self.cfg.model, self.cfg.policy, recipe_class(self.cfg.recipe).roles)

    def build_judge(self) -> Any:
        from safeplay.judges.registry import build_judge

        return build_judge(self.cfg.judge.name, **self.cfg.judge.options)
