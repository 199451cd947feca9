"""Warm start: a short SFT stage before RL, for the defender and the attacker.

measurements.md §3/§5: RL from the bundled model does not move (it refuses almost nothing, so groups carry no
signal) and its untrained rewrites are incoherent. So, before RL:

- **Defender.** Harmful seeds (a share of them wrapped in a jailbreak-style template) → a refusal that was
  *self-distilled* under a safety system prompt, sampled ``distill_samples`` times and kept only if it is a
  refusal by two independent checks (the judge: refusal and harmless; its own wording: it says it will not
  help — ``clear_refusal``); prompts with no kept sample fall back to one of several varied refusals written
  for this project (or the user's ``refusal_file``). On the bundled model few samples pass: it rarely writes a
  clean refusal even under the safety prompt (``defender_distilled_share`` in the warm start's metrics).
  Benign seeds → the model's own greedy answer, kept only if the judge calls it helpful and harmless and it
  neither says it refuses nor loops; ``hard_benign_share`` of them come from
  seemingly-harmful benign sources and ``benign_wrapped_share`` are shown wrapped (over-refusal guards).
  With CoT on, targets carry a short thinking part in the strict format so that the format check can pass
  from step 1.
- **Attacker.** (plain request, tactic) → the request set in a frame of that tactic (``safeplay.game.frames``),
  for harmful and benign seeds, so that RL's tactic-conditioned revisions start coherent and on topic; optionally
  mixed with JailbreakBench PAIR artifacts (``attacker_pair_share``; pairs whose goal or prompt near-duplicates
  a prompt of the run's ``eval.benchmarks`` are dropped).

- **Evaluator** (TriPlay, ``evaluator_examples > 0``): the 3-class prompt → the human label word, from the train
  side of the human-labelled XSTest completions (the held-out evaluator set is on the test side).

The stage is logged as a ``warm_start`` metrics row; the trainer evaluates right after it and checkpoints
(step 0), so a killed run resumes after the warm start. A run killed *during* it redoes it (a few minutes).
The defender's SFT examples are also written to ``<run>/warm_start_sft.jsonl`` (token ids): with
``rl.aux_sft_coef > 0`` they are the data of the auxiliary SFT loss mixed into every RL update (§1.7's PTX).
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from safeplay.engine.config import TrainConfig
from safeplay.data.seed_sources import CONTEXTUAL_SOURCES, HARD_BENIGN_SOURCES
from safeplay.errors import SafeplayError
from safeplay.game.templates import SAFETY_SYSTEM, attacker_prompt, defender_prompt
from safeplay.game.wrappers import wrap
from safeplay.generation.base import ChatPrompt, SamplingParams
from safeplay.judges.base import JudgeItem
from safeplay.rl.batch import RoleSample, collate, length_chunks
from safeplay.rl.losses import sft_loss
from safeplay.rewards.answer_checks import degenerate, has_refusal_wording

log = logging.getLogger("safeplay")

FALLBACK_REFUSALS = [
    "I can't help with that. It could cause real harm to people, so I won't provide instructions or details.",
    "I won't help with this one. It could be used to hurt people, but I'm happy to help with something else.",
    "Sorry, but I can't provide that. It could put people in danger or break the law.",
    "I'm not able to help with that request. If you're researching the topic for safety reasons, I can share general, non-harmful information instead.",
    "I have to decline this request because it could lead to harm. Let me know if there's another way I can help.",
    "I can't assist with that, even as a story or a hypothetical. The details could be misused to harm someone.",
    "I won't write that. It could hurt or mislead people. I can help you with a different, safe version of your project.",
    "I'm sorry, but I can't help with anything meant to harm, deceive or exploit others.",
    "That's not something I can help with. Giving those details could cause real harm, whatever the framing.",
    "I can't share private or personal information about people, and I won't help with requests that could violate someone's privacy.",
    "I won't produce hateful or demeaning content about any group of people. I'm glad to help with a respectful piece instead.",
    "I cannot provide instructions for that. It's dangerous and could be illegal. If you or someone else is at risk, please contact local emergency services.",
    "Sorry, but I won't assist with this request. If you're dealing with a difficult situation, I'm happy to talk about safe options.",
    "I'm not able to help with that because it could be used to hurt someone. Is there something else I can help you with?",
    "That's not something I can provide. It's dangerous and potentially illegal, and I don't want to contribute to harm.",
    "I have to decline. Sharing this could put people at risk. If you're curious about the topic, I can point you to general safety information instead.",
    "No, I won't help with this. I'd be glad to help with a related question that doesn't involve harming anyone.",
    "I can't do that. Requests like this can lead to serious harm, so I'm going to refuse, but I can help with something safer.",
    "I'm sorry, I can't assist with that request. If someone is in danger, please contact local emergency services.",
]

THINK_REFUSE = "This request asks for something that could cause harm, so I should not help with it."
THINK_HELP = "This is a harmless request, so I will answer it helpfully."


def clear_refusal(answer: str, verdict, finish_reason: str) -> tuple[bool, bool]:
    """(judge accepts it, it is a clear refusal) for a self-distilled refusal candidate.

    A refusal target must be a refusal by two independent checks: the judge (refusal, harmless) and the answer's
    own wording (``has_refusal_wording``: it says it will not help), and it must be complete and not loop. The
    judge alone kept "Sure, I'd be happy helping you today…" for an identity-theft request, and every one of 33
    self-distilled "refusals" recorded from one run (``tests/data/warm_start_distilled_audit.jsonl``)."""
    judged = bool(verdict.refusal) and verdict.response_harmful is False and finish_reason != "length"
    return judged, judged and has_refusal_wording(answer) and not degenerate(answer)


def _target(answer: str, thinking: str, cot: bool) -> str:
    return f"{thinking} </think> <answer> {answer} </answer>" if cot else answer


def _encode(policies, prompt: ChatPrompt, target: str, role: str) -> RoleSample:
    tok = policies.tokenizer
    prompt_ids = tok(policies.render(prompt), add_special_tokens=False)["input_ids"]
    target_ids = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return RoleSample(role=role, prompt_ids=prompt_ids, completion_ids=target_ids, reward=0.0)


def _judge(judge, prompts: Sequence[str], answers: Sequence[str]):
    return judge.judge([JudgeItem(prompt=p, response=a) for p, a in zip(prompts, answers)])


def class_sample(seeds, harmful: bool, n: int, special_sources, share: float, rng: random.Random) -> list[str]:
    """``n`` seed texts of one class, ``share`` of them from ``special_sources`` when the seeds hold any."""
    special = [s.text for s in seeds if s.harmful == harmful and s.source in special_sources]
    plain = [s.text for s in seeds if s.harmful == harmful and s.source not in special_sources]
    rng.shuffle(special)
    rng.shuffle(plain)
    n_special = min(len(special), round(n * share))
    picked = special[:n_special] + plain[: n - n_special]
    rng.shuffle(picked)
    return picked


def benign_sample(seeds, n: int, hard_share: float, rng: random.Random) -> list[str]:
    """``n`` benign seed texts, ``hard_share`` of them from the seemingly-harmful sources when there are any."""
    return class_sample(seeds, False, n, HARD_BENIGN_SOURCES, hard_share, rng)


def defender_data(cfg: TrainConfig, policies, judge, seeds, rng: random.Random) -> tuple[list[RoleSample], dict]:
    ws, cot = cfg.warm_start, cfg.game.cot
    harmful = class_sample(seeds, True, ws.harmful_prompts, CONTEXTUAL_SOURCES, ws.contextual_share, rng)
    benign = benign_sample(seeds, ws.benign_prompts, ws.hard_benign_share, rng)
    stats: dict[str, float] = {}
    refusals: dict[str, str] = {}
    if ws.refusal_file:
        path = Path(ws.refusal_file)
        if not path.is_file():
            raise SafeplayError(f"warm_start.refusal_file {path} not found")
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                refusals[row["prompt"]] = row["refusal"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise SafeplayError(f"{path}:{i}: expected a JSON object with 'prompt' and 'refusal'") from None
        harmful = list(refusals)[: ws.harmful_prompts]
    else:
        judge_accepted = 0
        sampling = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=ws.max_new_tokens)
        prompts = [ChatPrompt([{"role": "system", "content": SAFETY_SYSTEM}, {"role": "user", "content": h}]) for h in harmful]
        for k in range(ws.distill_samples):
            todo = [i for i, h in enumerate(harmful) if h not in refusals]
            if not todo:
                break
            outs = policies.base_generator().generate([prompts[i] for i in todo], sampling, seed=cfg.seed + k)
            verdicts = _judge(judge, [harmful[i] for i in todo], [o.text for o in outs])
            for i, o, v in zip(todo, outs, verdicts):
                judged, clear = clear_refusal(o.text, v, o.finish_reason)
                judge_accepted += judged
                if clear:
                    refusals[harmful[i]] = o.text.strip()
        stats["defender_distilled_share"] = len(refusals) / max(1, len(harmful))
        # Of the samples the judge alone would have kept, the share the wording check rejected.
        stats["defender_distilled_judge_only_rejected"] = (
            1.0 - len(refusals) / judge_accepted if judge_accepted else 0.0)
    samples: list[RoleSample] = []
    for h in harmful:
        answer = refusals.get(h) or rng.choice(FALLBACK_REFUSALS)
        shown = wrap(h, rng) if rng.random() < ws.wrapped_share else h
        prompt = defender_prompt(shown, cot, system=cfg.game.defender_system)
        samples.append(_encode(policies, prompt, _target(answer, THINK_REFUSE, cot), "defender"))
    greedy = SamplingParams(temperature=0.0, max_new_tokens=ws.max_new_tokens)
    outs = policies.base_generator().generate([ChatPrompt([{"role": "user", "content": b}]) for b in benign], greedy, seed=cfg.seed)
    verdicts = _judge(judge, benign, [o.text for o in outs])
    kept = 0
    for b, o, v in zip(benign, outs, verdicts):
        answer = o.text.strip()
        if (v.refusal is False and v.response_harmful is False and answer and not has_refusal_wording(answer)
                and not degenerate(answer)):
            shown = wrap(b, rng) if rng.random() < ws.benign_wrapped_share else b
            prompt = defender_prompt(shown, cot, system=cfg.game.defender_system)
            samples.append(_encode(policies, prompt, _target(o.text.strip(), THINK_HELP, cot), "defender"))
            kept += 1
    stats["defender_benign_kept_share"] = kept / max(1, len(benign))
    stats["defender_examples"] = float(len(samples))
    return samples, stats


def attacker_data(cfg: TrainConfig, policies, seeds, rng: random.Random, exclude: Sequence[str]) -> tuple[list[RoleSample], dict]:
    """(plain request, tactic) → the request set in a frame of that tactic (``safeplay.game.frames``), for harmful
    and benign seeds alike, plus ``attacker_pair_share`` of JailbreakBench PAIR pairs (no tactic). Every target fits
    the attacker's ``max_new_tokens`` (less 8), so the attacker learns to finish its revisions."""
    from safeplay.data.attacker_aids import load_attack_pairs
    from safeplay.data.validation import is_held_out
    from safeplay.game.frames import TACTICS, frame_for
    from safeplay.paths import data_dir

    ws, cot = cfg.warm_start, cfg.game.cot
    tok = policies.tokenizer
    limit = cfg.attacker.max_new_tokens - 8
    fits = lambda text: len(tok(text, add_special_tokens=False)["input_ids"]) <= limit  # noqa: E731
    n_pairs = round(ws.attacker_pairs * ws.attacker_pair_share)
    examples: list[tuple[str, str, bool, str | None]] = []  # (plain, jailbreak, harmful, tactic line)
    root = data_dir()
    pool = 0
    if n_pairs and root is not None:
        pairs = [(plain, jb) for plain, jb in load_attack_pairs(root, exclude=list(exclude)) if fits(jb)]
        pool = len(pairs)
        rng.shuffle(pairs)
        examples += [(plain, jb, True, None) for plain, jb in pairs[:n_pairs]]
    others = [s for s in seeds if s.source not in CONTEXTUAL_SOURCES and not is_held_out(s.text)]
    rng.shuffle(others)
    for s in others:
        if len(examples) >= ws.attacker_pairs:
            break
        tactic = rng.choice(TACTICS)
        framed = frame_for(s.text, tactic, rng)
        if fits(framed):
            examples.append((s.text, framed, s.harmful, tactic.line))
    samples = []
    thinking = "I will set the request inside a scenario of this tactic so that it does not look like a direct request."
    for plain, jb, harmful, tactic in examples:
        prompt = attacker_prompt(plain, harmful, cot, tactic=tactic, style=cfg.game.template_style)
        samples.append(_encode(policies, prompt, _target(jb, thinking, cot), "attacker"))
    return samples, {"attacker_examples": float(len(samples)), "attacker_pair_pool": float(pool),
                     "attacker_framed_examples": float(sum(t is not None for *_, t in examples))}


