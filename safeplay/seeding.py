"""Seed derivation: every seed the project hands a sampler is a pure function of a base seed and where it is used.

``derive_seed(base, step, what)`` mixes a run's (or a call's) seed with a step number and a purpose label into a
non-negative 31-bit seed. Recipes seed each step's generation calls with it, the sharded policies seed each
shard of a call, and the vLLM engine seeds each request of a call. Nothing in it depends on wall time, process,
device or how many calls came before, so a run resumed from a checkpoint at step N draws the same seeds for
step N+1 as the uninterrupted run did, and replays the same games exactly.
"""

from __future__ import annotations

import zlib

SEED_MODULUS = 2**31 - 1
"""Derived seeds lie in ``[0, SEED_MODULUS)``: they fit every sampler's seed type (vLLM's included)."""


def derive_seed(base: int, step: int = 0, what: str = "") -> int:
    """The seed for (``base`` seed, ``step``, purpose ``what``), the same on every machine and in every resume.

    ``(base·1,000,003 + step·7,919 + crc32(what)) mod (2³¹ − 1)``; the crc32 of the empty purpose is 0, so
    ``derive_seed(base, step)`` mixes only the two numbers.
    """
    return (int(base) * 1_000_003 + step * 7919 + zlib.crc32(what.encode())) % SEED_MODULUS
