"""Bad input to any command: one clear line (no traceback), exit status 2, nothing loaded, no file or folder left.

Every documented option is walked: each config key ``safeplay train --help-config`` lists (a value of the wrong
type, and an out-of-range or unknown value where the key has a range or names something), and every flag of every
command (from the argparse parsers). A key or flag added later must get an entry here.
"""

from __future__ import annotations

import argparse
import re

import pytest

from safeplay.cli import build_parser, main
from safeplay.config import describe
from safeplay.recipes import recipe_class, recipe_names


class Loaded(AssertionError):
    """Raised by the stand-ins below: the command got past validation to real work."""


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """Work in an empty folder with every heavy step replaced by a tripwire; yields a snapshot checker."""
    import safeplay.engine.progress
    import safeplay.eval.report
    import safeplay.export
    import safeplay.judges.calibrate
    import safeplay.judges.guard_train
    import safeplay.judges.registry
    import safeplay.judges.server
    import safeplay.models
    import safeplay.models.checkpoint_io
    import safeplay.models.loading

    def trip(*a, **k):
        raise Loaded("validation let a bad value through to real work")

    for module, name in [
        (safeplay.engine.progress, "run_with_progress"), (safeplay.models.loading, "load_model"),
        (safeplay.models, "load_model"), (safeplay.judges.registry, "build_judge"),
        (safeplay.models.checkpoint_io, "load_run_policies"), (safeplay.judges.guard_train, "train_guard_mini"),
        (safeplay.judges.calibrate, "calibrate"), (safeplay.judges.server, "JudgeServer"),
        (safeplay.eval.report, "write_report"), (safeplay.export, "export_run"),
    ]:
        monkeypatch.setattr(module, name, trip)
    work = tmp_path / "work"
    work.mkdir()
    (work / "a-file.txt").write_text("not a folder")
    monkeypatch.chdir(work)
    monkeypatch.delenv("SAFEPLAY_TEST_UNSET", raising=False)

    def files() -> set[str]:
        return {str(p.relative_to(work)) for p in work.rglob("*")}

    return work, files


def one_line_error(capsys, argv: list[str], guarded) -> str:
    work, files = guarded
    before = files()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors (a value of the wrong type, an unknown choice)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, (argv, err)
    assert files() == before, (argv, files() - before)
    return lines[0]


# -- the cases users hit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    (["ablate", "--recipe", "nosuch"], "'nosuch' is not a recipe"),
    (["ablate", "--seeds", "0"], "--seeds must be >= 1"),
    (["eval", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "--resume", "--out", "typo-dir"], "not a run folder"),
    (["train", "--recipe", "triplay", "--set", "triplay.defender_weights=[1]"], "triplay.defender_weights"),
    (["train", "--set", "triplay.defender_weights=[1]"], "triplay.defender_weights"),
])
def test_reported_cases(capsys, guarded, argv, expected):
    assert expected in one_line_error(capsys, argv, guarded)
    assert not (guarded[0] / "typo-dir").exists() and not (guarded[0] / "runs").exists()


def test_ablate_with_zero_seeds_writes_no_ablation_json(capsys, guarded):
    one_line_error(capsys, ["ablate", "--seeds", "0", "--out", "abl"], guarded)
    assert not (guarded[0] / "abl").exists()


# -- every config key ------------------------------------------------------------------------------------------

