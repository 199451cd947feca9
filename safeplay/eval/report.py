"""One self-contained HTML page for a training run, an evaluation, or a comparison of several models / arms.

What is shown is chosen from what the folder holds:

* **run** (``metrics.jsonl`` and/or ``games.jsonl``, ``config.yaml``): training curves, held-out benchmark bars
  before/after (first vs last ``"kind": "eval"`` row), the evaluation table, sample games with hidden thinking,
  and links to the run's TensorBoard log and its W&B / MLflow runs (``tracking.json``);
* **evaluation** (``results.json`` + ``generations.jsonl``): figures per benchmark with their judge, per-category
  breakdowns, sample generations (keyword hacks and harmful answers first);
* **comparison** (``comparison.json`` or ``ablation.json``, ``{"arms": {arm: {benchmark: {metric: value,
  "judge": name}}}}``): a side-by-side table and grouped bars of each benchmark's headline metric.

Plots are matplotlib PNGs embedded as base64; every text from a log (prompts, answers, thinking, config values)
is HTML-escaped by Jinja2's autoescaping, and the page carries a Content-Security-Policy that allows no script.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Any

from safeplay.errors import SafeplayError

HEADLINE = ("asr", "refusal_rate", "compliance_rate", "strongreject_score", "harm_score", "refusal_f1", "exact_match",
            "accuracy", "label_accuracy")
"""Metric keys drawn in before/after bars (each benchmark's primary metric is one of these)."""
LOWER_IS_BETTER = {"asr", "strongreject_score", "harm_score", "harmful_rate", "keyword_hack_rate"}
SAMPLE_GAMES = 12
SAMPLES_PER_BENCHMARK = 4
MAX_CURVES = 16


# --- reading ---------------------------------------------------------------------------------------------------

def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a run killed mid-write leaves a partial last line
    return rows


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SafeplayError(f"cannot read {path}: {e}") from None


def detect(path: Path) -> tuple[str, Path]:
    """("run" | "evaluation" | "comparison", folder-or-file) for ``path``."""
    if path.is_file():
        if path.name in ("comparison.json", "ablation.json"):
            return "comparison", path
        if path.name == "results.json":
            return "evaluation", path.parent
        if path.name in ("metrics.jsonl", "games.jsonl"):
            return "run", path.parent
        raise SafeplayError(f"{path}: not a run folder, results.json, comparison.json or ablation.json")
    if not path.is_dir():
        raise SafeplayError(f"{path}: no such file or folder")
    if (path / "metrics.jsonl").is_file() or (path / "games.jsonl").is_file():
        return "run", path
    for name in ("comparison.json", "ablation.json"):
        if (path / name).is_file():
            return "comparison", path / name
    if (path / "results.json").is_file():
        return "evaluation", path
    raise SafeplayError(
        f"{path}: found none of metrics.jsonl, games.jsonl (a run), results.json (an evaluation), "
        "comparison.json or ablation.json (a comparison)"
    )


# --- plots -----------------------------------------------------------------------------------------------------

def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def curves_png(rows: list[dict[str, Any]], keys: list[str], title: str) -> str | None:
    keys = keys[:MAX_CURVES]
    if not keys:
        return None
    plt = _pyplot()
    cols = min(4, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.6 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(r["step"], _number(r.get(key))) for r in rows if _number(r.get("step")) is not None]
        points = [(s, v) for s, v in points if v is not None]
        ax.plot([s for s, _ in points], [v for _, v in points], marker="." if len(points) < 30 else None)
        ax.set_title(key, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def grouped_bars_png(groups: list[str], series: dict[str, list[float | None]], title: str) -> str | None:
    """Bars per group (x) for each series (legend), e.g. benchmarks × {before, after} or × arms."""
    if not groups or not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) * max(1, len(series)) * 0.6 + 2), 3.4))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width=width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


# --- page builders -------------------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—" if value is None else str(value)
    return f"{number:.3f}" if not float(number).is_integer() or abs(number) < 1 else f"{number:g}"


def _eval_keys(row: dict[str, Any]) -> list[str]:
    return [k for k in row if "/" in k and k.rsplit("/", 1)[1] in HEADLINE + ("keyword_hack_rate",)
            and k.count("/") == 1 and _number(row[k]) is not None]


STAGE_NAMES = {"start": "before training", "after_warm_start": "after warm start", "periodic": "RL", "end": "end"}


def stage_label(row: dict[str, Any]) -> str:
    """A column title for one evaluation row: what stage it was, at which step."""
    stage = str(row.get("stage", "eval"))
    return f"{STAGE_NAMES.get(stage, stage)} (step {row.get('step')})"


