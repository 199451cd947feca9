"""The Ray actors: rollout workers that generate shards with the latest weights, and judge workers.

Defined as plain classes and turned into Ray actors by ``ray_backend`` (``ray.remote(...)(RolloutWorker)``), so
importing this module does not need Ray and the classes can be exercised without a cluster.
"""

from __future__ import annotations

import os
from typing import Any

from safeplay.distributed.weights import apply_snapshot


class RolloutWorker:
    """Holds its own copy of the role policies; loads a new weight snapshot whenever the driver's version moved."""

    def __init__(self, spec: Any, threads: int):
        import torch

        # Ray sets OMP_NUM_THREADS=1 in workers unless told otherwise; the thread count is the config's choice.
        torch.set_num_threads(threads)
        self.engine = spec.build_engine()
        self.version = -1

    def ready(self) -> int:
        """The worker's process id, once it is built (the driver waits on this before the first step)."""
        return os.getpid()

    def _sync(self, version: int, box: list) -> None:
        if version == self.version:
            return
        import ray

        snap = ray.get(box[0])  # the ref travels inside a list so Ray does not fetch it on every call
        load = getattr(self.engine, "load_snapshot", None)
        if load is not None:
            load(snap)
        else:
            apply_snapshot(self.engine, snap)
        self.version = version

    def generate(self, version: int, box: list, role: str, prompts: list, sampling: Any, seed: int | None) -> list:
        self._sync(version, box)
        return self.engine.generate(role, prompts, sampling, seed)


class JudgeWorker:
    """Serves verdicts for chunks of judge items."""

    def __init__(self, spec: Any, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.judge_impl = spec.build_judge()

    def ready(self) -> int:
        return os.getpid()

    def judge(self, items: list) -> list:
        return self.judge_impl.judge(items)
