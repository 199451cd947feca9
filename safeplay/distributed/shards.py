"""The sharded view of the policies and the judge that recipes play with.

A recipe calls ``policies.generate(role, prompts, sampling, seed)`` and ``judge.judge(items)`` as it always did.
Here each generation call is cut into shards of ``rollout.shard_size`` prompts, each with a seed derived from
(call seed, shard index) — the call seed already depends only on (run seed, step, purpose) — and each judge call
into chunks of ``rollout.judge_chunk`` items. An executor runs the shards (in this process, or on Ray actors)
and the results are put back in input order. Because the cut and the seeds never depend on where a shard runs,
a single-process run and a distributed run of the same config and seed play the same games.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, TypeVar

from safeplay.generation.base import ChatPrompt, Completion, SamplingParams
from safeplay.judges.base import JudgeItem, Verdict
from safeplay.seeding import derive_seed

T = TypeVar("T")


def split(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def shard_seed(seed: int | None, index: int) -> int | None:
    """The sampling seed of shard ``index`` of a call seeded with ``seed``.

    Shard 0 keeps the call's seed, so a call that fits in one shard samples exactly as an unsharded call would.
    """
    if seed is None or index == 0:
        return seed
    return derive_seed(seed, what=f"shard:{index}")


class Executor(Protocol):
    """Runs generation shards and judge chunks; results come back one list per shard, in shard order."""

    def generate(
        self, role: str, shards: list[list[ChatPrompt]], sampling: SamplingParams, seeds: list[int | None]
    ) -> list[list[Completion]]:
        ...

    def judge(self, chunks: list[list[JudgeItem]]) -> list[list[Verdict]]:
        ...

    def publish(self, policies: Any) -> None:
        """The trained weights changed (an update, a warm start, a resume): later shards must use them."""
        ...

    def stats(self) -> dict[str, float]:
        ...

    def close(self) -> None:
        ...


class ShardedPolicies:
    """The learner's policies as recipes see them: ``generate`` goes through the executor in shards; everything
    else (log-probs, weights, the frozen reference generator, …) is the learner's own."""

    def __init__(self, inner: Any, executor: Executor, shard_size: int):
        self.inner = inner
        self.executor = executor
        self.shard_size = shard_size

    def generate(
        self, role: str, prompts: Sequence[ChatPrompt], sampling: SamplingParams, seed: int | None = None
    ) -> list[Completion]:
        self.inner.policy_name(role)  # an unknown role fails here, not inside a worker
        if not prompts:
            return []
        shards = split(prompts, self.shard_size)
        seeds = [shard_seed(seed, i) for i in range(len(shards))]
        out = [c for shard in self.executor.generate(role, shards, sampling, seeds) for c in shard]
        if len(out) != len(prompts):
            raise RuntimeError(f"rollout returned {len(out)} completions for {len(prompts)} prompts")
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ShardedJudge:
    """The run's judge as recipes see them: ``judge`` goes through the executor in chunks."""

    def __init__(self, inner: Any, executor: Executor, chunk: int):
        self.inner = inner
        self.executor = executor
        self.chunk = chunk
        self.name = inner.name

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        if not items:
            return []
        out = [v for chunk in self.executor.judge(split(items, self.chunk)) for v in chunk]
        if len(out) != len(items):
            raise RuntimeError(f"judge {self.name} returned {len(out)} verdicts for {len(items)} items")
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
