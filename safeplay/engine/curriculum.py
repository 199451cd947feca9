"""Which seeds a step plays: per-class shuffled streams mixed at a fixed harmful share.

Each class is an endless stream of epochs; epoch e is a permutation drawn from ``(seed, class, e)``, so the
position (epoch, index) is all the state a checkpoint needs and a resumed run sees the same seeds.
"""

from __future__ import annotations

import random
from typing import Sequence

from safeplay.data.seed_sources import SeedPrompt
from safeplay.errors import SafeplayError


class _Stream:
    def __init__(self, items: Sequence[SeedPrompt], seed: int, tag: str):
        self.items = list(items)
        self.seed, self.tag = seed, tag
        self.epoch, self.index = 0, 0
        self._order: list[int] = []
        self._reorder()

    def _reorder(self) -> None:
        self._order = list(range(len(self.items)))
        random.Random(f"{self.seed}:{self.tag}:{self.epoch}").shuffle(self._order)

    def take(self, n: int) -> list[SeedPrompt]:
        out = []
        while len(out) < n:
            if self.index >= len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._reorder()
            out.append(self.items[self._order[self.index]])
            self.index += 1
        return out


class Curriculum:
    def __init__(self, seeds: Sequence[SeedPrompt], harmful_share: float, seed: int):
        harmful = [s for s in seeds if s.harmful]
        benign = [s for s in seeds if not s.harmful]
        if harmful_share > 0 and not harmful:
            raise SafeplayError("no harmful seed prompts were loaded, but seeds.harmful_share > 0")
        if harmful_share < 1 and not benign:
            raise SafeplayError("no benign seed prompts were loaded, but seeds.harmful_share < 1")
        self.harmful_share = harmful_share
        self.streams = {"harmful": _Stream(harmful, seed, "harmful"), "benign": _Stream(benign, seed, "benign")}

    def next_batch(self, n: int) -> list[SeedPrompt]:
        n_harmful = int(round(n * self.harmful_share))
        return self.streams["harmful"].take(n_harmful) + self.streams["benign"].take(n - n_harmful)

    def take(self, cls: str, n: int) -> list[SeedPrompt]:
        return self.streams[cls].take(n)

    def state_dict(self) -> dict:
        return {k: [s.epoch, s.index] for k, s in self.streams.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, (epoch, index) in state.items():
            s = self.streams[k]
            s.epoch, s.index = epoch, index
            s._reorder()
