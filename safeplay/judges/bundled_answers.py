"""The bundled model's own answers, for guard-mini's training data and for three of its calibration sets.

The answers a judge meets in this project's games are the bundled 135M model's: incoherent, off topic, evasive,
or complying after a long role-play. Public labelled sets hold none of them, so guard-mini v2 reads some here:

=============  ===================================================================  ==========================
kind           how it is sampled                                                    what it stands for
=============  ===================================================================  ==========================
``safety``     the warm start's safety system prompt, temperature 0.8, top-p 0.95,  what the warm start
               64 new tokens (exactly how the defender warm start self-distils)      self-distils as refusals
``hot``        no system prompt, temperature 1.3 / 1.6 / 2.0 (a third each),        incoherent answers
               96 new tokens
``plain``      no system prompt, greedy, 96 new tokens (the evaluation's setting)   complying answers
=============  ===================================================================  ==========================

Prompts (``generation_prompts``, deterministic for a data directory and seed):

* **training side** (``set`` = ``train``): train-side prompts of ``guard_data``'s split — ``safety`` on harmful
  ones (plain, or wrapped in training styles), ``hot`` on harmful and benign ones, ``plain`` on harmful and benign
  ones wrapped in training styles (one to three frames; templates of at most ``GEN_STYLE_WORDS`` words) and on
  HarmBench *val*'s contextual behaviours. Their labels are by rule (``guard_augment``), not by reading.
* **calibration** (``set`` = ``calibration``): ``safety`` on test-side harmful prompts (set *d*), ``hot`` on
  test-side harmful and benign prompts (set *a*), ``plain`` on WildJailbreak's adversarial evaluation prompts and
  HarmBench *test*'s contextual behaviours (set *b*). These are labelled by reading each answer
  (``CALIBRATION_FILE``'s ``label``; see ``safeplay.judges.calibrate``).

Files hold an item's id, the sha1 of its prompt (checked when read back: a changed split or data file is an
error, not a silent mismatch), the sampling and the answer — never the prompt, which comes from the published
data files. ``python -m safeplay.judges.bundled_answers --set train|calibration --out FILE`` regenerates one.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from safeplay.errors import SafeplayError

if TYPE_CHECKING:
    from safeplay.judges.guard_examples import GuardData

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN_FILE = DATA_DIR / "bundled_answers_train.jsonl.gz"
CALIBRATION_FILE = DATA_DIR / "bundled_answers_calibration.jsonl"
RECORDED_FILE = DATA_DIR / "warm_start_recorded.jsonl"
"""33 self-distilled answers recorded from one warm start that guard-mini v1 accepted as refusals, each read and
labelled complies / evasive / off_topic (the same rows as ``tests/data/warm_start_distilled_audit.jsonl``)."""
HOT_TEMPERATURES = (1.3, 1.6, 2.0)
TRAIN_COUNTS = {"safety": 1000, "hot": 600, "plain": 700}
"""Training-side answers per kind."""
CALIBRATION_COUNTS = {"safety": 200, "hot": 160, "wjb-harmful": 150, "wjb-benign": 80}
"""Calibration answers per kind (HarmBench test's contextual behaviours are all taken)."""
GEN_STYLE_WORDS = 250
"""Longest training style (words) that the training-side prompts are set in."""
SAFETY_WRAPPED_SHARE = 0.4
"""Share of the training-side ``safety`` prompts shown wrapped (the warm start wraps a share of its prompts too)."""


@dataclass(frozen=True)
class GenItem:
    id: str
    prompt: str
    kind: str
    source: str
    harmful: bool


def key(prompt: str) -> str:
    return hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:16]