def _run_context(folder: Path) -> dict[str, Any]:
    metrics = _read_jsonl(folder / "metrics.jsonl")
    games = _read_jsonl(folder / "games.jsonl")
    config = (folder / "config.yaml").read_text(encoding="utf-8") if (folder / "config.yaml").is_file() else ""
    train = [r for r in metrics if r.get("kind", "train") not in ("eval",) and "step" in r]
    evals = [r for r in metrics if r.get("kind") == "eval"]

    counts: dict[str, int] = {}
    for r in train:
        for k, v in r.items():
            if k != "step" and _number(v) is not None:
                counts[k] = counts.get(k, 0) + 1
    curve_keys = sorted(k for k, c in counts.items() if c >= 2)
    priority = ("reward", "rate", "kl", "loss", "diversity", "len", "tokens")
    curve_keys.sort(key=lambda k: (not any(p in k.lower() for p in priority), k))
    plots = []
    for start in range(0, min(len(curve_keys), 3 * MAX_CURVES), MAX_CURVES):
        png = curves_png(train, curve_keys[start : start + MAX_CURVES], "training curves")
        if png:
            plots.append(png)

    before_after = None
    eval_table: list[dict[str, Any]] = []
    stages: list[str] = []
    if evals:
        # Every evaluation stage side by side (before training, after the warm start, periodic, end): a reader must
        # see what the RL stage added over the warm start, not only the base model against the end.
        last = evals[-1]
        keys = _eval_keys(last)
        for row in evals[:-1]:
            keys += [k for k in _eval_keys(row) if k not in keys]
        stages = [stage_label(r) for r in evals]
        headline = [k for k in keys if k.rsplit("/", 1)[1] in HEADLINE]
        before_after = grouped_bars_png(
            headline, {label: [_number(r.get(k)) for k in headline] for label, r in zip(stages, evals)},
            "held-out evaluation at every stage",
        )
        for k in keys:
            bench, metric = k.split("/", 1)
            eval_table.append({"benchmark": bench, "metric": metric, "cells": [_fmt(r.get(k)) for r in evals],
                               "lower_is_better": metric in LOWER_IS_BETTER})
        eval_curve_keys = [k for k in keys if k.rsplit("/", 1)[1] in HEADLINE]
        if len(evals) > 1:
            png = curves_png(evals, eval_curve_keys, "held-out evaluation over training")
            if png:
                plots.append(png)

    samples = []
    for g in games[-SAMPLE_GAMES:]:
        attacker = g.get("attacker") or {}
        defender = g.get("defender") or {}
        verdict = g.get("verdict") or {}
        samples.append({
            "step": g.get("step"),
            "seed": g.get("seed", ""),
            "seed_harmful": g.get("seed_harmful"),
            "tactic": g.get("tactic"),
            "attacker_thinking": attacker.get("thinking") or "",
            "attack": attacker.get("public") or (g.get("query") if g.get("attacked") else "") or "",
            "defender_thinking": defender.get("thinking") or "",
            "answer": defender.get("public") or "",
            "verdict": ", ".join(f"{k}={v}" for k, v in verdict.items() if v is not None),
            "rewards": ", ".join(f"{k}={_fmt(v)}" for k, v in (g.get("rewards") or {}).items()),
        })
    from safeplay.tracking import read_links

    return {"kind": "run", "config": config, "plots": plots, "before_after": before_after, "eval_table": eval_table,
            "stages": stages, "tracking": read_links(folder),
            "n_steps": len(train), "n_evals": len(evals), "n_games": len(games), "games": samples,
            "judges": sorted({str((g.get("verdict") or {}).get("judge")) for g in games if g.get("verdict")})}


