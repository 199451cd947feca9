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

Where the parts live: the ``policy`` config section in ``models.policy_config``, the two layouts (what differs
between LoRA adapters and full copies) in ``models.role_layouts``, and the files a role's weights are saved as in
``models.role_files``; this module maps roles to policies and is what the rest of the project calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, Generator, SamplingParams
from safeplay.models.policy_config import NAME_PATTERN, PolicyConfig
from safeplay.models.role_files import WEIGHTS_FILE, read_role_meta, read_weights, write_role_meta, write_weights
from safeplay.models.role_layouts import CopyLayout, LoraLayout, check_keys

if TYPE_CHECKING:
    import torch

    from safeplay.models.loading import ModelConfig

# torch, peft and the generator are imported inside functions so that reading configs stays instant.


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
            return self.policies._layout.reference_model()
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
            if not NAME_PATTERN.match(role):
                raise SafeplayError(f"role name {role!r} must start with a letter and use letters, digits, _ or -")
        # Share entries for roles this game does not play are ignored (e.g. a defender-only ablation).
        self._policy = {r: cfg.share.get(r, r) for r in self.roles}
        names = self.policy_names()
        if cfg.mode == "full" and len(names) > 1:
            raise SafeplayError(
                f"policy.mode=full trains one shared model, but roles map to {len(names)} policies ({', '.join(names)}); "
                "map every role to one name with policy.share or use mode=separate or lora"
            )
        self._frozen_ref: dict[str, object] = {}
        """Policy name → its frozen KL reference (a LoRA adapter name, or a model copy); empty = the base."""
        layout = LoraLayout if cfg.mode == "lora" else CopyLayout
        self._layout: LoraLayout | CopyLayout = layout(model, names, cfg, tokenizer, micro_batch_size)

    @property
    def model(self) -> torch.nn.Module:
        """The peft model that carries every policy's adapter (mode ``lora`` only)."""
        return self._layout.model

    @property
    def reference(self) -> torch.nn.Module:
        """The frozen base copy that is the default KL reference (modes ``separate`` and ``full`` only)."""
        return self._layout.reference

    # ------------------------------------------------------------------ naming

    @property
    def device(self) -> torch.device:
        return next(self._layout.base_model().parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._layout.base_model().parameters()).dtype

    def policy_name(self, role: str) -> str:
        if role not in self._policy:
            raise SafeplayError(f"unknown role {role!r}; this game plays {', '.join(self.roles)}")
        return self._policy[role]

    def policy_names(self) -> list[str]:
        """Distinct policy names, in role order."""
        return list(dict.fromkeys(self._policy[r] for r in self.roles))

    # ------------------------------------------------------------------ selecting weights

    def _model_for(self, role: str) -> torch.nn.Module:
        return self._layout.model_for(self.policy_name(role))

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
        return self._layout.generate(self.policy_name(role), prompts, sampling, seed)

    def _generate_reference(
        self, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None
    ) -> list[Completion]:
        return self._layout.generate_reference(prompts, sampling, seed)

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
                with self._layout.reference_context() as ref:
                    return token_logprobs(ref, input_ids, attention_mask, start, only, temperature)
            return self._layout.frozen_token_logprobs(frozen, input_ids, attention_mask, start, only, temperature)

    # ------------------------------------------------------------------ KL reference

    def freeze_reference(self) -> None:
        """Make each policy's current weights its KL reference from now on (see the module docstring)."""
        for i, name in enumerate(self.policy_names()):
            self._frozen_ref[name] = self._layout.freeze(name, i, self.policy_names())

    def frozen_reference_names(self) -> list[str]:
        """Policies whose KL reference is a frozen snapshot (``freeze_reference``)."""
        return list(self._frozen_ref)

    def save_reference(self, name: str, directory: str | Path) -> None:
        """Write the frozen reference of policy ``name`` (safetensors)."""
        write_weights(Path(directory), self._reference_state(name))

    def load_reference(self, name: str, directory: str | Path) -> None:
        """Restore a frozen reference written by ``save_reference`` (creating the snapshot slot first)."""
        import torch

        if name not in self.policy_names():
            raise SafeplayError(f"{directory} holds a reference for unknown policy {name!r}")
        if name not in self._frozen_ref:
            self.freeze_reference()
        sd = read_weights(Path(directory), self.device)
        target = self._reference_state(name)
        check_keys(f"{name} (reference)", set(target), set(sd))
        with torch.no_grad():
            for k, v in sd.items():
                target[k].copy_(v.to(target[k].dtype))

    def _reference_state(self, name: str) -> dict[str, torch.Tensor]:
        """The frozen reference's tensors, keyed as the policy's own weights (live tensors, not copies)."""
        return self._layout.reference_state(name, self._frozen_ref[name])

    # ------------------------------------------------------------------ weights

    def trainable_parameters(self, role: str) -> list[torch.nn.Parameter]:
        return self._layout.trainable_parameters(self.policy_name(role))

    def state_dict(self, role: str) -> dict[str, torch.Tensor]:
        """Trainable weights of the role's policy (LoRA keys carry no adapter name, so they load into any)."""
        return self._layout.state_dict(self.policy_name(role))

    def load_state_dict(self, role: str, sd: dict[str, torch.Tensor]) -> None:
        self._layout.load_state_dict(role, self.policy_name(role), sd)

    def save_role(self, role: str, directory: str | Path) -> None:
        """Write the role's policy weights (safetensors) and a small policy.json into ``directory``."""
        directory = Path(directory)
        write_weights(directory, self.state_dict(role))
        meta = {"role": role, "policy": self.policy_name(role), "mode": self.cfg.mode, **self._layout.meta()}
        write_role_meta(directory, meta)

    def load_role(self, role: str, directory: str | Path) -> None:
        """Load weights written by ``save_role`` into the role's policy (shared roles see them too)."""
        from safetensors import SafetensorError

        directory = Path(directory)
        meta = read_role_meta(directory)
        # Full-weight dicts (separate/full) are interchangeable; LoRA adapters only fit LoRA policies.
        if (meta["mode"] == "lora") != (self.cfg.mode == "lora"):
            raise SafeplayError(f"{directory} holds {meta['mode']} weights; these policies use mode {self.cfg.mode}")
        try:
            sd = read_weights(directory, self.device)
        except (SafetensorError, OSError) as e:
            raise SafeplayError(f"cannot read {directory / WEIGHTS_FILE}: {str(e).splitlines()[0]}") from None
        target_dtype = {p.dtype for p in self.trainable_parameters(role)}
        if len(target_dtype) == 1:
            dt = target_dtype.pop()
            sd = {k: v.to(dt) for k, v in sd.items()}
        self.load_state_dict(role, sd)

    # ------------------------------------------------------------------ modes

    def train(self) -> "RolePolicies":
        for m in self._layout.trainables():
            m.train()
        return self

    def eval(self) -> "RolePolicies":
        for m in self._layout.trainables():
            m.eval()
        return self


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
