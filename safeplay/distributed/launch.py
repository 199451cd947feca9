"""Pick a run's executor from the command line's ``--distributed`` and the config's ``rollout`` section."""

from __future__ import annotations

from typing import Any

from safeplay.errors import SafeplayError

BACKENDS = ("local", "ray")


def make_executor(cfg: Any, components: Any, backend: str = "local", address: str | None = None) -> Any:
    """The executor a ``Trainer`` plays through; None means the trainer's default (this process, the learner's
    own generator). The caller closes what this returns."""
    if backend not in BACKENDS:
        raise SafeplayError(f"--distributed {backend!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    if backend == "local":
        if address:
            raise SafeplayError("--ray-address needs --distributed ray")
        if cfg.rollout.generator == "vllm":
            from safeplay.distributed.local import LocalExecutor
            from safeplay.distributed.workers import build_vllm_roles

            return LocalExecutor(components.policies, components.judge, roles=build_vllm_roles(cfg))
        return None
    from safeplay.distributed.ray_backend import RayExecutor
    from safeplay.distributed.workers import ConfigWorkerSpec

    return RayExecutor(cfg.rollout, ConfigWorkerSpec(cfg), address)
