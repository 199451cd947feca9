"""The validation set levers are compared on: held-out training seeds, plain and in held-out jailbreak frames.

WildJailbreak's evaluation prompts are the defender's test set: no setting may be chosen by looking at them. So
settings are compared on a validation set built from other sources — seeds of the training sources that no run
trains on, shown as they are and set in ``safeplay.game.frames.VALIDATION_FRAMES`` (frames no training stage
uses) — and the test set is scored once per finished run.

A seed is held out when a hash of its normalised text falls in one tenth of the hash space: the split is the
same for every run, seed and config. Held-out seeds are excluded from training because these sets are safety
benchmarks: every training-seed loader drops prompts that near-duplicate a benchmark prompt.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from safeplay.errors import SafeplayError

HOLDOUT_MODULUS = 10
"""A seed is held out when crc32(normalised text) % HOLDOUT_MODULUS == 0 (10% of each source)."""
PER_CLASS = 96
"""Held-out seeds per class in the validation set."""
HARMFUL_SOURCES = ("wjb_harmful", "advbench", "harmbench_val")
"""Harmful sources of the validation set (the contextual ones are left out: their long context is another test)."""
BENIGN_SOURCES = ("wjb_benign", "alpaca_train", "or_hard")


def _hash(text: str) -> int:
    from safeplay.data.near_dup import normalise

    return zlib.crc32(normalise(text).encode("utf-8"))


def is_held_out(text: str) -> bool:
    return _hash(text) % HOLDOUT_MODULUS == 0


def held_out_seeds(data_dir: Path, harmful: bool) -> list[str]:
    """The class's held-out seed texts: ``PER_CLASS`` of them, in hash order (stable), without duplicates."""
    from safeplay.data.near_dup import normalise
    from safeplay.data.seed_sources import read_source

    seen: dict[str, str] = {}
    for name in HARMFUL_SOURCES if harmful else BENIGN_SOURCES:
        for s in read_source(name, data_dir):
            norm = normalise(s.text)
            if norm and norm not in seen and is_held_out(s.text):
                seen[norm] = s.text
    texts = sorted(seen.values(), key=_hash)
    return texts[:PER_CLASS]


def validation_items(harmful: bool, framed: bool):
    """Benchmark items of one validation set (see ``safeplay.data.benchmarks``: ``val-*``)."""
    from safeplay import paths
    from safeplay.data.benchmark_types import BenchmarkItem
    from safeplay.game.frames import VALIDATION_FRAMES, fill

    root = paths.data_dir()
    if root is None:
        raise SafeplayError("the validation sets are built from the training sources: set SAFEPLAY_DATA_DIR")
    items = []
    for i, text in enumerate(held_out_seeds(Path(root), harmful)):
        prompt = fill(VALIDATION_FRAMES[_hash(text) % len(VALIDATION_FRAMES)], text) if framed else text
        items.append(BenchmarkItem(id=str(i), prompt=prompt, harmful=harmful,
                                   category="framed" if framed else "plain", extra={"seed": text}))
    return items
