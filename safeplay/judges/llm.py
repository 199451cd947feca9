"""LLM judges (WildGuard, Llama Guard 3, SSP 1–5 score, TriPlay 3-class, StrongREJECT's rubric) on a local model or an
HTTP endpoint.

Backends turn judge prompts into generated texts:

* :class:`LocalBackend` — a Hugging Face model (``model=`` a local directory or any spec ``safeplay.models.load_model``
  knows), greedy decoding in length-sorted batches;
* :class:`OpenAIBackend` — an OpenAI-compatible server (vLLM, TGI, …): ``/v1/completions`` with the raw prompt or
  ``/v1/chat/completions`` with chat messages, requests sent concurrently from a thread pool, each with a timeout and
  retries with exponential backoff. The API key comes from an environment variable (``SAFEPLAY_JUDGE_API_KEY`` unless
  ``api_key_env`` names another) and is never logged.

An output the format's strict parser cannot read becomes ``Verdict(unparseable=True, raw=text)``; an answer body that
is not the expected JSON is kept as ``raw`` the same way. A server that cannot be reached raises ``SafeplayError``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from safeplay.errors import SafeplayError
from safeplay.judges.base import JudgeItem, Verdict, label_from
from safeplay.judges.http import RetryPolicy, Secret, post_json
from safeplay.judges.prompts import FORMATS, JudgeFormat

DEFAULT_API_KEY_ENV = "SAFEPLAY_JUDGE_API_KEY"


class Backend(Protocol):
    def generate(self, fmt: JudgeFormat, items: Sequence[JudgeItem]) -> list[str]:
        """One generated text per item (greedy), in order."""
        ...


class LocalBackend:
    """A local causal LM, loaded once via ``safeplay.models.load_model``."""

    def __init__(self, model: str, dtype: str | None = "auto", device: str | None = "auto", batch_size: int = 8) -> None:
        from safeplay.models import load_model

        self.spec = model
        self.model, self.tokenizer = load_model(model, dtype, device)
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"LocalBackend({self.spec!r})"

    def _text(self, fmt: JudgeFormat, item: JudgeItem) -> str:
        if fmt.use_chat_template and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(fmt.chat(item), tokenize=False, add_generation_prompt=True)
        return fmt.raw(item)

    def generate(self, fmt: JudgeFormat, items: Sequence[JudgeItem]) -> list[str]:
        import torch

        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"  # decoder-only: new tokens follow the last real token
        texts = [self._text(fmt, it) for it in items]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[str] = [""] * len(texts)
        device = next(self.model.parameters()).device
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            # No truncation: cutting a judge prompt would drop its answer cue (or its instruction).
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                gen = self.model.generate(**enc, max_new_tokens=fmt.max_new_tokens, do_sample=False,
                                          pad_token_id=tok.pad_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            for j, i in enumerate(idx):
                out[i] = tok.decode(new[j], skip_special_tokens=True)
        return out


class OpenAIBackend:
    """An OpenAI-compatible HTTP endpoint. ``endpoint`` is the server root (``http://host:8000``) or its ``/v1``."""

    def __init__(self, endpoint: str, model_name: str, api: str = "completions", api_key_env: str = DEFAULT_API_KEY_ENV,
                 timeout: float = 60.0, retries: int = 3, backoff: float = 1.0, concurrency: int = 8) -> None:
        if api not in ("completions", "chat"):
            raise SafeplayError(f"judge api must be 'completions' or 'chat', got {api!r}")
        root = endpoint.rstrip("/")
        root = root.removesuffix("/chat/completions").removesuffix("/completions").removesuffix("/v1")
        self.url = f"{root}/v1/{'chat/completions' if api == 'chat' else 'completions'}"
        self.model_name = model_name
        self.api = api
        self.api_key = Secret.from_env(api_key_env)
        self.policy = RetryPolicy(timeout=timeout, retries=retries, backoff=backoff)
        self.concurrency = max(1, concurrency)

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.url!r}, model={self.model_name!r}, api_key={self.api_key!r})"

    def _one(self, fmt: JudgeFormat, item: JudgeItem) -> str:
        payload: dict[str, Any] = {"model": self.model_name, "max_tokens": fmt.max_new_tokens, "temperature": 0.0}
        if self.api == "chat":
            payload["messages"] = fmt.chat(item)
        else:
            payload["prompt"] = fmt.raw(item)
        _, body = post_json(self.url, payload, self.policy, self.api_key)
        try:
            choice = json.loads(body)["choices"][0]
            text = choice["message"]["content"] if self.api == "chat" else choice["text"]
            if not isinstance(text, str):
                raise TypeError
            return text
        except (ValueError, KeyError, IndexError, TypeError):
            return body[:2000]  # not the API's shape: kept as the raw output, which will not parse

    def generate(self, fmt: JudgeFormat, items: Sequence[JudgeItem]) -> list[str]:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(lambda it: self._one(fmt, it), items))


@dataclass
class LLMJudge:
    """A judge format read from a backend's generations."""

    format: JudgeFormat
    backend: Backend
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.format.name

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        if not items:
            return []
        texts = self.backend.generate(self.format, items)
        if len(texts) != len(items):
            raise SafeplayError(f"{self.name}: backend returned {len(texts)} outputs for {len(items)} items")
        return [to_verdict(self.format, t, self.name) for t in texts]


def to_verdict(fmt: JudgeFormat, text: str, name: str) -> Verdict:
    parsed = fmt.parse(text)
    if parsed is None:
        return Verdict(unparseable=True, raw=text, judge=name)
    label = parsed.label or label_from(parsed.refusal, parsed.response_harmful)
    return Verdict(prompt_harmful=parsed.prompt_harmful, refusal=parsed.refusal,
                   response_harmful=parsed.response_harmful, label=label, score=parsed.score, raw=text,
                   judge=name, categories=list(parsed.categories), probs=dict(parsed.probs))


def build_llm_judge(kind: str, model: str | None = None, endpoint: str | None = None, model_name: str | None = None,
                    **options: Any) -> LLMJudge:
    """``kind`` is a format name (wildguard, llama-guard, ssp-score, triplay-eval, strongreject); exactly one of
    ``model`` (local) or ``endpoint`` (+ ``model_name``) says where it runs; remaining options go to the backend."""
    fmt = FORMATS.get(kind)
    if fmt is None:
        raise SafeplayError(f"unknown LLM judge format {kind!r}; known: {', '.join(FORMATS)}")
    if (model is None) == (endpoint is None):
        raise SafeplayError(f"judge {kind} needs exactly one of model=<local dir or spec> or endpoint=<url>")
    if endpoint is not None:
        if not model_name:
            raise SafeplayError(f"judge {kind} with endpoint= also needs model_name= (the served model's name)")
        backend: Backend = OpenAIBackend(endpoint, model_name, **options)
    else:
        backend = LocalBackend(model, **options)
    return LLMJudge(fmt, backend)
