"""The Ray executor: generation shards on rollout actors, judge chunks on judge actors, the learner in the driver.

Flow of one step: the driver (which trains) has published its weights as a versioned ``WeightSnapshot`` in the
object store; each shard is sent to a rollout actor (round-robin) together with the version and a reference to
the snapshot, and an actor whose loaded version is older pulls it first. Results are gathered by shard index.

Fault tolerance: actors are created with ``max_restarts`` and no automatic task retries. When an actor dies while
it runs a shard (killed, out of memory, node lost), Ray restarts it; the driver waits until the restarted actor
answers (calls sent while it restarts fail at once) and re-sends that shard — once per death, up to
``max_restarts`` times — to it; the new process pulls the current snapshot before generating.
A result is accepted once per shard index, so a step's games are neither lost nor counted twice. An exception
raised *inside* a shard (a judge timing out, a bug) is not retried here: it reaches the trainer, which counts
the step as skipped, as in a single-process run.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from safeplay.distributed.actors import JudgeWorker, RolloutWorker
from safeplay.distributed.config import RolloutConfig
from safeplay.distributed.weights import snapshot
from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, Completion, SamplingParams
from safeplay.judges.base import JudgeItem, Verdict

log = logging.getLogger("safeplay")

ENV_VARS = ("SAFEPLAY_DATA_DIR", "SAFEPLAY_CACHE", "SAFEPLAY_JUDGE_API_KEY", "HF_HOME", "HF_HUB_OFFLINE")
"""Environment the workers need to find data, caches and keys (a local cluster inherits it anyway)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SafeplayError("--distributed ray needs Ray: pip install 'safeplay[ray]'") from None
    return ray


def connect(address: str | None = None) -> bool:
    """Join the cluster at ``address`` (None: start a local one); False when Ray was already initialised here."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    env = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": env} if env else None)
    except ConnectionError as e:
        raise SafeplayError(f"cannot reach the Ray cluster at {address}: {e}") from None
    return True


class RayExecutor:
    """Runs shards on Ray actors (see the module docstring). ``spec`` tells actors how to build their copies."""

    def __init__(self, rollout: RolloutConfig, spec: Any, address: str | None = None):
        self.ray = ray = import_ray()
        self.owns_ray = connect(address)
        self.max_restarts = rollout.max_restarts
        self.restart_timeout = rollout.restart_timeout_s
        cpus = ray.cluster_resources().get("CPU", 0)
        if rollout.workers > cpus:
            if self.owns_ray:
                ray.shutdown()
            raise SafeplayError(f"rollout.workers={rollout.workers} needs one CPU each, the Ray cluster has {cpus:g}")
        opts = dict(max_restarts=rollout.max_restarts, max_task_retries=0)
        worker_cls = ray.remote(num_cpus=1, num_gpus=rollout.worker_gpus, **opts)(RolloutWorker)
        # Judge actors mostly wait for a batch; they hold no CPU reservation so they fit beside the rollout actors.
        judge_cls = ray.remote(num_cpus=0, num_gpus=rollout.judge_gpus, **opts)(JudgeWorker)
        self.workers = [worker_cls.remote(spec, rollout.worker_threads) for _ in range(rollout.workers)]
        self.judges = [judge_cls.remote(spec, 1) for _ in range(rollout.judge_workers)]
        try:
            self.worker_pids = ray.get([w.ready.remote() for w in self.workers])
            self.judge_pids = ray.get([j.ready.remote() for j in self.judges])
        except ray.exceptions.RayActorError as e:  # the model or judge failed to build inside an actor
            self.close()
            cause = str(getattr(e, "cause", None) or e).strip().splitlines()
            raise SafeplayError(f"a Ray actor failed to start: {cause[-1] if cause else e}") from None
        self.version = 0
        self.box: list | None = None
        self.counts = {"shards": 0, "judge_chunks": 0, "retried": 0}
        log.info("ray: %d rollout actors (%d torch threads each), %d judge actors", len(self.workers),
                 rollout.worker_threads, len(self.judges))

    # -- weights ------------------------------------------------------------------------------------------

    def publish(self, policies: Any) -> None:
        self.version += 1
        self.box = [self.ray.put(snapshot(policies, self.version))]

    # -- dispatch -----------------------------------------------------------------------------------------

    def _run(self, actors: list, method: str, calls: list[tuple]) -> list:
        """Call ``method`` with ``calls[i]`` on ``actors[i % n]``; re-send a call whose actor died."""
        ray = self.ray
        pending: dict[Any, tuple[int, int]] = {}  # ref -> (call index, times re-sent)
        for i, args in enumerate(calls):
            pending[getattr(actors[i % len(actors)], method).remote(*args)] = (i, 0)
        results: list = [None] * len(calls)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, resent = pending.pop(ref)
            try:
                results[i] = ray.get(ref)  # the only place a result is taken: once per call index
            except ray.exceptions.RayActorError as e:
                # The call's result is gone with its process (whether or not it had started), so it is run again.
                if resent >= self.max_restarts:
                    raise SafeplayError(f"a {method} actor died {resent + 1} times on one shard; last: {e}") from None
                actor = actors[i % len(actors)]
                self._wait_restarted(actor, method)
                self.counts["retried"] += 1
                log.warning("%s actor died on shard %d (%s); re-running the shard on the restarted actor",
                            method, i, type(e).__name__)
                pending[getattr(actor, method).remote(*calls[i])] = (i, resent + 1)
        return results

    def _wait_restarted(self, actor: Any, method: str) -> None:
        """Block until Ray has restarted ``actor`` (rebuilt its model); calls sent before then fail at once."""
        ray = self.ray
        deadline = time.monotonic() + self.restart_timeout
        while True:
            try:
                ray.get(actor.ready.remote(), timeout=max(1.0, deadline - time.monotonic()))
                return
            except ray.exceptions.ActorUnavailableError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # still restarting
            except ray.exceptions.GetTimeoutError:
                break
            except ray.exceptions.ActorDiedError as e:
                raise SafeplayError(f"a {method} actor died for good (rollout.max_restarts used up): {e}") from None
        raise SafeplayError(f"a {method} actor did not come back within {self.restart_timeout:g}s "
                            "(rollout.restart_timeout_s)")

    def generate(
        self, role: str, shards: list[list[ChatPrompt]], sampling: SamplingParams, seeds: list[int | None]
    ) -> list[list[Completion]]:
        if self.box is None:
            raise SafeplayError("no weights published to the rollout workers yet")
        self.counts["shards"] += len(shards)
        calls = [(self.version, self.box, role, shard, sampling, seed) for shard, seed in zip(shards, seeds)]
        return self._run(self.workers, "generate", calls)

    def judge(self, chunks: list[list[JudgeItem]]) -> list[list[Verdict]]:
        self.counts["judge_chunks"] += len(chunks)
        return self._run(self.judges, "judge", [(chunk,) for chunk in chunks])

    def stats(self) -> dict[str, float]:
        return {f"rollout/{k}": float(v) for k, v in self.counts.items()}

    def close(self) -> None:
        for actor in getattr(self, "workers", []) + getattr(self, "judges", []):
            self.ray.kill(actor, no_restart=True)
        self.workers, self.judges = [], []
        if self.owns_ray:
            self.ray.shutdown()

