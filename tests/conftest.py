"""Shared test setup: benchmark data from ``../shared/data`` unless SAFEPLAY_DATA_DIR says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_shared = REPO.parent / "shared" / "data"
if "SAFEPLAY_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["SAFEPLAY_DATA_DIR"] = str(_shared)

# Two cores are shared by everything the test session does; more threads only add contention.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def data_dir() -> Path:
    path = os.environ.get("SAFEPLAY_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("benchmark data directory not available")
    return Path(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny random model (``tiny_model(seed=0)``) with the bundled tokenizer: a model directory spec."""
    from safeplay.models.loading import tiny_model

    path = tmp_path_factory.mktemp("tiny-model")
    model, tok = tiny_model(seed=0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
