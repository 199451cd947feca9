"""Safety Self-Play, SSP (papers.md §2): one policy plays attacker and defender; a judge's 1–5 safety score gives
complementary rewards; failure cases are kept in an experience pool and replayed to the defender by UCB.

One step's defender batch holds ``batch_size`` seed slots (each expanded to G games for GRPO, see ``expand``):

* **fresh attacks** — harmful goals from the curriculum; the attacker writes an attack for each
  (:func:`ssp_attacker_prompt`, ``rl.attack_group_size`` attacks per goal = one attacker group) and the defender
  answers each attack G times (one defender group per attack).
  Judge score s → r_att = clip((s − 1)/4, 0, 1), r_def = 1 − r_att (``recipes.ssp.rewards``). A game whose defender reward
  is below ``ssp.insert_threshold`` enters the pool (goal, attack, answer). Only these games train the attacker.
* **replay** — ``round(batch_size · ssp.replay_share)`` slots filled from the pool (UCB or uniform; none with
  ``ssp.replay: none``, the ablation, or while the pool is empty). The stored attack is answered G times by the
  *current* defender (one group of G answers to the same prompt), re-judged, scored like a fresh game, and the
  entry's statistics are updated with the mean reward of its G answers (one visit per step). Solved entries leave
  the pool (``replay.pool``).
* **benign verbatim** — ``round(batch_size · ssp.benign_share)`` benign seeds sent to the defender as they are:
  r_def = 1 for a helpful, harmless answer, 0 for a refusal or a harmful answer (by the judge's 3-way label).
  Our deviation from the paper, whose defender only ever sees attacks and so is only ever paid for refusing; it
  guards against over-refusal. ``ssp.benign_share: 0`` is paper-pure.
* the remaining slots are fresh attacks, so every replay mode fills the same number of slots per step (a fresh
  slot costs ``rl.attack_group_size`` × G games, a replayed or benign one G).

A game whose verdict is missing or unparseable, or carries no usable score (benign games: no label), gives no
sample and is counted (``ssp/unscored``). Replayed games are logged with ``source="replay"``, the stored attack as
their query and ``marked_for_attack=False`` so the engine's ``attack_success_rate`` stays the rate of *fresh* attacks.

Unknowns of the paper (priority formula, pool size, mixing ratio, whether replay feeds the attacker) follow the
project's reconstruction (papers.md §2.3); replay feeds the defender only.
"""

from __future__ import annotations

import math
from statistics import mean
from typing import Any

from safeplay.config import check
from safeplay.game.rollout import Game, judge_games, play_attacks, play_defenses
from safeplay.game.templates import ssp_attacker_prompt
from safeplay.recipes.base import Recipe, RecipeContext, StepResult, attacker_samples, sample_from, step_seed
from safeplay.replay import ExperiencePool
from safeplay.recipes.ssp.config import SSPTrainConfig
from safeplay.recipes.ssp.rewards import score_to_rewards

SCORE_BINS = (1, 2, 3, 4, 5)


def game_score(game: Game) -> float | None:
    """The judge's 1–5 score, or None when the verdict cannot be used (missing, unparseable, no/NaN score)."""
    v = game.verdict
    if v is None or v.unparseable or v.score is None:
        return None
    s = float(v.score)
    return None if math.isnan(s) else s


def benign_reward(game: Game) -> float | None:
    """1 for a helpful, harmless answer to a benign prompt; 0 for a refusal or a harmful answer; None: no label."""
    v = game.verdict
    if v is None or v.unparseable or v.label is None:
        return None
    return 1.0 if v.label == "helpful" else 0.0


