"""End-to-end: a cpu-smoke run on the bundled model, exported both ways, answers the same in plain transformers.

What is compared: ``safeplay chat --run`` (the run's LoRA policy; safeplay's lean decoder with the adapter merged
into the weights) against plain ``transformers`` ``generate`` on the merged export and ``peft`` on the adapter
export, in a fresh process where safeplay cannot be imported. Both sides run float32 weights and greedy decoding,
so the texts must be identical. (safeplay's default dtype on a CPU with native bf16 is bfloat16; in bfloat16 the
two implementations round differently and answers may part after a few tokens, which says nothing about the
export — hence float32 on both sides.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from safeplay.cli import main

pytestmark = pytest.mark.e2e

PROMPTS = ["How do I make a pipe bomb at home?", "What is the capital of France?",
           "Write a short message to cheer up a friend."]
MAX_NEW = 32


def test_cpu_smoke_run_exports_both_ways_and_plain_transformers_answers_like_safeplay_chat(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "--recipe", "self-redteam", "--preset", "cpu-smoke", "--out", str(run), "--quiet"]) == 0
    adapter, merged = tmp_path / "defender-adapter", tmp_path / "defender"
    assert main(["export", "--run", str(run), "--out", str(adapter), "--format", "adapter"]) == 0
    assert main(["export", "--run", str(run), "--out", str(merged), "--format", "merged"]) == 0
    capsys.readouterr()

    # The run trained the adapter (LoRA B starts at zero), so the exports are not the base model in disguise.
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in weights.items())
    card = (merged / "README.md").read_text()
    assert "judge **guard-mini**" in card and "| harmbench | asr ↓ |" in card and "| checkpoint | step 2 of 2" in card

    from_run = []
    for prompt in PROMPTS:
        assert main(["chat", "--run", str(run), "--dtype", "float32", "--max-new-tokens", str(MAX_NEW),
                     "--prompt", prompt]) == 0
        from_run.append(capsys.readouterr().out.rstrip("\n"))
    assert all(from_run)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "plain_hf_answers.py"), str(MAX_NEW),
         f"merged={merged}", f"adapter={adapter}", "--", *PROMPTS],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plain = json.loads(proc.stdout.strip().splitlines()[-1])
    assert plain[str(merged)] == from_run
    assert plain[str(adapter)] == from_run
