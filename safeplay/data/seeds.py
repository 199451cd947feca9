"""Training seeds: harmful and benign prompts for the game, WildTeaming tactics, and attacker warm-start pairs.

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

Cleaning, in order:

1. texts are normalised for comparison (Unicode NFKC, lower case, punctuation dropped, whitespace collapsed);
   exact duplicates of a normalised text are dropped (first kept);
2. **near-duplicates** of any ``exclude`` text (the evaluation prompts; the caller passes them) are dropped, and
   near-duplicates *within the same class* are dropped (a harmful/benign contrast pair such as "make a bomb" /
   "make a cake" is kept on purpose). Near = Jaccard similarity of character 5-gram sets ≥
   ``near_dup_threshold`` (default 0.8: catches re-punctuated, re-cased, one-word-edited long prompts; short
   prompts that differ by a word fall below it). Candidates are found with MinHash-LSH (64 hashes, 16 bands × 4
   rows; a pair at Jaccard 0.8 is a candidate with probability > 0.999) and then verified exactly;
3. per-source caps, class balance (``harmful_share``) and ``max_per_class`` by seeded sampling;
4. the **attack flag** (Self-RedTeam §1.3): within each class, a seeded ``attack_share`` (default 50%) of the
   seeds is marked for the attacker to rewrite; the rest go to the defender verbatim.

Malformed rows (a missing or empty text column, a non-JSON line, an unreadable harmful label) raise a
``SafeplayError`` naming the file and the row: silently skipping would hide a broken or wrong file.

When no data directory exists, :func:`load_seeds` falls back to the project's own small seed set
(``builtin/seeds.jsonl``: prompts written for this project, not taken from any dataset).
"""

from __future__ import annotations

import csv
import json
import random
import re
import unicodedata
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from safeplay import paths
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


# ---------------------------------------------------------------------------------------------- readers


