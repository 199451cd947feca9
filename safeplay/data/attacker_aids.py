"""Attacker aids read from the data directory: WildTeaming's most frequent jailbreak tactics (named in the
attacker's prompt) and JailbreakBench's PAIR (request, jailbreak) pairs for an attacker warm start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from safeplay import paths
from safeplay.data.near_dup import NearDupIndex, normalise
from safeplay.data.seed_sources import bad_row
from safeplay.errors import SafeplayError

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
                raise bad_row(path, row_no, "jailbreak entry without a goal")
            prompt = row.get("prompt")
            if not prompt or (only_jailbroken and not row.get("jailbroken")):
                continue
            pair = (row["goal"].strip(), str(prompt).strip())
            if pair in seen or index.query(normalise(pair[0])) or index.query(normalise(pair[1])):
                continue
            seen.add(pair)
            out.append(pair)
    return out