OUT_OF_RANGE = {
    "steps": "-1", "batch_size": "0", "max_minutes": "0", "checkpoint_every": "0", "keep_checkpoints": "0",
    "policy.lora_r": "0", "policy.lora_alpha": "0", "policy.lora_dropout": "1",
    "rl.group_size": "0", "rl.kl_beta": "-1", "rl.gamma": "0", "rl.reward_clip": "0", "rl.clip_eps": "0",
    "rl.minibatches": "0", "rl.micro_batch_size": "0", "rl.micro_batch_tokens": "-1", "rl.aux_sft_coef": "-1",
    "rl.aux_sft_batch": "0", "rl.fused_max_tokens": "-1",
    "optim.lr": "0", "optim.weight_decay": "-1", "optim.grad_clip": "-1", "optim.warmup_ratio": "1",
    "optim.min_lr_ratio": "2", "game.tactics_top_k": "0",
    **{f"{role}.{k}": v for role in ("attacker", "defender", "evaluator")
       for k, v in (("temperature", "-1"), ("top_p", "0"), ("top_k", "-1"), ("max_new_tokens", "0"))},
    "judge.max_failures": "0", "seeds.harmful_share": "2", "seeds.attack_share": "-0.5", "seeds.max_per_class": "0",
    "warm_start.harmful_prompts": "-1", "warm_start.benign_prompts": "-1", "warm_start.wrapped_share": "2",
    "warm_start.contextual_share": "2", "warm_start.hard_benign_share": "-1", "warm_start.benign_wrapped_share": "2",
    "warm_start.distill_samples": "0", "warm_start.attacker_pairs": "-1", "warm_start.evaluator_examples": "-1",
    "warm_start.epochs": "0", "warm_start.lr": "0", "warm_start.batch_size": "0", "warm_start.max_new_tokens": "0",
    "eval.every": "-1", "eval.limit": "0", "eval.max_new_tokens": "0",
    "ssp.replay_share": "2", "ssp.pool_cap": "0", "ssp.ucb_c": "-1", "ssp.min_visits": "-1", "ssp.benign_share": "2",
    "triplay.semantic_reward": "-1", "triplay.diversity_k": "0", "triplay.diversity_max": "0", "triplay.pool_cap": "0",
    "log.diversity_every": "-1",
    "rollout.shard_size": "0", "rollout.judge_chunk": "0", "rollout.workers": "0", "rollout.worker_threads": "0",
    "rollout.worker_gpus": "-1", "rollout.judge_workers": "0", "rollout.judge_gpus": "-1",
    "rollout.max_restarts": "-1", "rollout.restart_timeout_s": "0",
    "rollout.vllm.gpu_memory_utilization": "0", "rollout.vllm.tensor_parallel_size": "0",
    "rollout.vllm.max_model_len": "8", "rollout.vllm.max_loras": "0",
    "rl.attack_group_size": "0", "rl.dpo_beta": "0", "warm_start.attacker_pair_share": "2", "eval.batch_size": "0",
}
"""A value outside the accepted range of every numeric key that has one."""
ANY_NUMBER = {"seed", "ssp.insert_threshold", "ssp.evict_success_threshold", "rl.rft_min_reward"}
"""Numeric keys every number is a valid setting of (a seed, reward thresholds)."""
UNKNOWN_VALUE = {
    "recipe": "nosuch", "name": "a/b", "model.spec": "/no/such/model", "model.device": "tpu",
    "policy.share": "{attacker: 9bad}", "policy.target_modules": "[]", "judge.name": "nosuch",
    "judge.options": "{nosuch: 1}", "reward_table": "nosuch", "seeds.file": "/no/such/seeds.jsonl",
    "warm_start.refusal_file": "/no/such/refusals.jsonl", "eval.benchmarks": "[nosuch]", "eval.judge": "nosuch",
    "eval.judge_options": "{nosuch: 1}", "triplay.phase_steps": "[0,0,0]", "triplay.defender_weights": "[1]",
    "triplay.frozen_defenders": "[base, /no/such/model]", "triplay.experts": "[nosuch]", "rollout.vllm.dtype": "float8",
    "optim.betas": "[0.9]", "eval.limits": "{nosuch: 3}",
}
"""A value that names nothing known (or breaks a shape rule) for every key of text, list or mapping type."""
FREE_TEXT = {"game.defender_system", "attacker.stop", "defender.stop", "evaluator.stop", "log.wandb_project",
             "log.wandb_entity", "log.mlflow_tracking_uri", "log.mlflow_experiment"}
