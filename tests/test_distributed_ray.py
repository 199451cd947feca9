"""The Ray backend on a local 2-CPU cluster: the same games and weights as a single-process run, and a worker
killed mid-step whose shard is re-done exactly once. Skipped when Ray is not installed (``safeplay[ray]``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

from fakes import TinyWorkerSpec, make_cfg, make_trainer, strip_times, weights  # noqa: E402
from safeplay.distributed.ray_backend import RayExecutor  # noqa: E402

TESTS = Path(__file__).resolve().parent
ROLES = ["attacker", "defender"]


@pytest.fixture(scope="module")
def cluster():
    # Workers import the test helpers (fakes) and this checkout of safeplay, whatever is installed.
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def executor(cluster, tmp_path_factory):
    """Two rollout actors and a judge actor, shared by the tests (actor start-up is the slow part)."""
    files = tmp_path_factory.mktemp("workers")
    cfg = cfg_for_ray()
    ex = RayExecutor(cfg.rollout, TinyWorkerSpec(cfg, ROLES, log=str(files / "shards.log"), kill=str(files / "kill")))
    ex.files = files
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The single-process run both tests compare against."""
    return run(tmp_path_factory.mktemp("local"), cfg_for_ray(), "local")


def cfg_for_ray():
    # 4 seeds a step, shards of 2 prompts, judge chunks of 3: every step spreads over both workers.
    return make_cfg(**{"steps": 2, "rollout.shard_size": 2, "rollout.judge_chunk": 3, "rollout.workers": 2,
                       "rollout.max_restarts": 2})


def run(tmp_path, cfg, name, executor=None):
    tr = make_trainer(tmp_path, cfg, name=name, executor=executor)
    tr.fit()
    return tr


def drop_rollout_stats(rows):
    return [{k: v for k, v in r.items() if not k.startswith("rollout/")} for r in strip_times(rows)]


def assert_same_run(local, dist):
    """Exact: the same games (texts, token choices, verdicts, rewards) and metrics; weights to 1e-6 (fp32 CPU)."""
    assert dist.run.games.rows() == local.run.games.rows()
    assert drop_rollout_stats(dist.run.metrics.rows()) == drop_rollout_stats(local.run.metrics.rows())
    for k, v in weights(local).items():
        assert torch.allclose(v, weights(dist)[k], atol=1e-6), k


def test_ray_run_equals_single_process(tmp_path, executor, local):
    dist = run(tmp_path, cfg_for_ray(), "ray", executor)
    pids = set(executor.worker_pids)
    assert len(pids) == 2 and os.getpid() not in pids  # shards really ran in two other processes
    assert_same_run(local, dist)
    rows = [r for r in dist.run.metrics.rows() if r["kind"] == "train"]
    assert all(r["rollout/shards"] >= 2 and r["rollout/retried"] == 0 for r in rows)


def test_worker_killed_mid_step_is_restarted_and_its_shard_redone_once(tmp_path, executor, local):
    log, kill = executor.files / "shards.log", executor.files / "kill"
    log.unlink(missing_ok=True)
    kill.write_text("armed")
    dist = run(tmp_path, cfg_for_ray(), "ray", executor)
    assert not kill.exists() and Path(str(kill) + ".fired").exists()  # the crash happened
    assert_same_run(local, dist)  # nothing lost, nothing counted twice

    lines = [ln.split() for ln in log.read_text().splitlines()]
    started = [(role, seed) for what, role, seed, _ in lines if what == "start"]
    done = [(role, seed) for what, role, seed, _ in lines if what == "done"]
    assert len(done) == len(set(done))  # every shard finished exactly once
    crashed = [s for s in set(started) if started.count(s) == 2]
    assert len(crashed) == 1 and crashed[0][0] == "defender" and crashed[0] in done  # re-done once, on a new process
    assert len(started) == len(done) + 1
    pids = [pid for what, role, seed, pid in lines if what == "start" and (role, seed) == crashed[0]]
    assert pids[0] != pids[1]  # the second attempt ran in the restarted process
    retried = sum(r.get("rollout/retried", 0) for r in dist.run.metrics.rows() if r["kind"] == "train")
    assert retried == 1
