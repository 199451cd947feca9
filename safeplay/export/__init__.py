"""Take a trained role out of a run folder, as a standard PEFT adapter or a full Hugging Face model.

``export_run`` writes, into one folder (replaced whole, never left half-written):

* ``adapter``: ``adapter_config.json`` + ``adapter_model.safetensors`` (PEFT) and the tokenizer — LoRA runs only;
* ``merged``: ``config.json``, ``model.safetensors``, ``generation_config.json`` and the tokenizer — any run;

plus ``README.md`` (the model card, ``export.card``) and ``export.json`` (what was exported from where, and the
base model as safeplay names it, so ``safeplay chat/eval --model DIR`` find the base of an adapter on any machine).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safeplay.errors import SafeplayError

FORMATS = ("adapter", "merged")
EXPORT_FILE = "export.json"


def base_location(spec: str) -> str:
    """What an adapter's ``base_model_name_or_path`` names: the bundled model's converted cache folder (plain
    transformers cannot read the GGUF-in-a-package spec), a directory's absolute path, or the hub id."""
    from safeplay.models.bundled import BUNDLED, ensure_bundled_model

    if spec == BUNDLED:
        return str(ensure_bundled_model())
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_dir() else spec


def export_run(run_dir: str | Path, out: str | Path, fmt: str = "merged", role: str = "defender",
               step: int | None = None, dtype: str | None = None, force: bool = False,
               card_target: str | None = None) -> Path:
    """Export ``role`` of the run at checkpoint ``step`` (latest when None) into ``out``; returns ``out``.

    ``dtype`` (merged only) defaults to the base model's stored dtype; ``card_target`` is what the model card's
    snippet loads (default: ``out``; a hub repo id when the folder is pushed)."""
    from safeplay import __version__
    from safeplay.export.card import model_card
    from safeplay.export.run_weights import find_role_weights

    if fmt not in FORMATS:
        raise SafeplayError(f"export format {fmt!r} is not allowed; choose adapter or merged")
    src = find_role_weights(run_dir, role, step)
    if fmt == "adapter" and src.mode != "lora":
        raise SafeplayError(f"run {src.run_dir} trained full weights (policy.mode={src.mode}): it exports "
                            "--format merged only")
    if fmt == "adapter" and dtype is not None:
        raise SafeplayError("--dtype applies to --format merged (an adapter keeps the dtype it was trained in)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise SafeplayError(f"{out} exists and is not empty; choose another --out or pass --force to replace it")
    tmp = out.with_name(f".{out.name}.exporting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        base = base_location(src.model_spec)
        if fmt == "adapter":
            from safeplay.export.adapter import write_adapter
            from safeplay.models.loading import load_tokenizer

            saved_dtype = write_adapter(src, tmp, base)
            load_tokenizer(src.model_spec).save_pretrained(str(tmp))  # AutoTokenizer reads the adapter folder too
        else:
            from safeplay.export.merged import write_merged

            saved_dtype = write_merged(src, tmp, dtype)
        info = {"format": fmt, "role": src.role, "policy": src.policy, "mode": src.mode,
                "run": str(src.run_dir.resolve()), "step": src.step, "recipe": src.config.get("recipe"),
                "base_model": src.model_spec, "base_model_path": base, "dtype": saved_dtype,
                "safeplay_version": __version__}
        (tmp / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        card = model_card(src, fmt, saved_dtype, base, card_target or str(out))
        (tmp / "README.md").write_text(card, encoding="utf-8")
        # Some writers create files private (temp file + rename); give every file the mode the card got.
        mode = (tmp / "README.md").stat().st_mode & 0o777
        for f in tmp.iterdir():
            f.chmod(mode)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