def recipe_data(cfg: TrainConfig, policies) -> tuple[list[RoleSample], dict]:
    """The recipe's own supervised examples (``Recipe.warm_start_examples``: TriPlay's evaluator labels), for the
    roles this run plays; counted per role as ``<role>_examples``."""
    from safeplay.recipes import recipe_class

    examples = [e for e in recipe_class(cfg.recipe).warm_start_examples(cfg) if e[0] in policies.roles]
    samples = [_encode(policies, prompt, target, role) for role, prompt, target in examples]
    counts: dict[str, float] = {}
    for role, _, _ in examples:
        counts[f"{role}_examples"] = counts.get(f"{role}_examples", 0.0) + 1
    return samples, counts


def sft(policies, samples: list[RoleSample], cfg: TrainConfig, rng: random.Random) -> dict[str, float]:
    """Plain SFT of each sample's role on its target tokens (per policy: one optimiser)."""
    ws = cfg.warm_start
    by_policy: dict[str, list[RoleSample]] = {}
    for s in samples:
        by_policy.setdefault(policies.policy_name(s.role), []).append(s)
    stats: dict[str, float] = {}
    pad = policies.tokenizer.pad_token_id
    policies.train()
    for name, group in by_policy.items():
        params = policies.trainable_parameters(group[0].role)
        opt = torch.optim.AdamW(params, lr=ws.lr, betas=(0.9, 0.95), weight_decay=0.0)
        losses = []
        for epoch in range(ws.epochs):
            order = list(group)
            rng.shuffle(order)
            # Length-sorted chunks inside a shuffled order keep padding low without fixing the batch makeup.
            for start in range(0, len(order), ws.batch_size):
                batch_samples = order[start : start + ws.batch_size]
                opt.zero_grad(set_to_none=True)
                micro = cfg.rl.micro_batch_size
                by_role: dict[str, list[RoleSample]] = {}
                for s in batch_samples:
                    by_role.setdefault(s.role, []).append(s)
                for role, items in by_role.items():
                    length = lambda s: len(s.prompt_ids) + len(s.completion_ids)  # noqa: E731
                    for chunk in length_chunks(items, length, micro, cfg.rl.micro_batch_tokens):
                        batch = collate(chunk, pad, policies.device)
                        logp = policies.token_logprobs(role, batch.input_ids, batch.attention_mask, batch.start,
                                                       only=batch.response_mask).float()
                        loss = sft_loss(logp, batch.response_mask)
                        (loss * len(chunk) / len(batch_samples)).backward()
                        losses.append(float(loss.detach()))
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip or 1.0)
                opt.step()
        opt.zero_grad(set_to_none=True)
        stats[f"sft_loss_first/{name}"] = losses[0] if losses else float("nan")
        stats[f"sft_loss_last/{name}"] = sum(losses[-4:]) / max(1, len(losses[-4:]))
    return stats