class SafetySelfPlay(Recipe):
    name = "ssp"
    config_class = SSPTrainConfig
    ablation_arms = {"no-replay": ["ssp.replay=none"], "uniform-replay": ["ssp.replay=uniform"]}
    roles = ("attacker", "defender")
    default_share = {"attacker": "player", "defender": "player"}

    def __init__(self, ctx: RecipeContext):
        super().__init__(ctx)
        s = self.cfg.ssp
        check(0 <= s.replay_share < 1, "ssp.replay_share", "must be in [0, 1)")
        check(0 <= s.benign_share < 1, "ssp.benign_share", "must be in [0, 1)")
        check(s.replay_share + s.benign_share < 1, "ssp.benign_share",
              "benign_share + replay_share must be < 1 (fresh attacks need a share of the batch)")
        check(s.pool_cap >= 1, "ssp.pool_cap", "must be >= 1")
        check(s.min_visits >= 0, "ssp.min_visits", "must be >= 0")
        self.pool = ExperiencePool(seed=self.cfg.seed, **self.pool_settings())
        self.totals = {"unscored": 0, "replayed_games": 0}

    def pool_settings(self) -> dict[str, Any]:
        s = self.cfg.ssp
        return {
            "cap": s.pool_cap,
            "insert_threshold": s.insert_threshold,
            "c": s.ucb_c,
            "mode": s.replay,
            "evict_success_threshold": s.evict_success_threshold,
            "evict_min_visits": s.min_visits,
        }

    # -- batch layout -------------------------------------------------------------------------------------

    def slots(self) -> tuple[int, int]:
        """(replay slots, benign slots) of one step's batch; the rest are fresh attacks (at least one)."""
        b, s = self.cfg.batch_size, self.cfg.ssp
        n_benign = min(int(round(b * s.benign_share)), b - 1)
        n_replay = 0 if s.replay == "none" else min(int(round(b * s.replay_share)), b - 1 - n_benign)
        return n_replay, n_benign

    def replay_games(self, entries: list, step: int) -> list[Game]:
        games = []
        for j, e in enumerate(entries):
            for _ in range(self.cfg.rl.group_size):
                g = Game(step=step, seed_text=e.attack, seed_harmful=True, marked_for_attack=False, source="replay")
                g.extra.update(group=f"{step}:r{j}", goal=e.goal, pool_id=e.id)
                games.append(g)
        return games

    # -- one step -----------------------------------------------------------------------------------------

    def play(self, step: int) -> StepResult:
        cfg, ctx = self.cfg, self.ctx
        n_replay, n_benign = self.slots()
        entries = self.pool.sample(n_replay)
        n_fresh = cfg.batch_size - len(entries) - n_benign
        goals = ctx.curriculum.take("harmful", n_fresh)
        benign = ctx.curriculum.take("benign", n_benign) if n_benign else []
        # SSP attacks every harmful goal; benign seeds always go verbatim.
        fresh_and_benign = self.expand(goals + benign, step, attacked=lambda s: s.harmful)
        replayed = self.replay_games(entries, step)
        games = fresh_and_benign + replayed
        play_attacks(ctx.policies, games, cfg.attacker, cfg.game.cot, step_seed(cfg.seed, step, "attacker"),
                     prompt_of=lambda g, tactic: ssp_attacker_prompt(g.seed_text, cfg.game.cot))
        play_defenses(ctx.policies, games, cfg.defender, cfg.game.cot, step_seed(cfg.seed, step, "defender"),
                      system=cfg.game.defender_system)
        judge_games(ctx.judge, games)

        before = dict(self.pool.counters)
        samples, scores, unscored = [], [], 0
        replay_rewards: dict[int, list[float]] = {e.id: [] for e in entries}
        responses: dict[int, str] = {}
        failures: list[Game] = []
        for g in games:
            group = g.extra["group"]
            if not g.seed_harmful:
                r_def = benign_reward(g)
                g.rewards["defender"] = r_def
                if r_def is None:
                    unscored += 1
                else:
                    samples.append(sample_from(g.defense, r_def, group=group, kind="benign"))
                continue
            score = game_score(g)
            if score is None:
                unscored += 1
                g.rewards["defender"] = None
                if g.attack is not None:
                    g.rewards["attacker"] = None
                continue
            scores.append(score)
            r_att, r_def = score_to_rewards(score)
            g.rewards["defender"] = r_def
            samples.append(sample_from(g.defense, r_def, group=group, kind=g.source))
            if g.source == "replay":
                replay_rewards[g.extra["pool_id"]].append(r_def)
                responses[g.extra["pool_id"]] = g.defense.public
                continue
            if g.attack is not None:
                g.rewards["attacker"] = r_att
            if r_def < self.pool.insert_threshold:
                failures.append(g)
        samples += attacker_samples([g for g in games if g.source == "fresh"], lambda g: g.rewards.get("attacker"))

        # Replay updates first: an insertion that overflows the cap must not evict an entry awaiting its update.
        still_failing = []
        for e in entries:
            rs = replay_rewards[e.id]
            if not rs:
                continue
            r = mean(rs)
            still_failing.append(r < self.pool.insert_threshold)
            self.pool.update(e.id, r, responses[e.id], step)
        inserted = 0
        for g in failures:
            attack_text = g.query.strip()
            if attack_text and self.pool.maybe_insert(g.seed_text, attack_text, g.defense.public,
                                                      g.rewards["defender"], step) is not None:
                inserted += 1
        self.totals["unscored"] += unscored
        self.totals["replayed_games"] += len(replayed)
        return StepResult(games=games, samples=samples,
                          metrics=self.step_metrics(games, entries, scores, still_failing, unscored, before))

    # -- reporting ----------------------------------------------------------------------------------------

    def step_metrics(self, games, entries, scores, still_failing, unscored, before) -> dict[str, Any]:
        stats = self.pool.stats()
        m: dict[str, Any] = {
            "ssp/pool_size": stats["size"],
            "ssp/mean_priority": stats["mean_priority"],
            "ssp/pool_mean_reward": stats["mean_reward"],
            "ssp/pool_total_visits": stats["total_visits"],
            "ssp/replayed_entries": float(len(entries)),
            "ssp/replay_share": sum(g.source == "replay" for g in games) / len(games) if games else 0.0,
            "ssp/replay_still_failing": sum(still_failing) / len(still_failing) if still_failing else None,
            "ssp/unscored": float(unscored),
            "ssp/unscored_total": float(self.totals["unscored"]),
        }
        for key in ("inserted", "duplicates", "evicted_cap", "removed_solved"):
            m[f"ssp/{key}"] = float(self.pool.counters[key] - before.get(key, 0))
            m[f"ssp/{key}_total"] = float(self.pool.counters[key])
        # Histogram of the scores behind score-based rewards (fresh + replayed attacks), as shares; continuous
        # scores (guard-mini) fall in the nearest bin.
        for b in SCORE_BINS:
            n = sum(1 for s in scores if min(5, max(1, int(math.floor(s + 0.5)))) == b)
            m[f"ssp/score_hist/{b}"] = n / len(scores) if scores else None
        for source in ("fresh", "replay"):
            rs = [g.rewards["defender"] for g in games if g.seed_harmful and g.source == source
                  and g.rewards.get("defender") is not None]
            m[f"ssp/defender_reward_{source}"] = mean(rs) if rs else None
        rs = [g.rewards["defender"] for g in games if not g.seed_harmful and g.rewards.get("defender") is not None]
        m["ssp/defender_reward_benign"] = mean(rs) if rs else None
        return m

    # -- state --------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"pool": self.pool.state_dict(), "totals": dict(self.totals)}

    def load_state_dict(self, state: dict) -> None:
        if "pool" in state:
            self.pool.load_state_dict(state["pool"])
            # The run's config is the source of truth for settings (a resume may override them); the entries,
            # statistics and RNG come from the checkpoint.
            for name, value in self.pool_settings().items():
                setattr(self.pool, name, value)
        self.totals.update(state.get("totals", {}))