def _bad(path: Path, row: int, why: str) -> SafeplayError:
    return SafeplayError(f"{path}: row {row}: {why}")


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise _bad(path, line_no, f"not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise _bad(path, line_no, "not a JSON object")
            rows.append((line_no, obj))
    return rows


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
    raise _bad(path, row, f"no non-empty text in column {' / '.join(columns)}")


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
    """HarmBench's contextual layout (``data.benchmarks``): context paragraph, separator, the request about it."""
    from safeplay.data.benchmarks import HARMBENCH_CONTEXT_SEPARATOR

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
    raise _bad(path, row, f"harmful must be true/false (or harmful/benign, 1/0), got {value!r}")


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
            raise _bad(path, row, "missing harmful column")
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


# ---------------------------------------------------------------------------------------------- dedup

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_SHINGLE = 5
_N_HASH, _BANDS = 64, 16
_PRIME = (1 << 31) - 1


def normalise(text: str) -> str:
    """Comparison form: NFKC, lower case, punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def _shingles(norm: str) -> set[int]:
    if len(norm) <= _SHINGLE:
        return {zlib.crc32(norm.encode())}
    return {zlib.crc32(norm[i : i + _SHINGLE].encode()) for i in range(len(norm) - _SHINGLE + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDupIndex:
    """MinHash-LSH index of character-shingle sets, with exact Jaccard verification of candidates."""

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold
        rng = np.random.default_rng(12345)  # fixed: hash functions are part of the method, not of the run
        self._a = rng.integers(1, _PRIME, _N_HASH, dtype=np.uint64)
        self._b = rng.integers(0, _PRIME, _N_HASH, dtype=np.uint64)
        self._sets: list[set[int]] = []
        self._buckets: dict[tuple[int, bytes], list[int]] = {}

    def _bands(self, sh: set[int]) -> list[tuple[int, bytes]]:
        x = np.fromiter((v % _PRIME for v in sh), dtype=np.uint64, count=len(sh))
        sig = ((np.outer(self._a, x) + self._b[:, None]) % _PRIME).min(axis=1)
        rows = _N_HASH // _BANDS
        return [(band, sig[band * rows : (band + 1) * rows].tobytes()) for band in range(_BANDS)]

    def query(self, norm: str) -> bool:
        """Is ``norm`` (a normalised text) a near-duplicate of anything indexed?"""
        sh = _shingles(norm)
        seen: set[int] = set()
        for key in self._bands(sh):
            for i in self._buckets.get(key, ()):
                if i not in seen:
                    seen.add(i)
                    if jaccard(sh, self._sets[i]) >= self.threshold:
                        return True
        return False

    def add(self, norm: str) -> None:
        sh = _shingles(norm)
        idx = len(self._sets)
        self._sets.append(sh)
        for key in self._bands(sh):
            self._buckets.setdefault(key, []).append(idx)


# ---------------------------------------------------------------------------------------------- pipeline


def _sample(items: list[SeedPrompt], n: int, rng: random.Random) -> list[SeedPrompt]:
    if n >= len(items):
        return list(items)
    keep = set(rng.sample(range(len(items)), n))
    return [s for i, s in enumerate(items) if i in keep]  # keep file order for readability


def mark_attack(seeds: Sequence[SeedPrompt], attack_share: float, seed: int = 0) -> list[SeedPrompt]:
    """Mark a seeded ``attack_share`` of each class for the attacker (rounded to the nearest seed)."""
    if not 0.0 <= attack_share <= 1.0:
        raise SafeplayError(f"attack_share must be in [0, 1], got {attack_share}")
    rng = random.Random(f"attack:{seed}")
    out = list(seeds)
    for harmful in (True, False):
        idx = [i for i, s in enumerate(out) if s.harmful == harmful]
        chosen = set(rng.sample(idx, round(attack_share * len(idx))))
        for i in idx:
            out[i] = replace(out[i], attack=i in chosen)
    return out


def prepare_seeds(
    seeds: Iterable[SeedPrompt],
    exclude: Sequence[str] = (),
    harmful_share: float | None = 0.5,
    attack_share: float = 0.5,
    max_per_class: int | None = None,
    seed: int = 0,
    near_dup_threshold: float = 0.8,
    source_caps: dict[str, int] | None = None,
) -> list[SeedPrompt]:
    """Clean, balance, mark and shuffle seeds (see the module docstring). ``harmful_share=None`` keeps all."""
    if harmful_share is not None and not 0.0 <= harmful_share <= 1.0:
        raise SafeplayError(f"harmful_share must be in [0, 1], got {harmful_share}")
    rng = random.Random(f"seeds:{seed}")
    excluded = NearDupIndex(near_dup_threshold)
    exact_excluded = set()
    for text in exclude:
        norm = normalise(text)
        exact_excluded.add(norm)
        excluded.add(norm)
    within = {True: NearDupIndex(near_dup_threshold), False: NearDupIndex(near_dup_threshold)}
    seen: set[str] = set()
    kept: list[SeedPrompt] = []
    for s in seeds:
        norm = normalise(s.text)
        if not norm or norm in seen or norm in exact_excluded:
            continue
        seen.add(norm)
        if excluded.query(norm) or within[s.harmful].query(norm):
            continue
        within[s.harmful].add(norm)
        kept.append(s)

    for source, cap in (source_caps or {}).items():
        mine = [s for s in kept if s.source == source]
        if len(mine) > cap:
            chosen = {s.id for s in _sample(mine, cap, rng)}
            kept = [s for s in kept if s.source != source or s.id in chosen]

    harmful = [s for s in kept if s.harmful]
    benign = [s for s in kept if not s.harmful]
    if max_per_class is not None:
        harmful, benign = _sample(harmful, max_per_class, rng), _sample(benign, max_per_class, rng)
    if harmful_share is not None:
        if harmful_share == 0.0:
            harmful = []
        elif harmful_share == 1.0:
            benign = []
        else:
            total = min(len(harmful) / harmful_share, len(benign) / (1.0 - harmful_share))
            n_h = min(len(harmful), round(total * harmful_share))
            n_b = min(len(benign), round(total) - n_h)
            harmful, benign = _sample(harmful, n_h, rng), _sample(benign, n_b, rng)
    out = mark_attack(harmful + benign, attack_share, seed)
    rng.shuffle(out)
    return out


def load_seeds(
    data_dir: Path | None = None,
    harmful_sources: Sequence[str] = DEFAULT_HARMFUL,
    benign_sources: Sequence[str] = DEFAULT_BENIGN,
    exclude: Sequence[str] = (),
    harmful_share: float | None = 0.5,
    attack_share: float = 0.5,
    max_per_class: int | None = None,
    seed: int = 0,
    near_dup_threshold: float = 0.8,
    source_caps: dict[str, int] | None = None,
) -> list[SeedPrompt]:
    """Training seeds from the data directory (or the built-in set when there is none), cleaned and marked.

    ``data_dir=None`` asks :func:`safeplay.paths.data_dir`. ``source_caps`` defaults to
    :data:`DEFAULT_SOURCE_CAPS`. Sources must be of the class they are listed under.
    """
    data_dir = data_dir if data_dir is not None else paths.data_dir()
    if data_dir is None:
        raw = load_builtin_seeds()
    else:
        raw = []
        for names, harmful in ((harmful_sources, True), (benign_sources, False)):
            for name in names:
                if name in SOURCES and SOURCES[name].harmful != harmful:
                    kind = "harmful" if SOURCES[name].harmful else "benign"
                    raise SafeplayError(f"seed source {name} holds {kind} prompts; list it under {kind}_sources")
                raw.extend(read_source(name, Path(data_dir)))
    return prepare_seeds(
        raw, exclude, harmful_share, attack_share, max_per_class, seed, near_dup_threshold,
        DEFAULT_SOURCE_CAPS if source_caps is None else source_caps,
    )


# ---------------------------------------------------------------------------------------------- attacker aids

TACTICS_FILE = "wildjailbreak/wildteaming_auto_tactics_frequency.json"


def load_tactics(data_dir: Path | None = None, top_k: int = 50, n_names: int = 3) -> list[tuple[str, str, int]]:
    """The ``top_k`` most frequent WildTeaming tactic clusters as (name, definition, frequency).

    The file maps each cluster name to ``{"count", "names"}`` and has no definitions; the "definition" is the
    cluster's first ``n_names`` member tactic names joined with "; " (the raw descriptions the cluster merged).
    """
    data_dir = data_dir if data_dir is not None else paths.data_dir(required=True)
    path = Path(data_dir) / TACTICS_FILE
    if not path.is_file():
        raise SafeplayError(f"tactics file {path} not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for name, info in data.items():
        try:
            count = int(info["count"])
            names = [str(n) for n in info.get("names", [])]
        except (KeyError, TypeError, ValueError):
            raise SafeplayError(f"{path}: tactic {name!r} has no integer count") from None
        members = [n for n in names if n.strip().lower() != name.strip().lower()][:n_names]
        out.append((name, "; ".join(members) if members else name, count))
    out.sort(key=lambda t: (-t[2], t[0]))
    return out[:top_k]


PAIR_DIR = "jailbreakbench/artifacts/attack-artifacts/PAIR"


def load_attack_pairs(
    data_dir: Path | None = None,
    exclude: Sequence[str] = (),
    only_jailbroken: bool = True,
    near_dup_threshold: float = 0.8,
) -> list[tuple[str, str]]:
    """(plain request, jailbreak prompt) pairs from JailbreakBench's PAIR artifacts, for an attacker warm start.

    Every target model's file under ``PAIR/`` is read; rows without a prompt are skipped (PAIR found none), and
    with ``only_jailbroken`` (default) so are the prompts that did not break their target. Identical pairs are
    kept once. **If JailbreakBench behaviours are an evaluation set, do not use these** — or at least pass the
    evaluation prompts in ``exclude``: a pair whose goal *or* prompt is a near-duplicate of an excluded text is
    dropped.
    """
    data_dir = data_dir if data_dir is not None else paths.data_dir(required=True)
    root = Path(data_dir) / PAIR_DIR
    files = sorted(root.glob("*/*.json"))
    if not files:
        raise SafeplayError(f"no PAIR artifacts under {root}")
    index = NearDupIndex(near_dup_threshold)
    for text in exclude:
        index.add(normalise(text))
    seen: set[tuple[str, str]] = set()
    out = []
    for path in files:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["jailbreaks"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise SafeplayError(f"{path}: not a JailbreakBench artifact (no 'jailbreaks' list)") from None
        for row_no, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("goal"), str):
                raise _bad(path, row_no, "jailbreak entry without a goal")
            prompt = row.get("prompt")
            if not prompt or (only_jailbroken and not row.get("jailbroken")):
                continue
            pair = (row["goal"].strip(), str(prompt).strip())
            if pair in seen or index.query(normalise(pair[0])) or index.query(normalise(pair[1])):
                continue
            seen.add(pair)
            out.append(pair)
    return out
