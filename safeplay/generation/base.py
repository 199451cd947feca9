"""The ``Generator`` interface shared by every generation backend.

A backend takes a batch of chat prompts and returns, for each, the generated text, its token ids, the
per-token log-probabilities under the sampling policy (before temperature/top-p truncation is applied
to the *reported* value: we report log-probs of the untempered model distribution, so that they can
be compared with teacher-forced log-probs), and why generation stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence

from safeplay.config import check


@dataclass
class SamplingParams:
    """How one role samples its turns."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling cut (1.0 = no cut)."""
    top_k: int = 0
    """Keep only the k most likely tokens (0 = no cut)."""
    max_new_tokens: int = 128
    """Upper bound on generated tokens per turn."""
    stop: list[str] = field(default_factory=list)
    """Stop strings: generation ends right after the first one appears (it stays in the text)."""

    def __post_init__(self) -> None:
        check(self.temperature >= 0, "temperature", "must be >= 0")
        check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        check(self.top_k >= 0, "top_k", "must be >= 0")
        check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")


def logprob_temperature(sampling: SamplingParams) -> float:
    """The temperature of the distribution a sampled token's log-prob is reported under (1 for greedy)."""
    return sampling.temperature if sampling.temperature > 0 else 1.0


@dataclass
class ChatPrompt:
    """One chat conversation to continue, plus an optional assistant prefill.

    ``prefill`` is text appended after the chat template's assistant header (Self-RedTeam starts the
    answer with ``"Let's think step by step.\\n<think> "``); it is part of the prompt, not the completion.
    """

    messages: list[dict[str, str]]
    prefill: str = ""


FinishReason = Literal["stop", "length", "eos"]


@dataclass
class Completion:
    """One generated continuation."""

    text: str
    """Decoded completion (prefill excluded, special tokens dropped)."""
    prompt_ids: list[int]
    """Token ids of the fully rendered prompt (template + prefill)."""
    token_ids: list[int]
    """Generated token ids (EOS included when generation ended on it)."""
    logprobs: list[float]
    """Log-probability of each generated token under the distribution it was sampled from: the policy's softmax
    at the sampling temperature (temperature 1 for greedy decoding), before any top-p/top-k truncation. A learner
    that scores the same tokens at the same temperature (``RoleSample.temperature``) gets the same values."""
    finish_reason: FinishReason
    """``eos``: the model ended; ``stop``: a stop string matched; ``length``: max_new_tokens reached."""
    sampled: bool = True
    """True when ``token_ids`` were sampled token by token from the policy, so ``logprobs`` are the behaviour
    policy's own (a trainer may use them as PPO's "old" log-probs); False for answers picked another way."""
    temperature: float = 1.0
    """The temperature ``logprobs`` are taken at (1.0 for greedy decoding)."""


class Generator(Protocol):
    """Anything that turns chat prompts into completions."""

    def generate(
        self,
        prompts: Sequence[ChatPrompt],
        sampling: SamplingParams,
        seed: int | None = None,
    ) -> list[Completion]:
        """Complete every prompt; the same seed and inputs give the same outputs."""
        ...
