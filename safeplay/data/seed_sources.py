"""Where training seeds come from: the named sources of the data directory, a user's own seed file, and the
project's built-in set, each read into ``SeedPrompt``s (uncleaned; ``data.seeds`` cleans and marks them).

Seeds come from the training-side files of the data directory (read in their published layout, never copied):

============================  ============================================================================  =======
source name                   file (column)                                                                 class
============================  ============================================================================  =======
``wjb_harmful``               ``wildjailbreak_train_sample/valid_vanilla_harmful_256_data.jsonl`` (prompt)  harmful
``advbench``                  ``advbench/harmful_behaviors.csv`` (goal)                                     harmful
``harmbench_val``             ``harmbench/harmbench_behaviors_text_val.csv`` (Behavior; standard rows)      harmful
``harmbench_val_contextual``  the same file, contextual rows: ContextString + separator + Behavior           harmful
``or_toxic``                  ``or_bench/or_bench-toxic.csv`` (prompt)                                      harmful
``wjb_benign``                ``wildjailbreak_train_sample/valid_vanilla_benign_256_data.jsonl`` (prompt)   benign
``alpaca_train``              ``alpaca_instructions/harmless_train.json`` (instruction)                     benign
``or_hard``                   ``or_bench/or_bench-hard-1k.csv`` (prompt; seemingly toxic but safe)          benign
``self_instruct``             ``self_instruct_seed/seed_tasks.jsonl`` (instruction)                         benign
============================  ============================================================================  =======

Defaults: harmful = wjb_harmful + advbench + harmbench_val + harmbench_val_contextual; benign = wjb_benign +
alpaca_train (first capped to ``DEFAULT_SOURCE_CAPS`` rows, a seeded sample) + or_hard. HarmBench val's contextual
behaviours are laid out as HarmBench's evaluation lays out its test ones (context first); its copyright ones are
not requests to refuse and are left out. HarmBench's *val* split is the one its authors set aside for tuning; the
test split stays held out. OR-Bench is a training
set here; a project that reports OR-Bench must drop ``or_hard`` (and pass its prompts in ``exclude``).

Malformed rows (a missing or empty text column, a non-JSON line, an unreadable harmful label) raise a
``SafeplayError`` naming the file and the row: silently skipping would hide a broken or wrong file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from safeplay.errors import SafeplayError

BUILTIN_SEEDS = Path(__file__).resolve().parent / "builtin" / "seeds.jsonl"


@dataclass(frozen=True)
class SeedPrompt:
    """One seed prompt of the game."""

    text: str
    harmful: bool
    """Dataset label (the judge's label of what the defender sees may differ)."""
    source: str
    id: str
    """``source:row`` (0-based data row) — stable across runs."""
    attack: bool = False
    """True when the attacker rewrites this seed; False when the defender sees it verbatim."""



def bad_row(path: Path, row: int, why: str) -> SafeplayError:
    return SafeplayError(f"{path}: row {row}: {why}")


def jsonl_objects(path: Path, bad: Callable[[Path, int, str], SafeplayError] = bad_row,
                  object_hint: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; a line that is not a JSON object raises
    ``bad(path, line, why)`` (``object_hint`` says what an object should look like)."""
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise bad(path, line_no, f"not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise bad(path, line_no, "not a JSON object" + (f" ({object_hint})" if object_hint else ""))
            yield line_no, obj


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return list(jsonl_objects(path))


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as f:
        # Row numbers count the header as row 1, so they match what a spreadsheet shows.
        return [(i, r) for i, r in enumerate(csv.DictReader(f), start=2)]


def _read_json_list(path: Path) -> list[tuple[int, dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise SafeplayError(f"{path}: expected a JSON list of objects")
    return [(i, r) for i, r in enumerate(data)]


def _text(path: Path, row: int, record: dict[str, Any], columns: Sequence[str]) -> str:
    for col in columns:
        value = record.get(col)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise bad_row(path, row, f"no non-empty text in column {' / '.join(columns)}")


@dataclass(frozen=True)
class _SourceSpec:
    rel: str
    columns: tuple[str, ...]
    harmful: bool
    reader: Callable[[Path], list[tuple[int, dict[str, Any]]]]
    keep: Callable[[dict[str, Any]], bool] = lambda r: True
    compose: Callable[[str, dict[str, Any]], str] | None = None
    """Build the prompt from the text column and the rest of the row (e.g. put a context paragraph first)."""


def _with_context(text: str, row: dict[str, Any]) -> str:
    """HarmBench's contextual layout (``data.benchmark_loaders``): context paragraph, separator, the request about it."""
    from safeplay.data.benchmark_loaders import HARMBENCH_CONTEXT_SEPARATOR

    context = (row.get("ContextString") or "").strip()
    return context + HARMBENCH_CONTEXT_SEPARATOR + text if context else text


SOURCES: dict[str, _SourceSpec] = {
    "wjb_harmful": _SourceSpec("wildjailbreak_train_sample/valid_vanilla_harmful_256_data.jsonl", ("prompt",), True, _read_jsonl),
    "advbench": _SourceSpec("advbench/harmful_behaviors.csv", ("goal",), True, _read_csv),
    "harmbench_val": _SourceSpec(
        "harmbench/harmbench_behaviors_text_val.csv", ("Behavior",), True, _read_csv,
        keep=lambda r: r.get("FunctionalCategory") == "standard",
    ),
    "harmbench_val_contextual": _SourceSpec(
        "harmbench/harmbench_behaviors_text_val.csv", ("Behavior",), True, _read_csv,
        keep=lambda r: r.get("FunctionalCategory") == "contextual", compose=_with_context,
    ),
    "or_toxic": _SourceSpec("or_bench/or_bench-toxic.csv", ("prompt",), True, _read_csv),
    "wjb_benign": _SourceSpec("wildjailbreak_train_sample/valid_vanilla_benign_256_data.jsonl", ("prompt",), False, _read_jsonl),
    "alpaca_train": _SourceSpec("alpaca_instructions/harmless_train.json", ("instruction",), False, _read_json_list),
    "or_hard": _SourceSpec("or_bench/or_bench-hard-1k.csv", ("prompt",), False, _read_csv),
    "self_instruct": _SourceSpec("self_instruct_seed/seed_tasks.jsonl", ("instruction",), False, _read_jsonl),
}
DEFAULT_HARMFUL = ("wjb_harmful", "advbench", "harmbench_val", "harmbench_val_contextual")
DEFAULT_BENIGN = ("wjb_benign", "alpaca_train", "or_hard")
HARD_BENIGN_SOURCES = ("or_hard",)
CONTEXTUAL_SOURCES = ("harmbench_val_contextual",)
"""Harmful sources whose prompts put a long context paragraph before the request (a third of HarmBench's test
items look like this; a defender trained only on short requests tends to continue the paragraph instead)."""
"""Benign sources whose prompts look harmful but are not (the kind XSTest tests over-refusal with)."""
DEFAULT_SOURCE_CAPS = {"alpaca_train": 1000}
"""Alpaca has 18,793 training instructions; without a cap it would be nearly the whole benign class."""


def read_source(name: str, data_dir: Path) -> list[SeedPrompt]:
    """All rows of one named source, unfiltered."""
    if name not in SOURCES:
        raise SafeplayError(f"unknown seed source {name!r}; choose from {', '.join(SOURCES)}")
    spec = SOURCES[name]
    path = Path(data_dir) / spec.rel
    if not path.is_file():
        raise SafeplayError(f"seed source {name}: {path} not found (is the data directory complete?)")
    out = []
    for index, (row, record) in enumerate(spec.reader(path)):
        if not spec.keep(record):
            continue
        text = _text(path, row, record, spec.columns)
        if spec.compose is not None:
            text = spec.compose(text, record)
        out.append(SeedPrompt(text, spec.harmful, name, f"{name}:{index}"))
    return out


_TRUE = {"true", "1", "yes", "harmful", "unsafe", "y", "t"}
_FALSE = {"false", "0", "no", "benign", "safe", "unharmful", "harmless", "n", "f"}


def _harmful_flag(path: Path, row: int, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise bad_row(path, row, f"harmful must be true/false (or harmful/benign, 1/0), got {value!r}")


def load_seed_file(path: Path | str) -> list[SeedPrompt]:
    """A user's own seeds: JSONL or CSV with a ``text`` (or ``prompt``) column and a ``harmful`` column.

    Optional columns: ``id``, ``source``. The ``harmful`` column (or ``category`` with harmful/benign) is
    required: a seed without a class cannot be rewarded. Every seed is returned with ``attack=False``;
    :func:`prepare_seeds` marks the attacker's share.
    """
    path = Path(path)
    if not path.is_file():
        raise SafeplayError(f"seed file {path} not found")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl(path)
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            rows = [(i, r) for i, r in enumerate(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","), start=2)]
    else:
        raise SafeplayError(f"seed file {path}: use .jsonl or .csv (got {suffix or 'no extension'})")
    source = path.stem
    out = []
    for index, (row, rec) in enumerate(rows):
        text = _text(path, row, rec, ("text", "prompt"))
        flag = rec.get("harmful", rec.get("category"))
        if flag is None or flag == "":
            raise bad_row(path, row, "missing harmful column")
        out.append(
            SeedPrompt(
                text=text,
                harmful=_harmful_flag(path, row, flag),
                source=str(rec.get("source") or source),
                id=str(rec.get("id") or f"{source}:{index}"),
            )
        )
    return out


def load_builtin_seeds() -> list[SeedPrompt]:
    """The project's own small seed set (used when no data directory is available)."""
    return load_seed_file(BUILTIN_SEEDS)
