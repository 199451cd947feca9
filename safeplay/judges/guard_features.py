"""guard-mini's prompt features: frozen all-MiniLM-L6-v2 sentence embeddings, remembered by content hash.

Prompt features (384): ``e_prompt``. (The answers are read by the cross-encoder of ``guard_cross``.)
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

DIM = 384


class Encoder:
    """Encodes texts with the shared MiniLM embedder, remembering every text it has seen (by content hash).

    The memory can be saved to / loaded from an ``.npz`` file so retraining does not re-embed the data.
    """

    def __init__(self, embedder=None) -> None:
        self._embedder = embedder
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def embedder(self):
        if self._embedder is None:
            from safeplay.rewards.diversity import Embedder

            self._embedder = Embedder.shared()  # one MiniLM per process
        return self._embedder

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        with self._lock:
            missing = list(dict.fromkeys(k for k in keys if k not in self._memo))
        if missing:
            by_key = {k: t for k, t in zip(keys, texts)}
            # Sorting by length keeps padding (and so CPU time) down inside each batch.
            order = sorted(missing, key=lambda k: len(by_key[k]))
            vecs = self.embedder.encode([by_key[k] for k in order])
            with self._lock:
                for k, v in zip(order, vecs):
                    self._memo[k] = np.asarray(v, dtype=np.float32)
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self._memo[k] for k in keys])

    def load(self, path: Path) -> None:
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self._memo.update(zip(z["keys"].tolist(), z["vecs"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._memo)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vecs=np.stack([self._memo[k] for k in keys]) if keys else np.zeros((0, DIM)))
        tmp.replace(path)

    def clear(self) -> None:
        """Forget remembered texts (inference does not need them; keeps memory flat in long runs)."""
        with self._lock:
            self._memo.clear()


def prompt_features(encoder: Encoder, prompts: Sequence[str]) -> np.ndarray:
    return encoder.encode(list(prompts)).astype(np.float32)
