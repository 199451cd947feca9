"""Config loading: YAML layers, overrides, one-line errors naming the key."""

import pytest

from safeplay.config import ConfigError, describe, load_config
from safeplay.recipes import recipe_class, recipe_names
from safeplay.engine.setup import resolve_config


def test_recipes_and_presets_resolve():
    for recipe in ("self-redteam", "ssp", "triplay"):
        for preset in (None, "cpu-smoke", "cpu-demo", "gpu-8b", "gpu-8b-llama"):
            cfg = resolve_config(recipe, preset)
            assert cfg.recipe == recipe


@pytest.mark.parametrize("preset, model", [("gpu-8b", "Qwen/Qwen2.5-7B-Instruct"),
                                           ("gpu-8b-llama", "meta-llama/Llama-3.1-8B-Instruct")])
def test_gpu_presets(preset, model):
    cfg = resolve_config("self-redteam", preset)
    assert cfg.model.spec == model and cfg.model.device == "cuda" and cfg.model.gradient_checkpointing
    assert cfg.rollout.generator == "vllm" and cfg.judge.name == "wildguard" and "endpoint" in cfg.judge.options


def test_override_changes_nested_value_with_type():
    cfg = resolve_config("self-redteam", "cpu-smoke", overrides=["rl.kl_beta=0.05", "game.cot=false", "steps=3"])
    assert cfg.rl.kl_beta == 0.05 and cfg.game.cot is False and cfg.steps == 3


@pytest.mark.parametrize(
    "override, match",
    [
        ("rl.kl_betta=1", r"rl\.kl_betta: unknown key; known keys here: .*kl_beta"),
        ("steps=many", r"steps: expected an integer"),
        ("rl.algorithm=ppo", r"rl\.algorithm: 'ppo' is not allowed; choose one of 'reinforce_pp', 'grpo'"),
        ("game.cot=maybe", r"game\.cot: expected true or false"),
        ("reward_table=nash", r"reward_table: 'nash' is not allowed"),
        ("attacker.top_p=2", r"top_p: must be in \(0, 1\]"),
        ("novalue", r"key=value"),
    ],
)
def test_bad_values_give_one_line_errors(override, match):
    with pytest.raises(ConfigError, match=match) as e:
        resolve_config("self-redteam", overrides=[override])
    assert "\n" not in str(e.value)


def test_unknown_recipe_and_preset():
    with pytest.raises(ConfigError, match="recipe: 'nope' is not a recipe"):
        resolve_config("nope")
    with pytest.raises(ConfigError, match="preset: 'huge' is not a preset; choose one of cpu-demo, cpu-smoke"):
        resolve_config("ssp", "huge")


def test_malformed_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config("self-redteam", config_file=str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        resolve_config("self-redteam", config_file=str(listy))


@pytest.mark.parametrize("recipe", recipe_names())
def test_every_field_has_a_docstring(recipe):
    rows = describe(recipe_class(recipe).config_class)
    missing = [key for key, _, _, doc in rows if not doc]
    assert not missing, f"fields without a docstring: {missing}"


def test_load_config_round_trips_to_dict():
    from safeplay.config import to_dict

    cfg = resolve_config("triplay", "cpu-demo")
    again = load_config(type(cfg), [to_dict(cfg)])
    assert again == cfg


def test_a_run_folder_written_before_recipes_owned_their_settings_still_resumes(tmp_path):
    """Older run folders hold every recipe's section; a resumed run reads its own and drops the others."""
    import yaml

    from safeplay.config import to_dict
    from safeplay.engine.setup import load_run_config

    old = to_dict(resolve_config("self-redteam", "cpu-smoke"))
    old["ssp"] = to_dict(resolve_config("ssp"))["ssp"]
    old["triplay"] = to_dict(resolve_config("triplay"))["triplay"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    cfg = load_run_config(tmp_path / "config.yaml", ["steps=7"])
    assert cfg == resolve_config("self-redteam", "cpu-smoke", overrides=["steps=7"])
    assert not hasattr(cfg, "ssp")
