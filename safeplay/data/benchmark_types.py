"""What a benchmark is: ``BenchmarkItem`` (one evaluation prompt), ``BenchmarkSpec`` (a registered set: its files,
where they were published, how it is loaded and scored) and the metric kinds the evaluation harness applies.
The registry itself is ``data.benchmarks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from safeplay.data.checksums import SHA256
from safeplay.data.sources import Source

MetricKind = Literal["harm-asr", "compliance-asr", "refusal", "benign-compliance", "strongreject", "labelled", "gsm8k",
                     "mmlu"]
"""How the harness scores a benchmark (``safeplay.eval.metrics.score_safety`` documents each)."""

@dataclass
class BenchmarkItem:
    """One evaluation prompt."""

    id: str
    prompt: str
    harmful: bool | None
    """Whether the prompt asks for something harmful (None for capability sets)."""
    category: str
    extra: dict[str, Any] = field(default_factory=dict)
    """Per-benchmark fields (reference answers, choices, source behaviour, …)."""


Resolve = Callable[[str], Path]


@dataclass(frozen=True)
class BenchmarkSpec:
    """What a benchmark is and where its files come from."""

    name: str
    description: str
    metric: MetricKind
    source: str
    """Where the files were published (repository or package page)."""
    urls: dict[str, Source]
    """Published file path (relative to the data directory) → public download location."""
    loader: Callable[[Resolve], list[BenchmarkItem]]
    safety: bool = True
    """A held-out safety evaluation set (its prompts are excluded from training seeds)."""

    @property
    def files(self) -> list[str]:
        return list(self.urls)

    @property
    def sha256(self) -> dict[str, str]:
        return {rel: SHA256[rel] for rel in self.urls}
