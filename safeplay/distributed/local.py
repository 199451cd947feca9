"""The single-process executor: shards run one after another on the learner's own policies and judge."""

from __future__ import annotations

from typing import Any

from safeplay.generation.base import ChatPrompt, Completion, SamplingParams
from safeplay.judges.base import JudgeItem, Verdict


class LocalExecutor:
    """Runs every shard here. With a separate rollout engine (``roles``, e.g. vLLM), the trained weights are synced
    into it on ``publish``; by default the learner's policies generate themselves and nothing needs syncing."""

    def __init__(self, policies: Any, judge: Any, roles: Any = None):
        self.policies = policies
        self.judge_impl = judge
        self.roles = roles
        self.version = 0
        self.counts = {"shards": 0, "judge_chunks": 0, "retried": 0}

    def generate(
        self, role: str, shards: list[list[ChatPrompt]], sampling: SamplingParams, seeds: list[int | None]
    ) -> list[list[Completion]]:
        engine = self.roles if self.roles is not None else self.policies
        self.counts["shards"] += len(shards)
        return [engine.generate(role, shard, sampling, seed) for shard, seed in zip(shards, seeds)]

    def judge(self, chunks: list[list[JudgeItem]]) -> list[list[Verdict]]:
        if self.judge_impl is None:
            raise RuntimeError("this run has no judge")
        self.counts["judge_chunks"] += len(chunks)
        return [self.judge_impl.judge(chunk) for chunk in chunks]

    def publish(self, policies: Any) -> None:
        self.version += 1
        if self.roles is not None:
            from safeplay.distributed.weights import snapshot

            self.roles.load_snapshot(snapshot(policies, self.version))

    def stats(self) -> dict[str, float]:
        return {f"rollout/{k}": float(v) for k, v in self.counts.items()}

    def close(self) -> None:
        pass
