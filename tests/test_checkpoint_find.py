"""One checkpoint finder for the trainer's resume and for reading a run's policies: which folder each picks."""

from __future__ import annotations

import pytest

from safeplay.engine.checkpoint import find_checkpoint
from safeplay.errors import SafeplayError
from safeplay.models.checkpoint_io import find_step_dir


def make(root, name, roles=True, state=True):
    folder = root / "checkpoints" / name
    folder.mkdir(parents=True)
    if roles:
        (folder / "roles").mkdir()
    if state:
        (folder / "state.json").write_text("{}")
    return folder


def test_resume_and_run_readers_pick_their_folders(tmp_path):
    ckpts = tmp_path / "checkpoints"
    assert find_checkpoint(ckpts) is None
    with pytest.raises(SafeplayError, match="has no checkpoints"):
        find_step_dir(tmp_path)
    two = make(tmp_path, "step_2")
    ten = make(tmp_path, "step_10")
    only_weights = make(tmp_path, "step_12", state=False)  # no trainer state: readable, not resumable
    only_state = make(tmp_path, "step_11", roles=False)
    make(tmp_path, ".tmp_step_20")
    make(tmp_path, "step_x")
    assert find_checkpoint(ckpts) == only_state
    assert find_checkpoint(ckpts, 2) == two and find_checkpoint(ckpts, 10) == ten
    assert find_step_dir(tmp_path) == only_weights
    assert find_step_dir(tmp_path, 10) == ten
    with pytest.raises(SafeplayError, match="no checkpoint for step 12; have 2, 10, 11"):
        find_checkpoint(ckpts, 12)
    with pytest.raises(SafeplayError, match="no checkpoint for step 11; have 2, 10, 12"):
        find_step_dir(tmp_path, 11)