"""Keys any text is a valid setting of (a system prompt, stop strings, tracking project names and addresses)."""


def wrong_type(tp: str) -> str:
    """A value that does not parse as ``tp`` (the type column of --help-config)."""
    if tp.startswith("'"):
        return "nosuch"  # a Literal
    if tp.startswith(("bool",)):
        return "maybe"
    if tp.startswith(("int", "float")):
        return "x"
    if tp.startswith("dict"):
        return "not-a-mapping"
    return "{a: 1}"  # str, list: a mapping fits neither


RECIPE_OF_KEY = {key: recipe for recipe in reversed(recipe_names())
                 for key, _, _, _ in describe(recipe_class(recipe).config_class)}
"""Every config key of every recipe, with a recipe that has it (the common keys: self-redteam's)."""
KEYS = sorted({(key, tp) for recipe in recipe_names() for key, tp, _, _ in describe(recipe_class(recipe).config_class)})


def argv_for(key: str, value: str) -> list[str]:
    return ["train", "--recipe", RECIPE_OF_KEY[key], "--set", f"{key}={value}", "--out", "run"]


def test_every_key_is_covered():
    for key, tp in KEYS:
        if tp.startswith(("int", "float")):
            assert key in OUT_OF_RANGE or key in ANY_NUMBER, f"{key}: add its out-of-range value"
        elif tp.startswith(("str", "list", "dict")):
            assert key in UNKNOWN_VALUE or key in FREE_TEXT, f"{key}: add an unknown value"


@pytest.mark.parametrize("key, tp", KEYS)
def test_every_key_rejects_a_wrong_type(capsys, guarded, key, tp):
    assert key in one_line_error(capsys, argv_for(key, wrong_type(tp)), guarded)


@pytest.mark.parametrize("key", sorted({**OUT_OF_RANGE, **UNKNOWN_VALUE}))
def test_every_key_rejects_a_bad_value(capsys, guarded, key):
    value = OUT_OF_RANGE.get(key, UNKNOWN_VALUE.get(key))
    assert key in one_line_error(capsys, argv_for(key, value), guarded)


# -- every flag of every command ---------------------------------------------------------------------------------

NO_VALUE = {"--version", "train --resume", "train --help-config", "train --quiet", "eval --cot", "ablate --no-report",
            "chat --prompt", "chat --system", "export --force"}