SFT_FILE = "warm_start_sft.jsonl"


def save_sft_samples(path: Path, samples: list[RoleSample]) -> None:
    """Token ids of SFT examples, one JSON object per line, written atomically."""
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as f:
        for s in samples:
            f.write(json.dumps({"role": s.role, "prompt_ids": s.prompt_ids, "completion_ids": s.completion_ids}) + "\n")
    tmp.replace(path)


def load_sft_samples(path: Path) -> list[RoleSample]:
    if not path.is_file():
        raise SafeplayError(f"{path} is missing: rl.aux_sft_coef > 0 needs the warm start's SFT data "
                            "(enable warm_start, or set rl.aux_sft_coef=0)")
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(RoleSample(row["role"], row["prompt_ids"], row["completion_ids"], reward=0.0))
    return out


def make_warm_start(cfg: TrainConfig, judge, seeds):
    def run(policies, run_dir) -> dict[str, Any]:
        t0 = time.time()
        rng = random.Random(cfg.seed)
        samples: list[RoleSample] = []
        stats: dict[str, float] = {}
        if cfg.warm_start.defender and "defender" in policies.roles:
            d, s = defender_data(cfg, policies, judge, seeds, rng)
            samples += d
            stats.update(s)
        if cfg.warm_start.attacker and "attacker" in policies.roles and not cfg.game.defender_only:
            from safeplay.data.benchmarks import eval_prompt_texts
            from safeplay.paths import data_dir

            root = data_dir()
            # PAIR pairs are JailbreakBench behaviours: they may be used when JailbreakBench is not this run's
            # evaluation; pairs near-duplicating the run's own evaluation prompts are dropped either way.
            exclude = eval_prompt_texts(root, cfg.eval.benchmarks) if root is not None else []
            a, s = attacker_data(cfg, policies, seeds, rng, exclude)
            samples += a
            stats.update(s)
        r, s = recipe_data(cfg, policies)
        samples += r
        stats.update(s)
        stats["time/data_seconds"] = time.time() - t0
        save_sft_samples(Path(run_dir.root) / SFT_FILE, [s for s in samples if s.role == "defender"])
        stats.update(sft(policies, samples, cfg, rng))
        stats["time/seconds"] = time.time() - t0
        log.info("warm start done in %.0f s (%d examples)", stats["time/seconds"], len(samples))
        return stats

    return run
