"""Role policies: which weights each game role (attacker, defender, evaluator) plays and trains with.

Three layouts behind one interface:

* ``lora`` — one frozen base model, one named PEFT LoRA adapter per policy; the reference policy (for KL)
  is the base with adapters disabled. Three roles cost about one model of memory.
* ``separate`` — one full trainable copy of the model per policy, plus a frozen reference copy.
* ``full`` — full-parameter training of one model shared by every role, plus a frozen reference copy.

Roles mapped to the same policy name (``PolicyConfig.share``) share weights: updating one updates the other.

**KL reference.** By default the KL reference of every policy is the base model (adapters off / the frozen copy).
``freeze_reference()`` instead snapshots each policy's current weights as its own reference — the trainer calls
it after a warm start, so that RL is anchored to the weights it starts from, as in RLHF's SFT reference, and
not pulled back towards the untrained base (which, for a safety warm start, means pulled towards complying).
With LoRA the snapshot is one more frozen adapter per policy (a few MB); with full copies it is one more model.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal, Sequence

from safeplay.config import check
from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, Generator, SamplingParams

if TYPE_CHECKING:
    import torch

    from safeplay.models.loading import ModelConfig

# torch, peft and the generator are imported inside functions so that reading configs stays instant.

ROLES = ("attacker", "defender", "evaluator")
MODES = ("lora", "separate", "full")
WEIGHTS_FILE = "weights.safetensors"
REFERENCE_ADAPTER = "__klref{}__"
"""Names of the frozen reference adapters. peft selects an adapter's keys by substring, so a policy name must not
occur inside one (checked in ``freeze_reference``)."""
META_FILE = "policy.json"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass
class PolicyConfig:
    """How role policies are laid out and trained."""

    mode: Literal["lora", "separate", "full"] = "lora"
    """lora: named LoRA adapters on one frozen base (reference = adapters off); separate: one full trainable
    copy per policy + a frozen reference; full: full-parameter training of one shared model + frozen reference."""
    share: dict[str, str] = field(default_factory=dict)
    """Role → policy name. Roles not listed get their own policy named after the role; e.g.
    {attacker: player, defender: player} makes attacker and defender one set of weights (Self-RedTeam, SSP)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input during training."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Linear layers that get LoRA adapters (module name suffixes)."""
    generator: Literal["auto", "fast", "hf"] = "auto"
    """Generation backend: auto (the lean merged-weight decoder for Llama-family models, else HF), fast, or hf
    (a plain HF forward per step with the adapter unmerged — slower; for checking the fast path)."""

    def __post_init__(self) -> None:
        check(self.mode in MODES, "mode", f"{self.mode!r} is not allowed; choose one of {', '.join(MODES)}")
        for role, name in self.share.items():
            check(role in ROLES, f"share.{role}", f"unknown role; roles are {', '.join(ROLES)}")
            check(
                isinstance(name, str) and _NAME.match(name) is not None,
                f"share.{role}",
                f"policy name {name!r} must start with a letter and use only letters, digits, _ or -",
            )
            # A target that is itself a role must be that role's own policy, or the mapping is ambiguous.
            if name in ROLES and name != role:
                check(
                    self.share.get(name, name) == name,
                    f"share.{role}",
                    f"target {name!r} is a role mapped to another policy ({self.share.get(name)!r})",
                )
        check(self.lora_r >= 1, "lora_r", "must be >= 1")
        check(self.lora_alpha > 0, "lora_alpha", "must be > 0")
        check(0.0 <= self.lora_dropout < 1.0, "lora_dropout", "must be in [0, 1)")
        check(len(self.target_modules) > 0, "target_modules", "needs at least one module name")
        check(self.generator in ("auto", "fast", "hf"), "generator", f"{self.generator!r} is not allowed; choose one of auto, fast, hf")


