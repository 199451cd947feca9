"""The two ways role policies hold their weights, behind one small interface that ``RolePolicies`` calls.

``LoraLayout`` (mode ``lora``): one frozen base model wrapped by peft, one named LoRA adapter per policy, one
generator that decodes with whichever adapter is active; the reference is the base with adapters off, a frozen
snapshot one more adapter. ``CopyLayout`` (modes ``separate`` and ``full``): one full trainable copy of the model
per policy, each with its own generator, and the frozen original as the reference; a frozen snapshot is one more
copy. Policies are addressed by policy name here; ``RolePolicies`` maps roles to policy names.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Sequence

from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, SamplingParams
from safeplay.models.policy_config import PolicyConfig

if TYPE_CHECKING:
    import torch

REFERENCE_ADAPTER = "__klref{}__"
"""Names of the frozen reference adapters. peft selects an adapter's keys by substring, so a policy name must not
occur inside one (checked in ``freeze_reference``)."""


def check_keys(role: str, expected: set[str], got: set[str]) -> None:
    """A one-line SafeplayError when a weights dict's keys are not the policy's."""
    if expected != got:
        missing, extra = sorted(expected - got), sorted(got - expected)
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise SafeplayError(
            f"weights do not fit role {role!r} ({detail}; {len(missing)} missing, {len(extra)} unexpected)"
        )


class LoraLayout:
    """Named LoRA adapters on one frozen base (mode ``lora``)."""

    def __init__(self, model: torch.nn.Module, names: list[str], cfg: PolicyConfig, tokenizer,
                 micro_batch_size: int):
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        for p in model.parameters():
            p.requires_grad_(False)
        self.cfg = cfg
        self.lora_cfg = lora
        self.active: str | None = None
        try:
            with warnings.catch_warnings():
                # peft probes a deprecated transformers attribute; nothing for users to act on.
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                self.model = get_peft_model(model, lora, adapter_name=names[0])
            for name in names[1:]:
                self.model.add_adapter(name, lora)
        except ValueError as e:
            raise SafeplayError(f"cannot add LoRA adapters: {str(e).splitlines()[0]}") from None
        from safeplay.generation.factory import make_generator

        # The fast decoder merges the adapter named here into its weights (None: the reference, adapters off).
        self.gen_adapter: str | None = names[0]
        self.gen = make_generator(
            self.model, tokenizer, micro_batch_size, cfg.generator, adapter=lambda: self.gen_adapter
        )
        self.use(names[0])

    def base_model(self) -> torch.nn.Module:
        return self.model

    def use(self, name: str) -> None:
        # set_adapter also makes only that adapter trainable (requires_grad) — so gradients reach only it.
        if self.active != name:
            self.model.set_adapter(name)
            self.active = name

    def model_for(self, name: str) -> torch.nn.Module:
        self.use(name)
        return self.model

    def reference_model(self) -> torch.nn.Module | None:
        """None: adapters off is a context, not a module."""
        return None

    @contextmanager
    def reference_context(self) -> Iterator[torch.nn.Module]:
        with self.model.disable_adapter():
            yield self.model

    def generate(self, name: str, prompts: Sequence[ChatPrompt], sampling: SamplingParams,
                 seed: int | None) -> list[Completion]:
        self.use(name)
        self.gen_adapter = name
        return self.gen.generate(prompts, sampling, seed)

    def generate_reference(self, prompts: Sequence[ChatPrompt], sampling: SamplingParams,
                           seed: int | None) -> list[Completion]:
        self.gen_adapter = None
        with self.model.disable_adapter():
            return self.gen.generate(prompts, sampling, seed)

    def frozen_token_logprobs(self, frozen: str, *args) -> torch.Tensor:
        """``token_logprobs`` under the frozen reference adapter ``frozen``."""
        from safeplay.models.logprobs import token_logprobs

        # set_adapter flips requires_grad: switch back so that a graph built before this call (the fused
        # update pass) still sees its adapter trainable when it is differentiated.
        active = self.active
        self.use(frozen)
        try:
            return token_logprobs(self.model, *args)
        finally:
            if active is not None:
                self.use(active)

    def freeze(self, name: str, index: int, names: list[str]) -> str:
        """Copy policy ``name``'s adapter into frozen reference adapter number ``index``; its adapter name."""
        import torch

        ref = REFERENCE_ADAPTER.format(index)
        clash = [n for n in names if n in ref]
        if clash:
            raise SafeplayError(f"policy name {clash[0]!r} is reserved (it occurs in {ref!r}); rename it")
        if ref not in self.model.peft_config:
            self.model.add_adapter(ref, self.lora_cfg)
        own = {k: v for k, v in self.model.named_parameters() if "lora_" in k and f".{name}." in k}
        with torch.no_grad():
            for k, p in self.model.named_parameters():
                if f".{ref}." in k:
                    p.copy_(own[k.replace(f".{ref}.", f".{name}.")])
                    p.requires_grad_(False)
        self.active = None  # add_adapter may have switched the active adapter
        return ref

    def reference_state(self, name: str, ref: str) -> dict[str, torch.Tensor]:
        return {k.replace(f".{ref}.", f".{name}."): p for k, p in self.model.named_parameters() if f".{ref}." in k}

    def trainable_parameters(self, name: str) -> list[torch.nn.Parameter]:
        # By name, not requires_grad: set_adapter turns requires_grad off for inactive adapters.
        return [
            p for n, p in self.model.named_parameters() if "lora_" in n and f".{name}." in n
        ]

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        return {k: v.detach() for k, v in get_peft_model_state_dict(self.model, adapter_name=name).items()}

    def load_state_dict(self, role: str, name: str, sd: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        expected = set(self.state_dict(name))
        check_keys(role, expected, set(sd))
        try:
            set_peft_model_state_dict(self.model, sd, adapter_name=name)
        except RuntimeError as e:
            raise SafeplayError(f"weights do not fit role {role!r}: {str(e).splitlines()[0]}") from None

    def meta(self) -> dict:
        """What ``save_role`` records about the layout besides the mode."""
        return {
            "lora": {
                "r": self.cfg.lora_r,
                "alpha": self.cfg.lora_alpha,
                "target_modules": list(self.cfg.target_modules),
            }
        }

    def trainables(self) -> list[torch.nn.Module]:
        return [self.model]


class CopyLayout:
    """One full trainable copy per policy plus a frozen reference copy (modes ``separate`` and ``full``)."""

    def __init__(self, model: torch.nn.Module, names: list[str], cfg: PolicyConfig, tokenizer,
                 micro_batch_size: int):
        self.reference = model
        for p in model.parameters():
            p.requires_grad_(False)
        self.models: dict[str, torch.nn.Module] = {}
        for name in names:
            m = copy.deepcopy(model)
            for p in m.parameters():
                p.requires_grad_(True)
            self.models[name] = m
        from safeplay.generation.factory import make_generator

        mb, backend = micro_batch_size, cfg.generator
        self.gens = {n: make_generator(m, tokenizer, mb, backend) for n, m in self.models.items()}
        self.ref_gen = make_generator(self.reference, tokenizer, mb, backend)

    def base_model(self) -> torch.nn.Module:
        return self.reference

    def model_for(self, name: str) -> torch.nn.Module:
        return self.models[name]

    def reference_model(self) -> torch.nn.Module | None:
        return self.reference

    @contextmanager
    def reference_context(self) -> Iterator[torch.nn.Module]:
        yield self.reference

    def generate(self, name: str, prompts: Sequence[ChatPrompt], sampling: SamplingParams,
                 seed: int | None) -> list[Completion]:
        return self.gens[name].generate(prompts, sampling, seed)

    def generate_reference(self, prompts: Sequence[ChatPrompt], sampling: SamplingParams,
                           seed: int | None) -> list[Completion]:
        return self.ref_gen.generate(prompts, sampling, seed)

    def frozen_token_logprobs(self, frozen: torch.nn.Module, *args) -> torch.Tensor:
        """``token_logprobs`` under the frozen reference copy ``frozen``."""
        from safeplay.models.logprobs import token_logprobs

        return token_logprobs(frozen, *args)

    def freeze(self, name: str, index: int, names: list[str]) -> torch.nn.Module:
        """A frozen copy of policy ``name``'s model."""
        m = copy.deepcopy(self.models[name])
        for p in m.parameters():
            p.requires_grad_(False)
        m.eval()
        return m

    def reference_state(self, name: str, ref: torch.nn.Module) -> dict[str, torch.Tensor]:
        return dict(ref.named_parameters())

    def trainable_parameters(self, name: str) -> list[torch.nn.Parameter]:
        return list(self.models[name].parameters())

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        # named_parameters skips the tied lm_head duplicate (safetensors refuses shared storage).
        return {k: p.detach() for k, p in self.models[name].named_parameters()}

    def load_state_dict(self, role: str, name: str, sd: dict[str, torch.Tensor]) -> None:
        import torch

        params = dict(self.models[name].named_parameters())
        check_keys(role, set(params), set(sd))
        with torch.no_grad():
            for k, v in sd.items():
                if params[k].shape != v.shape:
                    raise SafeplayError(f"weights do not fit role {role!r}: {k} has shape {tuple(v.shape)}")
                params[k].copy_(v)

    def meta(self) -> dict:
        return {}

    def trainables(self) -> list[torch.nn.Module]:
        return list(self.models.values())
