"""Run benchmarks on a generator and a judge: generations, verdicts, figures, ``results.json``.

Protocol (after the seed papers' safety-eval harness):

* greedy decoding (temperature 0), ``max_new_tokens`` per answer;
* each prompt goes to the defender as a single user turn, built by ``safeplay.game.templates.defender_prompt``
  (with ``cot=True``: the R1 template plus the think prefill, exactly as in training);
* with ``cot=True`` only the answer is judged: the text inside ``<answer>…</answer>`` (a missing closing tag is
  tolerated); if there are no answer tags, the text after the last ``</think>``; if neither, the whole output
  (``safeplay.game.cot.strip_for_opponent``). The judged answer is cut to ``ANSWER_MAX_CHARS`` characters
  (≈ the harness's 512-token cut);
* every safety answer is judged by one judge, whose name is recorded beside every figure;
* GSM8K is generated (greedy, chat template) and scored by exact match of the final number; MMLU is scored by
  choice log-likelihood through ``scorer`` (built from the generator's HF model when it exposes one).

``results.json``: ``{"model": …, "judge": …, "limit": …, "subset_seed": …, "cot": …, "max_new_tokens": …,
"benchmarks": {name: {metric: value, …, "n": …, "judge": …, "seconds": …}}, "seconds": …}``; with both XSTest
halves evaluated, ``benchmarks["xstest"]`` adds the refusal F1. ``generations.jsonl``: one row per item (benchmark,
id, category, prompt, output, answer, verdict or reference/prediction).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from safeplay.data.benchmark_types import BenchmarkItem
from safeplay.data.benchmarks import get_spec, load_benchmark
from safeplay.errors import SafeplayError
from safeplay.eval import metrics as m
from safeplay.eval.capability import MMLU_CHOICES, ChoiceScorer, gsm8k_prompt, mmlu_prompt, scorer_from
from safeplay.eval.scoring import score_safety
from safeplay.generation.base import ChatPrompt, Generator, SamplingParams
from safeplay.judges.base import Judge, JudgeItem, Verdict

ANSWER_MAX_CHARS = 2048
DEFAULT_MAX_NEW_TOKENS = 128
DEFAULT_BATCH_SIZE = 16

PromptBuilder = Callable[[str, bool], ChatPrompt]
Progress = Callable[[str, int, int], None]
"""``progress(benchmark, done, total)``, called after each generation batch."""


def default_prompt(query: str, cot: bool) -> ChatPrompt:
    from safeplay.game.templates import defender_prompt

    return defender_prompt(query, cot)


def extract_answer(output: str, cot: bool) -> str:
    from safeplay.game.cot import strip_for_opponent

    return strip_for_opponent(output, cot)[:ANSWER_MAX_CHARS]


def _generate(generator: Generator, prompts: Sequence[ChatPrompt], max_new_tokens: int, batch_size: int,
              progress: Progress | None, name: str) -> list[str]:
    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens)
    # Batch prompts of similar length together (less padding: on CPU a padded batch costs as much as its longest
    # prompt); greedy decoding makes the outputs independent of the grouping. Results go back in input order.
    order = sorted(range(len(prompts)), key=lambda i: sum(len(msg["content"]) for msg in prompts[i].messages))
    out: list[str | None] = [None] * len(prompts)
    done = 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        for i, completion in zip(idx, generator.generate([prompts[i] for i in idx], sampling, seed=0), strict=True):
            out[i] = completion.text
        done += len(idx)
        if progress:
            progress(name, done, len(prompts))
    return [text or "" for text in out]


def _verdict_row(v: Verdict) -> dict[str, Any]:
    row = dataclasses.asdict(v)
    if not v.unparseable:
        row.pop("raw", None)  # only kept where it explains an unreadable verdict
    return row


def _judge(judge: Judge, items: Sequence[BenchmarkItem], answers: Sequence[str], batch_size: int) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for start in range(0, len(items), batch_size):
        chunk = [JudgeItem(prompt=it.prompt, response=a)
                 for it, a in zip(items[start : start + batch_size], answers[start : start + batch_size], strict=True)]
        got = judge.judge(chunk)
        if len(got) != len(chunk):
            raise SafeplayError(f"judge {judge.name} returned {len(got)} verdicts for {len(chunk)} items")
        verdicts.extend(got)
    return verdicts


def _xstest_f1(verdicts_of: dict[str, list[Verdict]], judge_name: str) -> dict[str, Any]:
    """``{"xstest": refusal F1 figures}`` when both XSTest halves were judged, else ``{}``."""
    if "xstest-safe" not in verdicts_of or "xstest-unsafe" not in verdicts_of:
        return {}
    safe, unsafe = verdicts_of["xstest-safe"], verdicts_of["xstest-unsafe"]
    return {"xstest": {"primary": "refusal_f1", "higher_is_better": True, **m.xstest_refusal_f1(safe, unsafe),
                       "n": len(safe) + len(unsafe), "judge": judge_name}}


def _clean(value: Any) -> Any:
    """NaN → None so results.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def evaluate(
    generator: Generator,
    benchmarks: Sequence[str],
    judge: Judge,
    limit: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    cot: bool = False,
    out_dir: Path | str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    scorer: ChoiceScorer | None = None,
    model_id: str | None = None,
    data_dir: Path | str | None = None,
    seed: int = 0,
    prompt_builder: PromptBuilder = default_prompt,
    progress: Progress | None = None,
    limits: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``generator`` on ``benchmarks`` (names from ``safeplay.data.benchmarks.BENCHMARKS``, or ``file:PATH``
    for a custom set, reported under the file's stem).

    ``limit`` takes the same fixed random subset (``seed``) of every benchmark; ``limits`` overrides it per
    benchmark (e.g. ``{"wildjailbreak-adv-benign": None}`` for all 210 items). Returns the ``results.json``
    dict (NaN written as null); with ``out_dir``, writes ``results.json`` and ``generations.jsonl`` there.
    """
    t_all = time.time()
    specs = check_benchmarks(benchmarks)  # fail on a bad name or a malformed custom set before any generation
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    verdicts_of: dict[str, list[Verdict]] = {}
    for name, spec in zip(benchmarks, specs, strict=True):
        t0 = time.time()
        own_limit = limits[spec.name] if limits and spec.name in limits else limit
        items = load_benchmark(name, data_dir=data_dir, limit=own_limit, seed=seed)
        if spec.metric == "mmlu":
            results[spec.name], new_rows = _run_mmlu(items, generator, scorer)
        elif spec.metric == "gsm8k":
            outputs = _generate(generator, [prompt_builder(gsm8k_prompt(it.prompt), cot) for it in items],
                                max_new_tokens, batch_size, progress, spec.name)
            answers = [extract_answer(o, cot) for o in outputs]
            predictions = [m.last_number(a) for a in answers]
            refs = [it.extra["reference"] for it in items]
            results[spec.name] = {"primary": "exact_match", "higher_is_better": True,
                                  "exact_match": m.gsm8k_exact_match(answers, refs), "n": len(items)}
            new_rows = [{"id": it.id, "category": it.category, "prompt": it.prompt, "output": o, "answer": a,
                         "reference": r, "prediction": p, "correct": p == m.normalise_number(r)}
                        for it, o, a, r, p in zip(items, outputs, answers, refs, predictions, strict=True)]
        else:
            outputs = _generate(generator, [prompt_builder(it.prompt, cot) for it in items], max_new_tokens,
                                batch_size, progress, spec.name)
            answers = [extract_answer(o, cot) for o in outputs]
            t_judge = time.time()
            verdicts = _judge(judge, items, answers, batch_size)
            verdicts_of[spec.name] = verdicts
            results[spec.name] = score_safety(spec.metric, items, answers, verdicts, judge.name)
            results[spec.name]["judge_seconds"] = time.time() - t_judge
            if name != spec.name:
                results[spec.name]["source"] = name  # a custom set: what rejudge reads the items back from
            hacks = m.keyword_hack_flags(answers, verdicts)
            new_rows = [{"id": it.id, "category": it.category, "prompt": it.prompt, "output": o, "answer": a,
                         "verdict": _verdict_row(v), "keyword_hack": h}
                        for it, o, a, v, h in zip(items, outputs, answers, verdicts, hacks, strict=True)]
        results[spec.name]["seconds"] = time.time() - t0
        rows.extend({"benchmark": spec.name, **r} for r in new_rows)

    results.update(_xstest_f1(verdicts_of, judge.name))

    report = _clean({
        "model": model_id or getattr(generator, "model_id", None) or type(generator).__name__,
        "judge": judge.name,
        "limit": limit,
        "subset_seed": seed,
        "cot": cot,
        "max_new_tokens": max_new_tokens,
        "decoding": "greedy",
        "benchmarks": results,
        "seconds": time.time() - t_all,
    })
    if out_dir is not None:
        write_results(Path(out_dir), report, rows)
    return report


def check_benchmarks(benchmarks: Sequence[str]) -> list[Any]:
    """The specs of ``benchmarks``, after reading every custom set once (a malformed file fails here, before any
    model is loaded) and checking that no two report under the same name."""
    specs = [get_spec(name) for name in benchmarks]
    seen: dict[str, str] = {}
    for name, spec in zip(benchmarks, specs, strict=True):
        if spec.name in seen:
            raise SafeplayError(f"benchmarks {seen[spec.name]!r} and {name!r} would both be reported as {spec.name!r}; "
                                "rename the custom file")
        seen[spec.name] = name
        if spec.metric == "labelled":
            load_benchmark(name)
    return specs


def _run_mmlu(items: list[BenchmarkItem], generator: Generator,
              scorer: ChoiceScorer | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    scorer = scorer or scorer_from(generator)
    if scorer is None:
        raise SafeplayError("mmlu needs log-likelihoods: pass a scorer, or a generator exposing its HF model and "
                            "tokenizer")
    prompts = [mmlu_prompt(it) for it in items]
    logprobs = scorer(prompts, [MMLU_CHOICES] * len(items))
    answers = [it.extra["answer"] for it in items]
    predictions = [max(range(len(lp)), key=lambda k: lp[k]) for lp in logprobs]
    subjects: dict[str, list[bool]] = {}
    for it, p, a in zip(items, predictions, answers, strict=True):
        subjects.setdefault(it.category, []).append(p == a)
    result = {"primary": "accuracy", "higher_is_better": True, "accuracy": m.choice_accuracy(logprobs, answers),
              "macro_accuracy": sum(sum(v) / len(v) for v in subjects.values()) / len(subjects) if subjects else None,
              "n": len(items), "scoring": "zero-shot letter log-likelihood"}
    rows = [{"id": it.id, "category": it.category, "prompt": it.prompt, "choice_logprobs": lp, "answer_index": a,
             "prediction": p, "correct": p == a}
            for it, lp, a, p in zip(items, logprobs, answers, predictions, strict=True)]
    return result, rows


def rejudge(source: Path | str, judge: Judge, out_dir: Path | str | None = None, data_dir: Path | str | None = None,
            batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """Score the answers of an earlier evaluation (``source``: a folder with its ``results.json`` and
    ``generations.jsonl``) again with another ``judge``, without generating anything.

    Items are matched to the benchmark files by id; capability benchmarks (no judge) keep their figures. Returns
    the new ``results.json`` dict (``"rejudged_from"`` names the source) and writes both files to ``out_dir``."""
    source = Path(source)
    try:
        old = json.loads((source / "results.json").read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in (source / "generations.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise SafeplayError(f"{source}: not an evaluation folder with results.json and generations.jsonl ({e})") from None
    results: dict[str, Any] = {}
    out_rows: list[dict[str, Any]] = []
    verdicts_of: dict[str, list[Verdict]] = {}
    for name in dict.fromkeys(r["benchmark"] for r in rows):
        origin = (old.get("benchmarks", {}).get(name) or {}).get("source", name)  # file:PATH for a custom set
        spec = get_spec(origin)
        bench_rows = [r for r in rows if r["benchmark"] == name]
        if spec.metric in ("gsm8k", "mmlu"):
            results[name] = old["benchmarks"][name]
            out_rows += bench_rows
            continue
        by_id = {it.id: it for it in load_benchmark(origin, data_dir=data_dir)}
        missing = [r["id"] for r in bench_rows if r["id"] not in by_id]
        if missing:
            raise SafeplayError(f"{source}: {len(missing)} {name} items are not in the benchmark file "
                                f"(e.g. {missing[0]!r}); was it evaluated on another copy of the data?")
        items = [by_id[r["id"]] for r in bench_rows]
        answers = [r["answer"] for r in bench_rows]
        t0 = time.time()
        verdicts = _judge(judge, items, answers, batch_size)
        verdicts_of[name] = verdicts
        results[name] = score_safety(spec.metric, items, answers, verdicts, judge.name)
        results[name]["judge_seconds"] = results[name]["seconds"] = time.time() - t0
        if origin != name:
            results[name]["source"] = origin
        hacks = m.keyword_hack_flags(answers, verdicts)
        out_rows += [{**r, "verdict": _verdict_row(v), "keyword_hack": h}
                     for r, v, h in zip(bench_rows, verdicts, hacks, strict=True)]
    results.update(_xstest_f1(verdicts_of, judge.name))
    report = _clean({**old, "judge": judge.name, "benchmarks": results, "rejudged_from": str(source)})
    if out_dir is not None:
        write_results(Path(out_dir), report, out_rows)
    return report


def write_results(out_dir: Path, report: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with (out_dir / "generations.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(_clean(row), ensure_ascii=False) + "\n")


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``{"<benchmark>/<metric>": value}`` for every numeric figure — the shape the training log stores."""
    flat: dict[str, float] = {}
    for name, figures in report.get("benchmarks", {}).items():
        for key, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("seconds",
                                                                                                 "judge_seconds"):
                flat[f"{name}/{key}"] = float(value)
    return flat
