"""Near-duplicate detection for prompts: a comparison form of a text (``normalise``) and a MinHash-LSH index of
character 5-gram sets whose candidates are verified by exact Jaccard similarity (``NearDupIndex``). The seed
loader uses it to drop evaluation prompts and repeats from the training seeds (``data.seeds``).
"""

from __future__ import annotations

import re
import unicodedata
import zlib

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_SHINGLE = 5
_N_HASH, _BANDS = 64, 16
_PRIME = (1 << 31) - 1


def normalise(text: str) -> str:
    """Comparison form: NFKC, lower case, punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def _shingles(norm: str) -> set[int]:
    if len(norm) <= _SHINGLE:
        return {zlib.crc32(norm.encode())}
    return {zlib.crc32(norm[i : i + _SHINGLE].encode()) for i in range(len(norm) - _SHINGLE + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDupIndex:
    """MinHash-LSH index of character-shingle sets, with exact Jaccard verification of candidates."""

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold
        rng = np.random.default_rng(12345)  # fixed: hash functions are part of the method, not of the run
        self._a = rng.integers(1, _PRIME, _N_HASH, dtype=np.uint64)
        self._b = rng.integers(0, _PRIME, _N_HASH, dtype=np.uint64)
        self._sets: list[set[int]] = []
        self._buckets: dict[tuple[int, bytes], list[int]] = {}

    def _bands(self, sh: set[int]) -> list[tuple[int, bytes]]:
        x = np.fromiter((v % _PRIME for v in sh), dtype=np.uint64, count=len(sh))
        sig = ((np.outer(self._a, x) + self._b[:, None]) % _PRIME).min(axis=1)
        rows = _N_HASH // _BANDS
        return [(band, sig[band * rows : (band + 1) * rows].tobytes()) for band in range(_BANDS)]

    def query(self, norm: str) -> bool:
        """Is ``norm`` (a normalised text) a near-duplicate of anything indexed?"""
        sh = _shingles(norm)
        seen: set[int] = set()
        for key in self._bands(sh):
            for i in self._buckets.get(key, ()):
                if i not in seen:
                    seen.add(i)
                    if jaccard(sh, self._sets[i]) >= self.threshold:
                        return True
        return False

    def add(self, norm: str) -> None:
        sh = _shingles(norm)
        idx = len(self._sets)
        self._sets.append(sh)
        for key in self._bands(sh):
            self._buckets.setdefault(key, []).append(idx)
