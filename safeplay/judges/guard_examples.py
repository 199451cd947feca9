"""The labelled example types of guard-mini's data and the prompt fingerprints built on them.

``ResponseExample`` (a prompt and an answer with their refusal and harm labels), ``PromptExample`` (a prompt with its
harmfulness label) and ``GuardData`` (the split's three sides, ``SPLITS``, plus the held-out augmented test sets)
are what ``guard_data.build_guard_data`` returns and the readers (``guard_sources``) and constructed examples
(``guard_swaps``) produce; ``norm`` is the whitespace- and case-blind form prompts are compared in, and
``prompt_key`` / ``training_prompt_keys`` the fingerprints weights record of the prompts they were trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class ResponseExample:
    """A (prompt, answer) pair with the labels known for it (``None`` = not labelled by this source)."""

    prompt: str
    response: str
    refusal: bool | None
    harmful: bool | None
    source: str
    group: str
    hacked: bool = False


@dataclass(frozen=True)
class PromptExample:
    """A prompt with its harmfulness label."""

    prompt: str
    harmful: bool
    source: str
    wrapped: bool = False


@dataclass
class GuardData:
    """The three sides of the split plus the held-out augmented test sets and a description of it all."""

    responses: dict[str, list[ResponseExample]]
    prompts: dict[str, list[PromptExample]]
    test_hacked: list[ResponseExample]
    test_wrapped: list[PromptExample]
    description: dict[str, Any]
    test_artifacts: list[ResponseExample] = field(default_factory=list)
    """Test side of the machine-labelled JailbreakBench artifacts (scored apart from the human labels)."""
    test_adversarial_refusals: list[ResponseExample] = field(default_factory=list)
    """Test-side jailbreak prompts paired with test-side real refusals (refusal True, harmful False)."""
    test_wrapped_styles: list[PromptExample] = field(default_factory=list)
    """Test prompts set in held-out jailbreak styles (``guard_augment``)."""
    test_off_topic: list[ResponseExample] = field(default_factory=list)
    """Test prompts followed by complying test answers to other prompts (refusal False; ``guard_augment``)."""


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def prompt_key(text: str) -> str:
    """A short fingerprint of a prompt (whitespace and case ignored): weights list the prompts they were trained on
    this way (``training_prompts`` in ``guard_mini.json``), so that calibration can leave out test prompts a judge
    has seen."""
    import hashlib

    return hashlib.sha1(norm(text).encode("utf-8")).hexdigest()[:12]


def training_prompt_keys(data: "GuardData") -> list[str]:
    """Fingerprints of the train and dev sides' plain prompts (the requests that every wrapped form is built on)."""
    return sorted({prompt_key(p.prompt) for s in ("train", "dev") for p in data.prompts[s] if not p.wrapped})