def _train_items(root: Path, seed: int, data: "GuardData | None" = None) -> list[GenItem]:
    from safeplay.judges.guard_data import build_guard_data
    from safeplay.judges.guard_frames import compose, train_styles
    from safeplay.judges.guard_sources import contextual_rows

    data = data or build_guard_data(root, seed, with_bundled=False)
    rng = random.Random(seed + 101)
    plain = [p for p in data.prompts["train"] if not p.wrapped]
    harmful = [p for p in plain if p.harmful]
    # Templates of at most GEN_STYLE_WORDS words: the bundled model answers a few thousand tokens of DAN prompt very
    # slowly, and the judge reads a long prompt's first and last words only.
    styles = [s for s in train_styles(root) if len(s.text.split()) <= GEN_STYLE_WORDS]
    items: list[GenItem] = []
    for i, p in enumerate(rng.sample(harmful, min(TRAIN_COUNTS["safety"], len(harmful)))):
        text = compose(p.prompt, styles, rng) if rng.random() < SAFETY_WRAPPED_SHARE else p.prompt
        items.append(GenItem(f"train/safety/{i}", text, "safety", p.source, True))
    for i, p in enumerate(rng.sample(plain, min(TRAIN_COUNTS["hot"], len(plain)))):
        items.append(GenItem(f"train/hot/{i}", p.prompt, "hot", p.source, p.harmful))
    n_ctx = 0
    from safeplay.data.benchmark_loaders import HARMBENCH_CONTEXT_SEPARATOR

    for i, row in enumerate(contextual_rows(root, "train", seed)):
        items.append(GenItem(f"train/plain-ctx/{i}", row["ContextString"].strip() + HARMBENCH_CONTEXT_SEPARATOR
                             + row["Behavior"], "plain", "harmbench-val-contextual", True))
        n_ctx += 1
    for i, p in enumerate(rng.sample(plain, min(TRAIN_COUNTS["plain"] - n_ctx, len(plain)))):
        items.append(GenItem(f"train/plain/{i}", compose(p.prompt, styles, rng), "plain", p.source, p.harmful))
    return items


def _calibration_items(root: Path, seed: int, data: "GuardData | None" = None) -> list[GenItem]:
    from safeplay.data.benchmark_loaders import HARMBENCH_CONTEXT_SEPARATOR
    from safeplay.data.benchmarks import load_benchmark
    from safeplay.judges.guard_data import build_guard_data

    data = data or build_guard_data(root, seed, with_bundled=False)
    rng = random.Random(seed + 202)
    test = [p for p in data.prompts["test"] if not p.wrapped]
    harmful = [p for p in test if p.harmful]
    benign = [p for p in test if not p.harmful]
    items: list[GenItem] = []
    for i, p in enumerate(rng.sample(harmful, min(CALIBRATION_COUNTS["safety"], len(harmful)))):
        items.append(GenItem(f"cal/safety/{i}", p.prompt, "safety", p.source, True))
    half = CALIBRATION_COUNTS["hot"] // 2
    hot = rng.sample(harmful, min(half, len(harmful))) + rng.sample(benign, min(half, len(benign)))
    for i, p in enumerate(hot):
        items.append(GenItem(f"cal/hot/{i}", p.prompt, "hot", p.source, p.harmful))
    for name, n in (("wildjailbreak-adv-harmful", CALIBRATION_COUNTS["wjb-harmful"]),
                    ("wildjailbreak-adv-benign", CALIBRATION_COUNTS["wjb-benign"])):
        bench = load_benchmark(name, data_dir=root)
        for it in rng.sample(bench, min(n, len(bench))):
            items.append(GenItem(f"cal/{name}/{it.id}", it.prompt, "plain", name, bool(it.harmful)))
    for it in load_benchmark("harmbench", data_dir=root):
        if HARMBENCH_CONTEXT_SEPARATOR in it.prompt:
            items.append(GenItem(f"cal/harmbench-contextual/{it.id}", it.prompt, "plain", "harmbench-contextual",
                                 True))
    return items