class _RoleGenerator:
    """A ``Generator`` bound to one role's weights (or to the frozen reference)."""

    def __init__(self, policies: "RolePolicies", role: str | None):
        self.policies = policies
        self.role = role
        self.tokenizer = policies.tokenizer

    @property
    def model(self) -> "torch.nn.Module | None":
        """The HF module that plays this role, for scorers that need raw logits (e.g. multiple-choice).

        With LoRA this activates the role's adapter on the shared model: use it before another role
        generates. None for the LoRA reference (adapters off is a context, not a module).
        """
        if self.role is None:
            return None if self.policies.cfg.mode == "lora" else self.policies.reference
        return self.policies._model_for(self.role)

    def render(self, prompt: ChatPrompt) -> str:
        return self.policies.render(prompt)

    def generate(
        self, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None = None
    ) -> list[Completion]:
        if self.role is None:
            return self.policies._generate_reference(prompts, sampling, seed)
        return self.policies.generate(self.role, prompts, sampling, seed)


class RolePolicies:
    """The policies of a game's roles over one base model (see the module docstring for the layouts)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        roles: Sequence[str],
        cfg: PolicyConfig,
        micro_batch_size: int = 64,
    ):
        self.tokenizer = tokenizer
        self.roles = tuple(roles)
        self.cfg = cfg
        self.micro_batch_size = micro_batch_size
        if not self.roles or len(set(self.roles)) != len(self.roles):
            raise SafeplayError(f"roles must be distinct and non-empty, got {list(roles)}")
        for role in self.roles:
            if not _NAME.match(role):
                raise SafeplayError(f"role name {role!r} must start with a letter and use letters, digits, _ or -")
        # Share entries for roles this game does not play are ignored (e.g. a defender-only ablation).
        self._policy = {r: cfg.share.get(r, r) for r in self.roles}
        names = self.policy_names()
        if cfg.mode == "full" and len(names) > 1:
            raise SafeplayError(
                f"policy.mode=full trains one shared model, but roles map to {len(names)} policies ({', '.join(names)}); "
                "map every role to one name with policy.share or use mode=separate or lora"
            )
        self._active: str | None = None
        self._frozen_ref: dict[str, object] = {}
        """Policy name → its frozen KL reference (a LoRA adapter name, or a model copy); empty = the base."""
        if cfg.mode == "lora":
            self._init_lora(model, names)
        else:
            self._init_copies(model, names)

    # ------------------------------------------------------------------ construction

    def _init_lora(self, model: torch.nn.Module, names: list[str]) -> None:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=self.cfg.lora_r,
            lora_alpha=self.cfg.lora_alpha,
            lora_dropout=self.cfg.lora_dropout,
            target_modules=list(self.cfg.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        for p in model.parameters():
            p.requires_grad_(False)
        self._lora_cfg = lora
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
        self._gen_adapter: str | None = names[0]
        self._gen = make_generator(
            self.model, self.tokenizer, self.micro_batch_size, self.cfg.generator, adapter=lambda: self._gen_adapter
        )
        self._use(names[0])

    def _init_copies(self, model: torch.nn.Module, names: list[str]) -> None:
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

        mb, backend = self.micro_batch_size, self.cfg.generator
        self._gens = {n: make_generator(m, self.tokenizer, mb, backend) for n, m in self.models.items()}
        self._ref_gen = make_generator(self.reference, self.tokenizer, mb, backend)

    # ------------------------------------------------------------------ naming

    @property
    def device(self) -> torch.device:
        return next(self._base_model().parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._base_model().parameters()).dtype

    def _base_model(self) -> torch.nn.Module:
        return self.model if self.cfg.mode == "lora" else self.reference

    def policy_name(self, role: str) -> str:
        if role not in self._policy:
            raise SafeplayError(f"unknown role {role!r}; this game plays {', '.join(self.roles)}")
        return self._policy[role]

    def policy_names(self) -> list[str]:
        """Distinct policy names, in role order."""
        return list(dict.fromkeys(self._policy[r] for r in self.roles))

    # ------------------------------------------------------------------ selecting weights

    def _use(self, name: str) -> None:
        # set_adapter also makes only that adapter trainable (requires_grad) — so gradients reach only it.
        if self._active != name:
            self.model.set_adapter(name)
            self._active = name

    def _model_for(self, role: str) -> torch.nn.Module:
        name = self.policy_name(role)
        if self.cfg.mode == "lora":
            self._use(name)
            return self.model
        return self.models[name]

    @contextmanager
    def _reference(self) -> Iterator[torch.nn.Module]:
        if self.cfg.mode == "lora":
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.reference

    # ------------------------------------------------------------------ generation

    def render(self, prompt: ChatPrompt) -> str:
        from safeplay.generation.hf import render_prompt

        return render_prompt(self.tokenizer, prompt)

    def generator(self, role: str) -> Generator:
        self.policy_name(role)
        return _RoleGenerator(self, role)

    def base_generator(self) -> Generator:
        """Generation from the frozen reference (base weights, adapters off)."""
        return _RoleGenerator(self, None)

    def generate(
        self, role: str, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None = None
    ) -> list[Completion]:
        if self.cfg.mode == "lora":
            self._model_for(role)
            self._gen_adapter = self.policy_name(role)
            return self._gen.generate(prompts, sampling, seed)
        return self._gens[self.policy_name(role)].generate(prompts, sampling, seed)

    def _generate_reference(
        self, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None
    ) -> list[Completion]:
        if self.cfg.mode == "lora":
            self._gen_adapter = None
            with self.model.disable_adapter():
                return self._gen.generate(prompts, sampling, seed)
        return self._ref_gen.generate(prompts, sampling, seed)

    def choice_logprobs(self, role: str, prompts: Sequence[ChatPrompt], choices: Sequence[str]) -> "torch.Tensor":
        """(N, K) log-probabilities of each fixed answer in ``choices`` after each prompt under the role's
        policy, normalised over the choices (constrained decoding; see ``models.choices``)."""
        from safeplay.models.choices import choice_logprobs

        tok = self.tokenizer
        prompt_ids = [tok(self.render(p), add_special_tokens=False)["input_ids"] for p in prompts]
        choice_ids = [tok(c, add_special_tokens=False)["input_ids"] for c in choices]
        return choice_logprobs(self._model_for(role), prompt_ids, choice_ids, tok.pad_token_id, self.micro_batch_size)

    # ------------------------------------------------------------------ log-probs

    def token_logprobs(
        self, role: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int = 0,
        only: torch.Tensor | None = None, temperature: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L-1) log-probs of each next token under the role's policy; differentiable when grad is on.

        Positions before ``start`` and outside ``only`` are skipped (returned as 0), see
        ``models.logprobs.token_logprobs``."""
        from safeplay.models.logprobs import token_logprobs

        return token_logprobs(self._model_for(role), input_ids, attention_mask, start, only, temperature)

    def ref_token_logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int = 0, role: str | None = None,
        only: torch.Tensor | None = None, temperature: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same under the KL reference of ``role``'s policy (its frozen snapshot if one was taken, else the base),
        without gradients."""
        import torch

        from safeplay.models.logprobs import token_logprobs

        frozen = self._frozen_ref.get(self.policy_name(role)) if role is not None else None
        with torch.no_grad():
            if frozen is None:
                with self._reference() as ref:
                    return token_logprobs(ref, input_ids, attention_mask, start, only, temperature)
            if self.cfg.mode == "lora":
                # set_adapter flips requires_grad: switch back so that a graph built before this call (the fused
                # update pass) still sees its adapter trainable when it is differentiated.
                active = self._active
                self._use(frozen)
                try:
                    return token_logprobs(self.model, input_ids, attention_mask, start, only, temperature)
                finally:
                    if active is not None:
                        self._use(active)
            return token_logprobs(frozen, input_ids, attention_mask, start, only, temperature)

    # ------------------------------------------------------------------ KL reference

    def freeze_reference(self) -> None:
        """Make each policy's current weights its KL reference from now on (see the module docstring)."""
        import torch

        for i, name in enumerate(self.policy_names()):
            if self.cfg.mode == "lora":
                ref = REFERENCE_ADAPTER.format(i)
                clash = [n for n in self.policy_names() if n in ref]
                if clash:
                    raise SafeplayError(f"policy name {clash[0]!r} is reserved (it occurs in {ref!r}); rename it")
                if ref not in self.model.peft_config:
                    self.model.add_adapter(ref, self._lora_cfg)
                own = {k: v for k, v in self.model.named_parameters() if "lora_" in k and f".{name}." in k}
                with torch.no_grad():
                    for k, p in self.model.named_parameters():
                        if f".{ref}." in k:
                            p.copy_(own[k.replace(f".{ref}.", f".{name}.")])
                            p.requires_grad_(False)
                self._frozen_ref[name] = ref
                self._active = None  # add_adapter may have switched the active adapter
            else:
                m = copy.deepcopy(self.models[name])
                for p in m.parameters():
                    p.requires_grad_(False)
                m.eval()
                self._frozen_ref[name] = m

    def frozen_reference_names(self) -> list[str]:
        """Policies whose KL reference is a frozen snapshot (``freeze_reference``)."""
        return list(self._frozen_ref)

    def save_reference(self, name: str, directory: str | Path) -> None:
        """Write the frozen reference of policy ``name`` (safetensors)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self._reference_state(name).items()}, str(directory / WEIGHTS_FILE),
                  metadata={"format": "pt"})

    def load_reference(self, name: str, directory: str | Path) -> None:
        """Restore a frozen reference written by ``save_reference`` (creating the snapshot slot first)."""
        import torch
        from safetensors.torch import load_file

        if name not in self.policy_names():
            raise SafeplayError(f"{directory} holds a reference for unknown policy {name!r}")
        if name not in self._frozen_ref:
            self.freeze_reference()
        sd = load_file(str(Path(directory) / WEIGHTS_FILE), device=str(self.device))
        target = self._reference_state(name)
        self._check_keys(f"{name} (reference)", set(target), set(sd))
        with torch.no_grad():
            for k, v in sd.items():
                target[k].copy_(v.to(target[k].dtype))

    def _reference_state(self, name: str) -> dict[str, torch.Tensor]:
        """The frozen reference's tensors, keyed as the policy's own weights (live tensors, not copies)."""
        ref = self._frozen_ref[name]
        if self.cfg.mode == "lora":
            return {k.replace(f".{ref}.", f".{name}."): p for k, p in self.model.named_parameters() if f".{ref}." in k}
        return dict(ref.named_parameters())

    # ------------------------------------------------------------------ weights

    def trainable_parameters(self, role: str) -> list[torch.nn.Parameter]:
        name = self.policy_name(role)
        if self.cfg.mode == "lora":
            # By name, not requires_grad: set_adapter turns requires_grad off for inactive adapters.
            return [
                p for n, p in self.model.named_parameters() if "lora_" in n and f".{name}." in n
            ]
        return list(self.models[name].parameters())

    def state_dict(self, role: str) -> dict[str, torch.Tensor]:
        """Trainable weights of the role's policy (LoRA keys carry no adapter name, so they load into any)."""
        name = self.policy_name(role)
        if self.cfg.mode == "lora":
            from peft import get_peft_model_state_dict

            return {k: v.detach() for k, v in get_peft_model_state_dict(self.model, adapter_name=name).items()}
        # named_parameters skips the tied lm_head duplicate (safetensors refuses shared storage).
        return {k: p.detach() for k, p in self.models[name].named_parameters()}

    def load_state_dict(self, role: str, sd: dict[str, torch.Tensor]) -> None:
        name = self.policy_name(role)
        if self.cfg.mode == "lora":
            from peft import set_peft_model_state_dict

            expected = set(self.state_dict(role))
            self._check_keys(role, expected, set(sd))
            try:
                set_peft_model_state_dict(self.model, sd, adapter_name=name)
            except RuntimeError as e:
                raise SafeplayError(f"weights do not fit role {role!r}: {str(e).splitlines()[0]}") from None
            return
        import torch

        params = dict(self.models[name].named_parameters())
        self._check_keys(role, set(params), set(sd))
        with torch.no_grad():
            for k, v in sd.items():
                if params[k].shape != v.shape:
                    raise SafeplayError(f"weights do not fit role {role!r}: {k} has shape {tuple(v.shape)}")
                params[k].copy_(v)

    @staticmethod
    def _check_keys(role: str, expected: set[str], got: set[str]) -> None:
        if expected != got:
            missing, extra = sorted(expected - got), sorted(got - expected)
            detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
            raise SafeplayError(
                f"weights do not fit role {role!r} ({detail}; {len(missing)} missing, {len(extra)} unexpected)"
            )

    def save_role(self, role: str, directory: str | Path) -> None:
        """Write the role's policy weights (safetensors) and a small policy.json into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sd = {k: v.contiguous() for k, v in self.state_dict(role).items()}
        save_file(sd, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        meta = {"role": role, "policy": self.policy_name(role), "mode": self.cfg.mode}
        if self.cfg.mode == "lora":
            meta["lora"] = {
                "r": self.cfg.lora_r,
                "alpha": self.cfg.lora_alpha,
                "target_modules": list(self.cfg.target_modules),
            }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))

    def load_role(self, role: str, directory: str | Path) -> None:
        """Load weights written by ``save_role`` into the role's policy (shared roles see them too)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = read_role_meta(directory)
        # Full-weight dicts (separate/full) are interchangeable; LoRA adapters only fit LoRA policies.
        if (meta["mode"] == "lora") != (self.cfg.mode == "lora"):
            raise SafeplayError(f"{directory} holds {meta['mode']} weights; these policies use mode {self.cfg.mode}")
        try:
            sd = load_file(str(directory / WEIGHTS_FILE), device=str(self.device))
        except (SafetensorError, OSError) as e:
            raise SafeplayError(f"cannot read {directory / WEIGHTS_FILE}: {str(e).splitlines()[0]}") from None
        target_dtype = {p.dtype for p in self.trainable_parameters(role)}
        if len(target_dtype) == 1:
            dt = target_dtype.pop()
            sd = {k: v.to(dt) for k, v in sd.items()}
        self.load_state_dict(role, sd)

    # ------------------------------------------------------------------ modes

    def train(self) -> "RolePolicies":
        for m in self._trainables():
            m.train()
        return self

    def eval(self) -> "RolePolicies":
        for m in self._trainables():
            m.eval()
        return self

    def _trainables(self) -> list[torch.nn.Module]:
        return [self.model] if self.cfg.mode == "lora" else list(self.models.values())