"""Flags with no value to get wrong (switches; free text). ``train --resume`` is walked by test_reported_cases."""
BAD_FLAGS = {
    "train --recipe": ["--recipe", "nosuch"], "train --preset": ["--preset", "nosuch"],
    "train --config": ["--config", "/no/such.yaml"], "train --set": ["--set", "nosuch=1"],
    "train --out": ["--out", "a-file.txt"], "train --name": ["--name", "a/b"],
    "train --distributed": ["--distributed", "nosuch"], "train --ray-address": ["--ray-address", "auto"],
    "eval --model": ["--model", "/no/such/model"], "eval --run": ["--run", "/no/such/run"],
    "eval --rejudge": ["--rejudge", "/no/such/eval"], "eval --step": ["--step", "-1"],
    "eval --benchmarks": ["--benchmarks", "nosuch"], "eval --judge": ["--judge", "nosuch"],
    "eval --option": ["--option", "nosuch=1"],
    "eval --limit": ["--limit", "0"], "eval --seed": ["--seed", "x"], "eval --out": ["--out", "a-file.txt"],
    "eval --max-new-tokens": ["--max-new-tokens", "0"], "eval --batch-size": ["--batch-size", "0"],
    "eval --dtype": ["--dtype", "float8"], "eval --device": ["--device", "tpu"],
    "eval --compare": ["--compare", "/no/such/model"],
    "report path": ["/no/such/run"], "report --out": [".", "--out", "."],
    "ablate --recipe": ["--recipe", "nosuch"], "ablate --preset": ["--preset", "nosuch"],
    "ablate --arms": ["--arms", "self-play,nosuch"], "ablate --seeds": ["--seeds", "0"],
    "ablate --benchmarks": ["--benchmarks", "nosuch"], "ablate --limit": ["--limit", "0"],
    "ablate --set": ["--set", "nosuch=1"], "ablate --out": ["--out", "a-file.txt"],
    "chat --role": ["--role", "nosuch"], "chat --model": ["--model", "/no/such/model"],
    "chat --run": ["--run", "/no/such/run"], "chat --adapter": ["--adapter", "/no/such/adapter"],
    "chat --step": ["--step", "-1"], "chat --temperature": ["--temperature", "-1"],
    "chat --max-new-tokens": ["--max-new-tokens", "0"], "chat --seed": ["--seed", "x"],
    "chat --dtype": ["--dtype", "float8"], "chat --device": ["--device", "tpu"],
    "judge train --out": ["--out", "a-file.txt"], "judge train --seed": ["--seed", "x"],
    "judge calibrate --judge": ["--judge", "nosuch"], "judge calibrate --option": ["--option", "nosuch=1"],
    "judge calibrate --out": ["--out", "."], "judge calibrate --limit": ["--limit", "0"],
    "judge calibrate --seed": ["--seed", "x"], "judge calibrate --compare": ["--compare", "/no/such/weights"],
    "judge serve --judge": ["--judge", "nosuch"], "judge serve --option": ["--option", "nosuch=1"],
    "judge serve --host": ["--host", "not a host!"], "judge serve --port": ["--port", "99999"],
    "judge serve --max-batch": ["--max-batch", "0"], "judge serve --max-wait-ms": ["--max-wait-ms", "-1"],
    "judge serve --api-key-env": ["--api-key-env", "SAFEPLAY_TEST_UNSET"],
    **{f"export {flag}": ["--run", "/no/such/run", "--out", "exp", flag, value] for flag, value in (
        ("--format", "nosuch"), ("--step", "-1"), ("--role", "nosuch"), ("--dtype", "float8"),
        ("--push-to-hub", "not a repo!"))},
    "export --run": ["--out", "exp", "--run", "/no/such/run"],
    "export --out": ["--run", "/no/such/run", "--out", "a-file.txt"],
    "export --private": ["--run", "/no/such/run", "--out", "exp", "--private"],
}


def _flags(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _flags(sub, prefix + (name,))
        elif not isinstance(action, argparse._HelpAction):
            out.append(" ".join(prefix + (action.option_strings[0] if action.option_strings else action.dest,)))
    return out


FLAGS = _flags(build_parser())


def test_every_flag_is_covered():
    for flag in FLAGS:
        assert flag in BAD_FLAGS or flag in NO_VALUE, f"{flag}: add a bad value"


@pytest.mark.parametrize("flag", sorted(BAD_FLAGS))
def test_every_flag_rejects_a_bad_value(capsys, guarded, flag):
    command = flag.rsplit(" ", 1)[0].split()
    line = one_line_error(capsys, command + BAD_FLAGS[flag], guarded)
    name, value = flag.rsplit(" ", 1)[1], BAD_FLAGS[flag][-1]
    assert name.lstrip("-") in line or any(part in line for part in re.split("[=,]", value)), line


def test_eval_passes_judge_options_to_the_judge(guarded, monkeypatch):
    import safeplay.judges.registry

    seen = {}

    def build(name, **options):
        seen.update(name=name, **options)
        raise Loaded("built")

    monkeypatch.setattr(safeplay.judges.registry, "build_judge", build)
    with pytest.raises(Loaded):
        main(["eval", "--judge", "strongreject", "-o", "endpoint=http://127.0.0.1:9", "-o", "model_name=grader",
              "--benchmarks", "strongreject-small", "--limit", "2"])
    assert seen == {"name": "strongreject", "endpoint": "http://127.0.0.1:9", "model_name": "grader"}
