"""The expected duration printed when a run starts follows the config."""

from __future__ import annotations

from safeplay.engine.estimate import estimate
from safeplay.engine.setup import resolve_config


def test_estimate_follows_the_config():
    cfg = resolve_config("self-redteam", "cpu-demo", overrides=["eval.benchmarks=[]"])
    full = estimate(cfg)
    assert full.warm_start_min > 0 and full.rl_min > 0 and full.eval_min == 0
    assert estimate(cfg, cached_warm_start=True).warm_start_min == 0
    longer = resolve_config("self-redteam", "cpu-demo", overrides=["eval.benchmarks=[]", f"steps={cfg.steps * 2}"])
    assert abs(estimate(longer).rl_min - 2 * full.rl_min) < 1e-6
    capped = resolve_config("self-redteam", "cpu-demo", overrides=["eval.benchmarks=[]", "max_minutes=5"])
    assert estimate(capped).rl_min <= 5
    assert "expected duration: about" in full.line(False) and "reused" in full.line(True)