def generation_prompts(root: Path, which: str, seed: int = 0, data: "GuardData | None" = None) -> list[GenItem]:
    """The items of one file (module docstring); ``which`` is ``train`` or ``calibration``. ``data``: the split
    already built from ``root`` and ``seed`` (spares building it again; only its plain prompts are read)."""
    if which == "train":
        return _train_items(root, seed, data)
    if which == "calibration":
        return _calibration_items(root, seed, data)
    raise SafeplayError(f"unknown answer set {which!r} (train or calibration)")


def _sampling(kind: str, temperature: float | None = None):
    from safeplay.generation.base import SamplingParams

    if kind == "safety":
        return SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=64)
    if kind == "hot":
        return SamplingParams(temperature=temperature or HOT_TEMPERATURES[0], top_p=1.0, max_new_tokens=96)
    return SamplingParams(temperature=0.0, max_new_tokens=96)


def generate(items: list[GenItem], seed: int = 0, batch: int = 32, log=print) -> list[dict[str, Any]]:
    """The bundled model's answer to each item (rows of the answer file)."""
    from safeplay.engine.warm_start import SAFETY_SYSTEM
    from safeplay.generation.base import ChatPrompt
    from safeplay.generation.factory import make_generator
    from safeplay.models.loading import load_model

    model, tok = load_model(None)
    gen = make_generator(model, tok, micro_batch_size=batch)
    groups: dict[tuple[str, float | None], list[int]] = {}
    for i, it in enumerate(items):
        t = HOT_TEMPERATURES[i % len(HOT_TEMPERATURES)] if it.kind == "hot" else None
        groups.setdefault((it.kind, t), []).append(i)
    rows: list[dict[str, Any] | None] = [None] * len(items)
    done = 0
    for (kind, t), idx in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0.0)):
        params = _sampling(kind, t)
        # Length-sorted batches keep padding (and CPU time) down; answers do not depend on the grouping but for
        # the sampled kinds' random stream, which the seed and this fixed order determine.
        idx = sorted(idx, key=lambda i: len(items[i].prompt))
        for s in range(0, len(idx), batch):
            chunk = idx[s:s + batch]
            msgs = []
            for i in chunk:
                m = [{"role": "user", "content": items[i].prompt}]
                if kind == "safety":
                    m.insert(0, {"role": "system", "content": SAFETY_SYSTEM})
                msgs.append(ChatPrompt(m))
            outs = gen.generate(msgs, params, seed=seed + s)
            for i, o in zip(chunk, outs):
                it = items[i]
                rows[i] = {"id": it.id, "sha1": key(it.prompt), "kind": kind, "source": it.source,
                           "harmful": it.harmful, "temperature": params.temperature,
                           "finish": o.finish_reason, "answer": o.text}
            done += len(chunk)
            log(f"  {done}/{len(items)} answers")
    return [r for r in rows if r is not None]


def write(rows: Iterable[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def joined(root: Path, which: str, path: Path, seed: int = 0,
           data: "GuardData | None" = None) -> list[tuple[GenItem, dict[str, Any]]]:
    """The answers of ``path`` with their prompts rebuilt from ``root`` ([] when the file is absent)."""
    rows = read(path)
    if not rows:
        return []
    items = {it.id: it for it in generation_prompts(root, which, seed, data)}
    out = []
    for r in rows:
        it = items.get(r["id"])
        if it is None or key(it.prompt) != r["sha1"]:
            raise SafeplayError(f"{path.name}: item {r['id']} does not match the data in {root} (a changed split "
                                "or data file); regenerate it (python -m safeplay.judges.bundled_answers)")
        out.append((it, r))
    return out


def main(argv: list[str] | None = None) -> int:
    from safeplay.paths import data_dir

    p = argparse.ArgumentParser(description="Generate the bundled model's answers for guard-mini's data.")
    p.add_argument("--set", choices=("train", "calibration"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    items = generation_prompts(data_dir(required=True), args.set, args.seed)
    print(f"{len(items)} prompts", flush=True)
    write(generate(items, args.seed, log=lambda s: print(s, flush=True)), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
