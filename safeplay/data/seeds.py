"""Training seeds: harmful and benign prompts for the game, cleaned, balanced and marked for the attacker.

Seeds are read by ``data.seed_sources`` (the data directory's named sources, a user's seed file, the built-in
set); the tactics and PAIR pairs that help the attacker are in ``data.attacker_aids``.

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

When no data directory exists, :func:`load_seeds` falls back to the project's own small seed set
(``builtin/seeds.jsonl``: prompts written for this project, not taken from any dataset).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

from safeplay import paths
from safeplay.data.near_dup import NearDupIndex, normalise
from safeplay.data.seed_sources import (
    DEFAULT_BENIGN,
    DEFAULT_HARMFUL,
    DEFAULT_SOURCE_CAPS,
    SOURCES,
    SeedPrompt,
    load_builtin_seeds,
    read_source,
)
from safeplay.errors import SafeplayError


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