def read_role_meta(directory: Path) -> dict:
    """The policy.json that ``save_role`` writes next to the weights."""
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except FileNotFoundError:
        raise SafeplayError(f"{directory} holds no saved role weights ({META_FILE} missing)") from None
    except (OSError, ValueError) as e:
        raise SafeplayError(f"cannot read {directory / META_FILE}: {e}") from None
    if not isinstance(meta, dict) or meta.get("mode") not in MODES:
        raise SafeplayError(f"{directory / META_FILE} is not a safeplay role description")
    if not (directory / WEIGHTS_FILE).is_file():
        raise SafeplayError(f"{directory} has no {WEIGHTS_FILE}")
    return meta


def build_policies(
    model_cfg: "ModelConfig", policy_cfg: PolicyConfig, roles: Sequence[str], micro_batch_size: int = 64
) -> RolePolicies:
    """Load the model of ``model_cfg`` and lay the roles' policies over it."""
    from safeplay.models.loading import enable_gradient_checkpointing, load_model

    model, tok = load_model(model_cfg.spec, model_cfg.dtype, model_cfg.device)
    if model_cfg.gradient_checkpointing:
        # Before the LoRA wrap / copies: PEFT and deepcopy keep the setting on every trainable copy.
        enable_gradient_checkpointing(model)
    return RolePolicies(model, tok, roles, policy_cfg, micro_batch_size)