def _evaluation_context(folder: Path) -> dict[str, Any]:
    results = _read_json(folder / "results.json")
    benchmarks: dict[str, dict[str, Any]] = results.get("benchmarks", {})
    rows = []
    for bench, figures in benchmarks.items():
        for key, value in figures.items():
            if _number(value) is None or key in ("seconds", "judge_seconds", "n", "higher_is_better"):
                continue
            rows.append({"benchmark": bench, "metric": key, "value": _fmt(value), "primary": key == figures.get("primary"),
                         "judge": figures.get("judge", "—"), "n": figures.get("n", "—")})
    headline = [(b, f["primary"]) for b, f in benchmarks.items() if f.get("primary") in HEADLINE]
    chart = grouped_bars_png([f"{b}\n{m}" for b, m in headline],
                             {"value": [_number(benchmarks[b].get(m)) for b, m in headline]},
                             f"headline metrics (judge: {results.get('judge', '?')})")
    categories = {b: {c: _fmt(v) for c, v in f.get("by_category", {}).items()} for b, f in benchmarks.items()
                  if f.get("by_category")}
    generations = _read_jsonl(folder / "generations.jsonl")
    samples: list[dict[str, Any]] = []
    for bench in benchmarks:
        rows_b = [g for g in generations if g.get("benchmark") == bench]
        rows_b.sort(key=lambda g: (not g.get("keyword_hack"), not (g.get("verdict") or {}).get("response_harmful")))
        for g in rows_b[:SAMPLES_PER_BENCHMARK]:
            verdict = g.get("verdict") or {}
            samples.append({"benchmark": bench, "id": g.get("id"), "prompt": g.get("prompt", ""),
                            "answer": g.get("answer", g.get("output", "")),
                            "verdict": ", ".join(f"{k}={v}" for k, v in verdict.items()
                                                 if k in ("refusal", "response_harmful", "label", "unparseable", "judge")),
                            "keyword_hack": bool(g.get("keyword_hack")),
                            "reference": g.get("reference"), "prediction": g.get("prediction")})
    meta = {k: results.get(k) for k in ("model", "judge", "limit", "subset_seed", "cot", "max_new_tokens", "decoding")}
    meta["seconds"] = _fmt(results.get("seconds"))
    return {"kind": "evaluation", "meta": meta, "rows": rows, "chart": chart, "categories": categories,
            "samples": samples}


def _mean_std(figures: dict[str, Any], metric: str) -> str:
    """``mean ± std`` where an ablation recorded the spread across seeds."""
    std = _number(figures.get(f"{metric}_std"))
    return _fmt(figures.get(metric)) + (f" ± {std:.3f}" if std is not None else "")


def _comparison_context(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    arms: dict[str, dict[str, dict[str, Any]]] = data.get("arms") or {}
    if not arms:
        raise SafeplayError(f"{path}: no \"arms\" to compare")
    benches: list[str] = []
    for arm in arms.values():
        for bench in arm:
            if isinstance(arm[bench], dict) and bench not in benches:
                benches.append(bench)
    table = []
    charts = []
    for bench in benches:
        sample = next((a[bench] for a in arms.values() if isinstance(a.get(bench), dict)), {})
        metrics = [k for k in sample if _number(sample.get(k)) is not None and not k.endswith("_std")
                   and k not in ("seconds", "judge_seconds", "higher_is_better")]
        for metric in metrics:
            table.append({"benchmark": bench, "metric": metric, "primary": metric == sample.get("primary"),
                          "cells": [_mean_std((arm.get(bench) or {}), metric) for arm in arms.values()],
                          "judges": sorted({str((arm.get(bench) or {}).get("judge", "—")) for arm in arms.values()})})
    by_metric: dict[str, list[str]] = {}
    for bench in benches:
        sample = next((a[bench] for a in arms.values() if isinstance(a.get(bench), dict)), {})
        metric = sample.get("primary") or next((m for m in HEADLINE if m in sample), None)
        if metric in HEADLINE:
            by_metric.setdefault(metric, []).append(bench)
    for metric, group in by_metric.items():
        png = grouped_bars_png(group, {arm: [_number((a.get(b) or {}).get(metric)) for b in group]
                                       for arm, a in arms.items()}, metric + (" ↓" if metric in LOWER_IS_BETTER else " ↑"))
        if png:
            charts.append(png)
    meta = {k: v for k, v in data.items() if k != "arms" and not isinstance(v, (dict, list))}
    return {"kind": "comparison", "arm_names": list(arms), "table": table, "charts": charts, "meta": meta,
            "source": path.name}


def build_report(path: Path | str) -> str:
    """The HTML page for a run folder, an evaluation folder or a comparison/ablation JSON."""
    from jinja2 import Environment

    from safeplay.eval.report_template import TEMPLATE

    kind, where = detect(Path(path))
    context = {"run": _run_context, "evaluation": _evaluation_context, "comparison": _comparison_context}[kind](where)
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(TEMPLATE).render(title=f"safeplay {kind}: {Path(path).resolve().name}", **context)


def write_report(path: Path | str, out: Path | str | None = None) -> Path:
    kind, where = detect(Path(path))
    folder = where if where.is_dir() else where.parent
    target = Path(out) if out is not None else folder / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(build_report(path), encoding="utf-8")
    return target
