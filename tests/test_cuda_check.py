"""The GPU check script's CPU-safe parts: its larger model's size, the training-throughput section, the clean skip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cuda_check  # noqa: E402


def test_the_larger_model_is_the_same_family_above_half_a_billion_parameters(tiny_model_dir, tmp_path):
    out = cuda_check.big_model(tiny_model_dir, tmp_path, "cpu")  # on the CPU: its size only, from a weightless build
    assert 5e8 <= out["params"] < 1e9 and "skipped" in out
    config = json.loads((tmp_path / "big-config" / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] == json.loads(
        (tiny_model_dir / "config.json").read_text())["vocab_size"]


def test_training_throughput_section_runs_on_the_cpu(tiny_model_dir):
    out = cuda_check.training_throughput(str(tiny_model_dir), "cpu", n_samples=8)
    assert out["train_tok_s"] > 0 and out["samples"] == 8


def test_without_a_gpu_the_script_skips_cleanly(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["cuda_check.py"])
    assert cuda_check.main() == 0
    assert "SUMMARY skipped=no-cuda" in capsys.readouterr().out
