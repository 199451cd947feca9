"""``derive_seed`` reproduces the three seed formulas it replaced (step, shard and vLLM request seeds)."""

from __future__ import annotations

import zlib

import pytest

from safeplay.distributed.shards import shard_seed
from safeplay.generation.vllm import request_seed
from safeplay.seeding import derive_seed

CASES = [(0, 0), (1, 1), (42, 3), (123, 7), (2**31 - 2, 5), (987654321, 1000)]


def old_step_seed(base: int, step: int, what: str) -> int:
    return (base * 1_000_003 + step * 7919 + zlib.crc32(what.encode())) % (2**31 - 1)


def old_shard_seed(seed: int | None, index: int) -> int | None:
    if seed is None or index == 0:
        return seed
    return (int(seed) * 1_000_003 + zlib.crc32(f"shard:{index}".encode())) % (2**31 - 1)


def old_request_seed(seed: int | None, index: int) -> int | None:
    return None if seed is None else (int(seed) * 1_000_003 + index * 7919) % (2**31 - 1)


@pytest.mark.parametrize("base,step", CASES)
@pytest.mark.parametrize("what", ["attacker", "defender", "evaluator-label", "frozen:player", ""])
def test_derive_seed_is_the_step_seed(base, step, what):
    assert derive_seed(base, step, what) == old_step_seed(base, step, what)


@pytest.mark.parametrize("seed,index", CASES)
def test_shard_and_request_seeds_keep_their_values(seed, index):
    assert shard_seed(seed, index) == old_shard_seed(seed, index)
    assert request_seed(seed, index) == old_request_seed(seed, index)
    assert derive_seed(seed, 0, f"shard:{index}") == old_shard_seed(seed, index) or index == 0
    assert derive_seed(seed, index) == old_request_seed(seed, index)
    assert shard_seed(None, index) is None and request_seed(None, index) is None


def test_derived_seeds_are_31_bit():
    assert all(0 <= derive_seed(b, s, w) < 2**31 - 1 for b, s in CASES for w in ("", "x"))
