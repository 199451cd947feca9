"""Checks of a training config that need more than its types and ranges, done before anything heavy.

``TrainConfig`` rejects wrong types and out-of-range values as it is read. What it cannot see — that a seed file
parses, that a model directory or a judge name exists, that a judge takes the options it is given — would
otherwise surface only after the base model has loaded (tens of seconds) and a run folder has been made.
:func:`preflight` checks all of it from names and files alone: no weights are read and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from safeplay.engine.config import TrainConfig
from safeplay.errors import SafeplayError

FROZEN_BUILTIN = ("base", "base-system")
"""TriPlay frozen defenders that are the base model itself (anything else is a model spec)."""


def preflight(cfg: TrainConfig) -> None:
    """Raise a one-line ``SafeplayError`` naming the setting if the run cannot start as configured."""
    from safeplay.eval.runner import check_benchmarks
    from safeplay.judges.registry import check_judge
    from safeplay.models.loading import check_model_spec
    from safeplay.paths import data_dir

    data_dir()  # a SAFEPLAY_DATA_DIR that is not a folder
    check_model_spec(cfg.model.spec, "model.spec")
    check_judge(cfg.judge.name, cfg.judge.options, "judge.name", "judge.options")
    check_judge(cfg.eval.judge, cfg.eval.judge_options, "eval.judge", "eval.judge_options")
    try:
        check_benchmarks(cfg.eval.benchmarks)  # custom sets (file:PATH) are read: a malformed one fails here
    except SafeplayError as e:
        raise SafeplayError(f"eval.benchmarks: {e}") from None
    unknown = sorted(set(cfg.eval.limits) - set(cfg.eval.benchmarks))
    if unknown:
        raise SafeplayError(f"eval.limits: {unknown[0]!r} is not one of eval.benchmarks "
                            f"({', '.join(cfg.eval.benchmarks)})")
    if cfg.seeds.file:
        from safeplay.data.seeds import load_seed_file

        if not Path(cfg.seeds.file).is_file():
            raise SafeplayError(f"seeds.file: {cfg.seeds.file} not found")
        seeds = load_seed_file(Path(cfg.seeds.file))  # names the file and row of a malformed one
        if not seeds:
            raise SafeplayError(f"seeds.file: {cfg.seeds.file} holds no seeds")
    if cfg.warm_start.refusal_file and not Path(cfg.warm_start.refusal_file).is_file():
        raise SafeplayError(f"warm_start.refusal_file: {cfg.warm_start.refusal_file} not found")
    if cfg.rollout.generator == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise SafeplayError("rollout.generator: vllm needs vLLM on a CUDA machine: pip install 'safeplay[vllm]'")
    if cfg.recipe == "triplay":
        for spec in cfg.triplay.frozen_defenders:
            if spec not in FROZEN_BUILTIN:
                check_model_spec(spec, "triplay.frozen_defenders")
        names = [Path(s.rstrip("/")).name or s for s in cfg.triplay.frozen_defenders]
        if len(set(names)) != len(names):
            raise SafeplayError(f"triplay.frozen_defenders: names must be distinct, got {names}")
        for expert in cfg.triplay.experts:
            if expert != "|":
                check_judge(expert, cfg.judge.options if expert == cfg.judge.name else {}, "triplay.experts")
