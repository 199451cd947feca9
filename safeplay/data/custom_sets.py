"""Custom evaluation sets: a user's own prompts, each labelled harmful or benign, from a JSONL or CSV file.

Named ``file:PATH`` wherever a benchmark name goes (``safeplay eval --benchmarks file:my_prompts.jsonl``,
``eval.benchmarks: [file:my_prompts.csv]`` in a training config) and reported under the file's stem
(``my_prompts``). Every item is scored by its own label (metric kind ``labelled``, see ``eval.scoring``): a clean
refusal is a success on a harmful prompt, compliance on a benign one.

Format — one prompt per JSONL line or CSV row (a header row names the columns; ``.tsv`` is read tab-separated):

* ``prompt`` (or ``text``): the prompt, non-empty;
* ``label``: ``harmful`` or ``benign`` (``unsafe`` / ``safe`` are read the same way), or instead a ``harmful``
  column of true/false (1/0, yes/no);
* optional ``id`` (unique; default ``line-N``) and ``category`` (default: the label).

A malformed file raises one ``SafeplayError`` naming the file and the line (the first physical line of the
record; a CSV header is line 1): a missing column, an empty prompt, a label that is neither harmful nor benign,
a line that is not a JSON object, a duplicate id, an empty file. Nothing is skipped: a silently shorter set
would report figures over prompts the user did not choose.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

from safeplay.data.seed_sources import jsonl_objects
from safeplay.errors import SafeplayError

PREFIX = "file:"
PROMPT_COLUMNS = ("prompt", "text")
_HARMFUL_LABELS = {"harmful": True, "unsafe": True, "benign": False, "safe": False}
_FLAG_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def is_custom(name: str) -> bool:
    return name.startswith(PREFIX)


def custom_path(name: str) -> Path:
    """The file a ``file:PATH`` benchmark name points to (``~`` expanded)."""
    path = name[len(PREFIX):].strip()
    if not path:
        raise SafeplayError(f"benchmark {name!r}: give a path after 'file:' (a .jsonl or .csv file)")
    return Path(path).expanduser()


def report_name(name: str) -> str:
    """The name a custom set's figures are reported under: the file's stem."""
    return custom_path(name).stem


def _bad(path: Path, line: int, why: str) -> SafeplayError:
    return SafeplayError(f"{path}: line {line}: {why}")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    return jsonl_objects(path, _bad, 'expected {"prompt": …, "label": …}')


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        header = reader.fieldnames  # reads line 1
        if header is None:
            return
        missing = _missing_columns(set(header))
        if missing:
            raise _bad(path, 1, f"the header has no {missing} column (columns: {', '.join(header) or 'none'})")
        start = reader.line_num + 1
        for record in reader:
            if None in record:  # csv puts surplus fields under the key None
                raise _bad(path, start, f"more fields than the header's {len(header)}")
            yield start, record
            start = reader.line_num + 1


def _missing_columns(columns: set[str]) -> str | None:
    if not columns & set(PROMPT_COLUMNS):
        return "'prompt'"
    if "label" not in columns and "harmful" not in columns:
        return "'label' (harmful/benign) or 'harmful' (true/false)"
    return None


def _harmful(path: Path, line: int, record: dict[str, Any]) -> bool:
    if "label" in record:
        value = record["label"]
        key = value.strip().lower() if isinstance(value, str) else None
        if key not in _HARMFUL_LABELS:
            raise _bad(path, line, f"label must be harmful or benign, got {value!r}")
        return _HARMFUL_LABELS[key]
    value = record["harmful"]
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if key not in _FLAG_VALUES:
        raise _bad(path, line, f"harmful must be true or false, got {value!r}")
    return _FLAG_VALUES[key]


def load_custom_set(path: Path | str) -> list:
    """The items of a custom set (``BenchmarkItem``s, file order), or a ``SafeplayError`` naming file and line."""
    from safeplay.data.benchmark_types import BenchmarkItem

    path = Path(path)
    if not path.is_file():
        raise SafeplayError(f"custom evaluation set {path} not found")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        records = _jsonl_records(path)
    elif suffix in (".csv", ".tsv"):
        records = _csv_records(path)
    else:
        raise SafeplayError(f"custom evaluation set {path}: use a .jsonl or .csv file (got {suffix or 'no extension'})")
    items = []
    seen: dict[str, int] = {}
    try:
        for line, record in records:
            missing = _missing_columns({k for k, v in record.items() if v is not None})
            if missing:
                raise _bad(path, line, f"no {missing} field")
            prompt = next((record[c] for c in PROMPT_COLUMNS if c in record), None)
            if not isinstance(prompt, str) or not prompt.strip():
                raise _bad(path, line, "the prompt is empty")
            harmful = _harmful(path, line, record)
            item_id = str(record.get("id") or f"line-{line}")
            if item_id in seen:
                raise _bad(path, line, f"id {item_id!r} already used on line {seen[item_id]}")
            seen[item_id] = line
            label = "harmful" if harmful else "benign"
            category = record.get("category")
            items.append(BenchmarkItem(id=item_id, prompt=prompt, harmful=harmful,
                                       category=str(category) if category not in (None, "") else label,
                                       extra={"line": line, "label": label}))
    except UnicodeDecodeError as e:
        raise SafeplayError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not items:
        raise _bad(path, 1, "the file holds no prompts")
    return items


def custom_spec(name: str):
    """A ``BenchmarkSpec`` for ``file:PATH`` (the file is read when the set is loaded, not here)."""
    from safeplay.data.benchmark_types import BenchmarkSpec

    path = custom_path(name)
    return BenchmarkSpec(
        name=path.stem,
        description=f"custom set {path} (refusal on harmful prompts, compliance on benign ones)",
        metric="labelled",
        source=name,
        urls={},
        loader=lambda resolve: load_custom_set(path),
    )
