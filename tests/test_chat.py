"""``safeplay chat`` / ``safeplay models`` and run-folder loading, on a tiny model saved as a local HF folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from safeplay.cli import main
from safeplay.errors import SafeplayError
from safeplay.models import PolicyConfig, RolePolicies, load_model, tiny_model
from safeplay.models.checkpoint_io import load_run_policies

SHARE = {"attacker": "player", "defender": "player"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "model"
    model, tok = tiny_model(seed=2)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def policies_over(model_dir: Path, roles, cfg: PolicyConfig) -> RolePolicies:
    model, tok = load_model(str(model_dir), dtype="float32", device="cpu")
    return RolePolicies(model, tok, roles, cfg)


def trained(pol: RolePolicies, role: str) -> None:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in pol.trainable_parameters(role):
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)


def chat(capsys, *args: str) -> tuple[int, str]:
    rc = main(["chat", "--max-new-tokens", "8", "--dtype", "float32", "--device", "cpu", *args])
    return rc, capsys.readouterr().out


@pytest.mark.slow
def test_one_shot_prints_only_the_answer(model_dir, capsys):
    rc, out = chat(capsys, "--model", str(model_dir), "--prompt", "Hello?")
    assert rc == 0
    model, tok = load_model(str(model_dir), dtype="float32", device="cpu")
    from safeplay.generation.base import ChatPrompt, SamplingParams
    from safeplay.generation.hf import HFGenerator

    want = HFGenerator(model, tok).generate(
        [ChatPrompt([{"role": "user", "content": "Hello?"}])], SamplingParams(temperature=0, max_new_tokens=8)
    )[0]
    assert out == want.text.strip() + "\n"


@pytest.mark.slow
def test_adapter_changes_the_answer(model_dir, tmp_path, capsys):
    pol = policies_over(model_dir, ["defender"], PolicyConfig(lora_r=4))
    trained(pol, "defender")
    pol.save_role("defender", tmp_path / "adapter")
    _, base = chat(capsys, "--model", str(model_dir), "--prompt", "Hello?")
    rc, adapted = chat(capsys, "--model", str(model_dir), "--adapter", str(tmp_path / "adapter"), "--prompt", "Hello?")
    assert rc == 0 and adapted != base
    want = pol.generate("defender", [_prompt("Hello?")], _greedy())[0].text.strip()
    assert adapted == want + "\n"


def _prompt(text: str):
    from safeplay.generation.base import ChatPrompt

    return ChatPrompt([{"role": "user", "content": text}])


def _greedy():
    from safeplay.generation.base import SamplingParams

    return SamplingParams(temperature=0, max_new_tokens=8)


def write_run(run: Path, model_dir: Path, pol: RolePolicies, steps: list[int]) -> None:
    run.mkdir(parents=True)
    cfg = {
        "recipe": "self-redteam",
        "model": {"spec": str(model_dir), "dtype": "float32", "device": "cpu"},
        "policy": {"mode": pol.cfg.mode, "share": dict(pol.cfg.share), "lora_r": pol.cfg.lora_r},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    for step in steps:
        trained(pol, pol.roles[0])
        done = set()
        for role in pol.roles:  # one folder per policy, as the trainer writes them
            if pol.policy_name(role) not in done:
                done.add(pol.policy_name(role))
                pol.save_role(role, run / "checkpoints" / f"step_{step}" / "roles" / role)


@pytest.mark.slow
def test_load_run_policies_latest_and_step(model_dir, tmp_path):
    pol = policies_over(model_dir, ["attacker", "defender"], PolicyConfig(share=SHARE, lora_r=4))
    write_run(tmp_path / "run", model_dir, pol, steps=[5])
    at5 = pol.generate("defender", [_prompt("Hi")], _greedy())[0].token_ids
    write_run_more = tmp_path / "run" / "checkpoints"
    trained(pol, "attacker")
    pol.save_role("attacker", write_run_more / "step_12" / "roles" / "attacker")
    at12 = pol.generate("defender", [_prompt("Hi")], _greedy())[0].token_ids
    assert at5 != at12

    latest = load_run_policies(tmp_path / "run")
    assert latest.roles == ("attacker", "defender") and latest.policy_names() == ["player"]
    assert latest.generate("defender", [_prompt("Hi")], _greedy())[0].token_ids == at12
    early = load_run_policies(tmp_path / "run", step=5)
    assert early.generate("defender", [_prompt("Hi")], _greedy())[0].token_ids == at5
    with pytest.raises(SafeplayError, match="no checkpoint for step 7; have 5, 12"):
        load_run_policies(tmp_path / "run", step=7)


@pytest.mark.slow
def test_chat_run_and_errors(model_dir, tmp_path, capsys):
    pol = policies_over(model_dir, ["attacker", "defender"], PolicyConfig(mode="separate"))
    write_run(tmp_path / "run", model_dir, pol, steps=[3])
    rc, out = chat(capsys, "--run", str(tmp_path / "run"), "--role", "attacker", "--prompt", "Hi")
    assert rc == 0
    assert out == pol.generate("attacker", [_prompt("Hi")], _greedy())[0].text.strip() + "\n"
    assert main(["chat", "--run", str(tmp_path / "run"), "--role", "evaluator", "--prompt", "Hi"]) == 2
    assert "has no role 'evaluator'" in capsys.readouterr().err
    assert main(["chat", "--run", str(tmp_path / "nope"), "--prompt", "Hi"]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_interactive_repl(model_dir, monkeypatch, capsys):
    lines = iter(["Hello", "/reset", "", "Tell me more", "exit"])
    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: next(lines))
    rc, out = chat(capsys, "--model", str(model_dir), "--temperature", "0")
    assert rc == 0
    assert out.count("model: ") == 2

    def eof(*a, **k):
        raise EOFError

    monkeypatch.setattr("rich.prompt.Prompt.ask", eof)
    assert chat(capsys, "--model", str(model_dir))[0] == 0


def test_models_command(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "dtype  auto ->" in out and "device auto ->" in out


@pytest.mark.e2e
def test_chat_one_shot_on_the_bundled_model(capsys):
    # Exactly the documented command: default model, dtype and device.
    rc = main(["chat", "--prompt", "What is the capital of France?"])
    out = capsys.readouterr().out
    assert rc == 0 and "Paris" in out and out.count("\n") == 1
