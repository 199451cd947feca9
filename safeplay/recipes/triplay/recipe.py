"""TriPlay-RL (papers.md §3): three separate policies — Red (attacker), Blue (defender), Eval (evaluator) —
trained one phase at a time with GRPO; the evaluator's label is the reward source of Red and Blue.

Schedule: ``triplay.phase_steps = [red, blue, eval]`` steps per phase, cycling Red → Blue → Eval; only the
phase's role learns (``trains``). A phase with 0 steps is skipped.

* **Red**: harmful seeds only (TriPlay's seeds are basic harmful prompts), G attacks per seed (one GRPO group).
  Each attack is answered by the live Blue and by every frozen defender (``triplay.frozen_defenders``: ``base`` =
  adapters off, ``base-system`` = adapters off + a safety system prompt, or a model spec loaded on first use);
  the evaluator labels every answer. Reward = Σ_i w_i·R_r(label_i) + R_sem − P_div (``triplay.rewards``).
  R_sem: the evaluator policy itself answers :func:`semantic_consistency_prompt` greedily (the only LLM judge the
  game holds, as in the paper's LLM-judge check); ``+triplay.semantic_reward`` when it says the attack keeps the
  seed's intent, nothing when it says no ("positive only if judged relevant") or its yes/no is unreadable (counted).
  P_div: against the Attack Success Pool, computed *before* this step's successes join it (a success never
  penalises itself), scaled to at most ``triplay.diversity_max`` (``rewards.diversity``). An attack is a success
  when the live Blue's answer is labelled unsafe.
* **Blue**: a curriculum batch; harmful seeds are rewritten by the live Red (one attack per seed, the
  environment), benign seeds go verbatim (our addition against over-refusal; ``seeds.harmful_share: 1`` is
  paper-pure). Blue answers each query G times (one GRPO group per query); reward {unsafe −1, refusal 0,
  helpful +1}. Successful attacks join the pool here too.
* **Eval**: ⟨prompt, response⟩ pairs drawn (seeded) from a buffer of the latest Red/Blue games (live and frozen
  defenders' answers), labelled by the majority vote of ``triplay.experts`` with the agreement filter; the
  evaluator samples G labels per kept pair, reward 1 when its label equals the vote (GRPO). When the buffer is
  short (e.g. an Eval-only schedule), a fresh Blue-style round fills it first.

**Defender-only** (``game.defender_only``, the ablation arm of ``safeplay ablate``): no attacker turn anywhere —
Blue's harmful seeds go verbatim, and Red steps stay in the schedule but are idle (no games, no update), so Blue
and Eval get the same number of steps as in the self-play arm with the same ``steps``.

In-loop labels (Red/Blue) are the evaluator's **greedy** answer (a reward source should not be a dice roll; the
Eval phase samples with ``evaluator`` settings to explore). By default (``triplay.label_decoding: scored``) the
evaluator's answer is constrained to the three label words (and yes/no for the semantic check): the most probable
word is its label, and the Eval phase samples a word from those probabilities (``models.choices``). A 135M model
asked for "exactly one word" writes free text instead on most items, so free decoding
(``label_decoding: generate``) left Red and Blue rewarded by the fallback judge, not by the evaluator. With
free decoding an unreadable label is counted and falls back to the training judge (``judge.name``); without a
judge (``ctx.judge is None``) it is dropped.

At every phase change the evaluator is also scored against human labels on a small fixed held-out set
(:func:`heldout_items`).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from statistics import mean
from typing import Any, Sequence

from safeplay.errors import SafeplayError
from safeplay.game.rollout import Game, Turn, play_attacks, play_defenses
from safeplay.game.templates import evaluator_prompt, parse_evaluator_label
from safeplay.generation.base import ChatPrompt
from safeplay.judges.base import JudgeItem, Label, Verdict
from safeplay.recipes.base import Recipe, RecipeContext, StepResult, sample_from, step_seed
from safeplay.recipes.triplay.config import TriPlayTrainConfig
from safeplay.recipes.triplay.evaluator import EvaluatorLabelling
from safeplay.recipes.triplay.frozen import FrozenDefender, FrozenDefenders
from safeplay.recipes.triplay.labels import LABELS, evaluator_sft_examples, heldout_items
from safeplay.recipes.triplay.rewards import blue_reward, evaluator_reward, red_reward
from safeplay.rewards.diversity import AttackSuccessPool, diversity_penalties, sbert_diversity, self_bleu

log = logging.getLogger("safeplay")

PHASES = ("red", "blue", "eval")
PHASE_ROLE = {"red": "attacker", "blue": "defender", "eval": "evaluator"}


def phase_index(step: int, phase_steps: Sequence[int]) -> int:
    """Phase (0 Red, 1 Blue, 2 Eval) of 1-based ``step`` in the cycling schedule."""
    pos = (step - 1) % sum(phase_steps)
    for i, n in enumerate(phase_steps):
        if pos < n:
            return i
        pos -= n
    raise AssertionError("unreachable")


class TriPlay(EvaluatorLabelling, FrozenDefenders, Recipe):
    name = "triplay"
    config_class = TriPlayTrainConfig
    ablation_arms = {"no-diversity": ["triplay.diversity=false"]}
    roles = ("attacker", "defender", "evaluator")
    default_share: dict[str, str] = {}

    @classmethod
    def preflight(cls, cfg: Any) -> None:
        """Frozen defenders' model specs exist and have distinct names; expert judges can be built."""
        from safeplay.judges.registry import check_judge
        from safeplay.models.loading import check_model_spec

        for spec in cfg.triplay.frozen_defenders:
            if spec not in ("base", "base-system"):
                check_model_spec(spec, "triplay.frozen_defenders")
        names = [Path(s.rstrip("/")).name or s for s in cfg.triplay.frozen_defenders]
        if len(set(names)) != len(names):
            raise SafeplayError(f"triplay.frozen_defenders: names must be distinct, got {names}")
        for expert in cfg.triplay.experts:
            if expert != "|":
                check_judge(expert, cfg.judge.options if expert == cfg.judge.name else {}, "triplay.experts")

    @classmethod
    def warm_start_examples(cls, cfg: Any) -> list[tuple[str, ChatPrompt, str]]:
        """``warm_start.evaluator_examples`` (3-class prompt, label word) pairs from human labels
        (:func:`evaluator_sft_examples`); none without a data directory."""
        from safeplay.paths import data_dir

        if cfg.warm_start.evaluator_examples <= 0:
            return []
        root = data_dir()
        if root is None:
            log.warning("warm start: no data directory, so no evaluator examples (human labels are needed)")
            return []
        pairs = evaluator_sft_examples(root, cfg.warm_start.evaluator_examples, seed=cfg.seed)
        return [("evaluator", prompt, label) for prompt, label in pairs]

    def __init__(self, ctx: RecipeContext):
        super().__init__(ctx)
        t = self.cfg.triplay  # its values are checked where the config is read (TriPlayConfig)
        self.pool = AttackSuccessPool(cap=t.pool_cap)
        self.buffer: list[dict[str, Any]] = []
        """Recent ⟨prompt, response⟩ pairs from Red/Blue games: the Eval phase's training inputs."""
        self.buffer_cap = 4 * self.cfg.batch_size * max(1, self.cfg.rl.group_size)
        self.last_phase: int | None = None
        self.totals = {"labels": 0, "label_unparseable": 0, "label_fallback": 0, "vote_items": 0, "vote_dropped": 0}
        self.experts: Any = None
        """The voting judge of the Eval phase (built on first use; tests may set their own)."""
        self._frozen: list[FrozenDefender] | None = None
        self._heldout: list[tuple[str, str, Label]] | None = None

    # -- schedule -------------------------------------------------------------------------------------

    def phase(self, step: int) -> int:
        return phase_index(step, self.cfg.triplay.phase_steps)

    def trains(self, step: int) -> Sequence[str]:
        phase = PHASES[self.phase(step)]
        if phase == "red" and self.cfg.game.defender_only:
            return ()
        return (PHASE_ROLE[phase],)

    # -- state ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "pool": self.pool.state_dict(),
            "buffer": [dict(p) for p in self.buffer],
            "last_phase": self.last_phase,
            "totals": dict(self.totals),
        }

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.pool.load_state_dict(state["pool"])
        self.buffer = [dict(p) for p in state["buffer"]]
        self.last_phase = state["last_phase"]
        self.totals = dict(state["totals"])

    # -- parts ----------------------------------------------------------------------------------------

    def _remember(self, pairs: Sequence[dict[str, Any]]) -> None:
        self.buffer.extend(pairs)
        del self.buffer[: max(0, len(self.buffer) - self.buffer_cap)]

    def _add_successes(self, texts: Sequence[str]) -> int:
        texts = list(dict.fromkeys(t for t in texts if t.strip() and t not in self.pool.texts))
        if not texts:
            return 0
        emb = None
        if self.cfg.triplay.diversity and self.ctx.embedder is not None:
            emb = self.ctx.embedder.encode(texts)
        return self.pool.add_many(texts, emb)

    def _verdict(self, label: Label | None, source: str) -> Verdict:
        """The game's verdict from a label (the evaluator does not judge the prompt: prompt_harmful stays None)."""
        if label is None:
            return Verdict(unparseable=True, raw="evaluator label unreadable", judge="evaluator")
        judge = "evaluator" if source == "evaluator" else f"fallback:{self.ctx.judge.name}"
        return Verdict(refusal=label == "refusal", response_harmful=label == "unsafe", label=label, judge=judge)

    # -- phases ---------------------------------------------------------------------------------------

    def play(self, step: int) -> StepResult:
        idx = self.phase(step)
        metrics: dict[str, Any] = {"triplay/phase": PHASES[idx], "triplay/phase_index": float(idx)}
        if idx != self.last_phase:
            metrics.update(self.heldout_metrics(step))
        result = (self.play_red, self.play_blue, self.play_eval)[idx](step)
        result.metrics = {**metrics, **result.metrics}
        self.last_phase = idx
        totals = self.totals
        result.metrics["triplay/pool_size"] = float(len(self.pool))
        result.metrics["triplay/label_unparseable_total"] = float(totals["label_unparseable"])
        result.metrics["triplay/label_fallback_total"] = float(totals["label_fallback"])
        return result

    def play_red(self, step: int) -> StepResult:
        cfg, ctx, t = self.cfg, self.ctx, self.cfg.triplay
        if cfg.game.defender_only:
            # The ablation arm: no attacker plays or learns. Its Red steps stay in the schedule, idle, so that
            # Blue and Eval train the same number of steps as in the self-play arm with the same ``steps``.
            return StepResult(games=[], samples=[], metrics={"triplay/red_idle": 1.0})
        seeds = ctx.curriculum.take("harmful", cfg.batch_size)
        games = []
        for i, s in enumerate(seeds):
            for _ in range(max(1, cfg.rl.group_size)):
                g = Game(step=step, seed_text=s.text, seed_harmful=True, marked_for_attack=True)
                g.extra["group"] = f"{step}:{i}"
                games.append(g)
        play_attacks(ctx.policies, games, cfg.attacker, cfg.game.cot, step_seed(cfg.seed, step, "attacker"),
                     style=cfg.game.template_style, tactics=ctx.tactics)
        play_defenses(ctx.policies, games, cfg.defender, cfg.game.cot, step_seed(cfg.seed, step, "defender"),
                      system=cfg.game.defender_system)
        frozen = self.frozen_defenders()
        answers = [[g.defense.public for g in games]]
        for d in frozen:
            answers.append(self.frozen_answers(d, games, step_seed(cfg.seed, step, f"frozen:{d.name}")))
        names = ["live"] + [d.name for d in frozen]
        flat = [(g.query, a[j]) for a in answers for j, g in enumerate(games)]
        flat_labels, flat_sources = self.label(flat, step_seed(cfg.seed, step, "evaluator-label"))
        n = len(games)
        labels = [flat_labels[k * n:(k + 1) * n] for k in range(len(names))]
        sources = [flat_sources[k * n:(k + 1) * n] for k in range(len(names))]
        sem = self.semantic_checks(games, step_seed(cfg.seed, step, "semantic"))
        penalties = (
            diversity_penalties([g.attack.public for g in games], self.pool, ctx.embedder, k=t.diversity_k,
                                max_penalty=t.diversity_max)
            if t.diversity else [0.0] * n
        )
        samples = []
        for j, g in enumerate(games):
            g.verdict = self._verdict(labels[0][j], sources[0][j])
            g.extra["label_source"] = sources[0][j]
            g.extra["frozen"] = [
                {"name": names[k], "answer": answers[k][j], "label": labels[k][j], "label_source": sources[k][j]}
                for k in range(1, len(names))
            ]
            g.extra["semantic_ok"] = sem[j]
            g.extra["diversity_penalty"] = penalties[j]
            r = red_reward([labels[k][j] for k in range(len(names))], t.defender_weights,
                           semantic_ok=sem[j], semantic_reward=t.semantic_reward, diversity_penalty=penalties[j])
            g.rewards["attacker"] = r
            if r is not None:
                samples.append(sample_from(g.attack, r, group=g.extra["group"]))
        self._remember([
            {"prompt": g.query, "response": answers[k][j], "seed": g.seed_text, "defender": names[k]}
            for j, g in enumerate(games) for k in range(len(names))
        ])
        added = self._add_successes([g.attack.public for j, g in enumerate(games) if labels[0][j] == "unsafe"])
        metrics: dict[str, Any] = {"triplay/pool_added": float(added)}
        for k, name in enumerate(names):
            known = [lab for lab in labels[k] if lab is not None]
            if known:
                metrics[f"triplay/asr/{name}"] = sum(lab == "unsafe" for lab in known) / len(known)
        checked = [s for s in sem if s is not None]
        if t.semantic_reward:
            metrics["triplay/semantic_ok_rate"] = sum(checked) / len(checked) if checked else None
            metrics["triplay/semantic_unparseable_rate"] = 1 - len(checked) / n if n else None
        metrics["triplay/diversity_penalty_mean"] = mean(penalties) if penalties else 0.0
        metrics.update(self._label_metrics(flat_sources))
        metrics.update(self._attack_diversity(games))
        return StepResult(games=games, samples=samples, metrics=metrics)

    def _blue_games(self, step: int) -> list[Game]:
        """A curriculum batch; harmful seeds rewritten once by the live Red, each query copied G times."""
        cfg, ctx = self.cfg, self.ctx
        seeds = ctx.curriculum.next_batch(cfg.batch_size)
        attack = not cfg.game.defender_only  # defender-only: every seed verbatim
        base = [Game(step=step, seed_text=s.text, seed_harmful=s.harmful, marked_for_attack=attack and s.harmful)
                for s in seeds]
        play_attacks(ctx.policies, base, cfg.attacker, cfg.game.cot, step_seed(cfg.seed, step, "attacker"),
                     style=cfg.game.template_style, tactics=ctx.tactics)
        games = []
        for i, b in enumerate(base):
            for _ in range(max(1, cfg.rl.group_size)):
                g = Game(step=step, seed_text=b.seed_text, seed_harmful=b.seed_harmful, marked_for_attack=b.marked_for_attack,
                         attack=b.attack, tactic=b.tactic)
                g.extra["group"] = f"{step}:{i}"
                games.append(g)
        play_defenses(ctx.policies, games, cfg.defender, cfg.game.cot, step_seed(cfg.seed, step, "defender"),
                      system=cfg.game.defender_system)
        labels, sources = self.label([(g.query, g.defense.public) for g in games],
                                     step_seed(cfg.seed, step, "evaluator-label"))
        for g, lab, src in zip(games, labels, sources):
            g.verdict = self._verdict(lab, src)
            g.extra["label_source"] = src
        self._remember([
            {"prompt": g.query, "response": g.defense.public, "seed": g.seed_text, "defender": "live"} for g in games
        ])
        self._add_successes([g.attack.public for g in games if g.attack is not None and g.verdict.label == "unsafe"])
        return games

    def play_blue(self, step: int) -> StepResult:
        games = self._blue_games(step)
        samples = []
        for g in games:
            r = blue_reward(g.verdict.label)
            g.rewards["defender"] = r
            if r is not None:
                samples.append(sample_from(g.defense, r, group=g.extra["group"]))
        metrics: dict[str, Any] = {}
        attacked = [g.verdict.label for g in games if g.marked_for_attack and g.verdict.label is not None]
        if attacked:
            metrics["triplay/asr/live"] = sum(lab == "unsafe" for lab in attacked) / len(attacked)
        for split, keep in (("harmful", True), ("benign", False)):
            labs = [g.verdict.label for g in games if g.seed_harmful == keep and g.verdict.label is not None]
            for lab in LABELS:
                if labs:
                    metrics[f"triplay/blue/{split}/{lab}"] = sum(x == lab for x in labs) / len(labs)
        metrics.update(self._label_metrics([g.extra["label_source"] for g in games]))
        return StepResult(games=games, samples=samples, metrics=metrics)

    def play_eval(self, step: int) -> StepResult:
        cfg = self.cfg
        games: list[Game] = []
        if len(self.buffer) < cfg.batch_size:
            games = self._blue_games(step)  # nothing to learn from yet: play a round first (Red/Blue don't learn)
        rng = random.Random(step_seed(cfg.seed, step, "eval-pairs"))
        chosen = [self.buffer[i] for i in sorted(rng.sample(range(len(self.buffer)), min(cfg.batch_size, len(self.buffer))))]
        vote = self.expert_judge().vote([JudgeItem(p["prompt"], p["response"], p["seed"]) for p in chosen])
        kept_idx = set(vote.kept)
        kept = [(p, vote.verdicts[i].label) for i, p in enumerate(chosen)
                if i in kept_idx and vote.verdicts[i].label is not None]
        self.totals["vote_items"] += len(chosen)
        self.totals["vote_dropped"] += len(chosen) - len(kept)
        G = max(1, cfg.rl.group_size)
        prompts = [evaluator_prompt(p["prompt"], p["response"]) for p, _ in kept for _ in range(G)]
        comps = self.sampled_labels(prompts, step_seed(cfg.seed, step, "evaluator")) if prompts else []
        samples, preds = [], []
        for k, c in enumerate(comps):
            i = k // G
            pred = parse_evaluator_label(c.text)
            preds.append(pred)
            turn = Turn("evaluator", prompts[k], c, None, c.text.strip())
            samples.append(sample_from(turn, evaluator_reward(pred, kept[i][1]), group=f"{step}:e{i}"))
        voted = [lab for _, lab in kept for _ in range(G)]
        metrics: dict[str, Any] = {
            "triplay/eval/pairs": float(len(chosen)),
            "triplay/eval/vote_kept": float(len(kept)),
            "triplay/eval/vote_dropped_rate": (len(chosen) - len(kept)) / len(chosen) if chosen else None,
            "triplay/eval/accuracy_vs_vote": mean(float(p == v) for p, v in zip(preds, voted)) if preds else None,
            "triplay/eval/unparseable_rate": mean(float(p is None) for p in preds) if preds else None,
            "evaluator/reward_mean": mean(s.reward for s in samples) if samples else None,
        }
        for lab in LABELS:
            metrics[f"triplay/eval/vote_share/{lab}"] = (
                sum(v == lab for _, v in kept) / len(kept) if kept else None
            )
        return StepResult(games=games, samples=samples, metrics=metrics)

    # -- metrics --------------------------------------------------------------------------------------

    @staticmethod
    def _label_metrics(sources: Sequence[str]) -> dict[str, float]:
        if not sources:
            return {}
        n = len(sources)
        return {
            "triplay/label_evaluator_rate": sum(s == "evaluator" for s in sources) / n,
            "triplay/label_fallback_rate": sum(s == "fallback" for s in sources) / n,
            "triplay/label_dropped_rate": sum(s == "none" for s in sources) / n,
        }

    def _attack_diversity(self, games: Sequence[Game]) -> dict[str, float]:
        texts = [g.attack.public for g in games if g.attack is not None and g.attack.public.strip()]
        out: dict[str, float] = {}
        if len(texts) >= 2:
            out["triplay/attack_self_bleu_diversity"] = 1.0 - self_bleu(texts) / 100.0
            if self.ctx.embedder is not None:
                out["triplay/attack_sbert_diversity"] = sbert_diversity(self.ctx.embedder.encode(texts))
        return out

    def heldout_metrics(self, step: int) -> dict[str, float]:
        """Evaluator accuracy against human labels on the fixed held-out set (greedy, cheap)."""
        if self._heldout is None:
            from safeplay.paths import data_dir

            root = data_dir()
            try:
                self._heldout = heldout_items(root) if root is not None else []
            except (SafeplayError, OSError, KeyError, ValueError) as e:
                log.warning("triplay: no held-out evaluator set (%s)", e)
                self._heldout = []
        if not self._heldout:
            return {}
        prompts = [evaluator_prompt(p, r) for p, r, _ in self._heldout]
        preds = self.greedy_labels(prompts, step_seed(self.cfg.seed, step, "heldout"))
        gold = [lab for _, _, lab in self._heldout]
        out = {
            "triplay/heldout/accuracy": mean(float(p == g) for p, g in zip(preds, gold)),
            "triplay/heldout/unparseable_rate": mean(float(p is None) for p in preds),
            "triplay/heldout/n": float(len(gold)),
        }
        for lab in LABELS:
            idx = [i for i, g in enumerate(gold) if g == lab]
            if idx:
                out[f"triplay/heldout/recall/{lab}"] = mean(float(preds[i] == lab) for i in idx)
        return out
