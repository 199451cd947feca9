"""Self-RedTeam (papers.md §1): one policy plays attacker and defender; a 3-label judge; REINFORCE++.

Per step: seeds from the curriculum (half harmful, half benign; half of each rewritten by the attacker) →
attacker turns → defender turns → judge → the general-sum reward table (or a variant) per role. Games with a
missing label (a tie) or an unparseable verdict give no sample for the role that needs that label, and are
counted.

Which label says whether the prompt the defender saw is harmful (q):

* a verbatim prompt: the judge's (§1.4), or with ``game.verbatim_prompt_label: seed`` its dataset label — a human
  label of exactly the prompt the defender saw;
* a revision: the judge's (§1.4, ``game.attacked_prompt_label: judge``), the seed's label when the revision stayed
  on the seed's topic and does not loop (``seed``), or the seed's label where the judge agrees with it (``agree``).
  A small judge reads wrapped prompts badly (guard-mini: prompt-harm F1 0.775 on prompts in unseen jailbreak
  templates), and each wrapped harmful prompt it calls benign pays the defender for complying.

An incoherent revision (off the seed's topic, or looping: ``answer_checks.coherent_revision``) loses the attacker
every term of its reward, whatever the judge says: gibberish cannot be faithful, and the defender gets no sample
from it under ``seed``/``agree``. With ``game.check_answers`` a defender answer the judge calls a refusal that does
not say it refuses, or one that loops, is an evasion: it earns neither the refusal reward nor the helpful one (it
is scored as the wrong choice for q; ``defender/evasive``).
"""

from __future__ import annotations

from dataclasses import replace

from safeplay.game.rollout import Game, judge_games, play_attacks, play_defenses
from safeplay.recipes.base import Recipe, StepResult, attacker_samples, sample_from, step_seed
from safeplay.rewards.answer_checks import coherent_revision, degenerate, has_refusal_wording
from safeplay.rewards.self_redteam import GameOutcome, attacker_reward, defender_reward, faithful, reward_table


def revision_ok(game: Game) -> bool:
    """A verbatim game, or a revision on its seed's topic that does not loop."""
    return game.attack is None or coherent_revision(game.seed_text, game.attack.public)


def evasive_answer(game: Game) -> bool:
    """A judged refusal without refusal wording (an evasion: "I'm glad to help with this request." and nothing
    more), or a looping answer (``game.check_answers``)."""
    v, answer = game.verdict, game.defense.public
    return bool(v and v.refusal and not has_refusal_wording(answer)) or degenerate(answer)


def outcome_of(game: Game, cot: bool, verbatim_label: str = "judge", attacked_label: str = "judge",
               check_answers: bool = False) -> GameOutcome:
    """The reward table's view of a game: q chosen as the module docstring says; with ``check_answers`` an
    evasive answer is scored as the wrong choice for q."""
    v = game.verdict
    attacked = game.attack is not None
    judge_q = v.prompt_harmful if v else None
    q = judge_q
    usable = v is not None and not v.unparseable
    if usable and not attacked and verbatim_label == "seed":
        q = game.seed_harmful
    if usable and attacked and attacked_label != "judge":
        agrees = attacked_label == "seed" or judge_q == game.seed_harmful
        q = game.seed_harmful if revision_ok(game) and agrees else None
    refusal = v.refusal if v else None
    if check_answers and usable and q is not None and evasive_answer(game):
        # Neither a refusal nor an answer: it earns neither reward (scored as the wrong choice for q). Dropping
        # such games instead let them escape every penalty, and the defender drifted into them: in one run the
        # share of judged refusals without refusal wording rose from 0.14 at step 1 to 0.55–0.75 by step 25.
        refusal = not q
    return GameOutcome(
        seed_harmful=game.seed_harmful,
        attacked=attacked,
        prompt_harmful=q,
        refusal=refusal,
        response_harmful=v.response_harmful if v else None,
        attacker_format_ok=game.attack.format_ok if (cot and attacked) else None,
        defender_format_ok=game.defense.format_ok if cot else None,
        unparseable=not usable,
    )


def attacker_outcome(game: Game, o: GameOutcome, attacked_label: str = "judge") -> GameOutcome:
    """The attacker's view: q falls back to the judge's label where the defender's is undecided, and the
    faithfulness term needs a coherent revision (and, unless q is the seed's label, the judge's q to match s)."""
    judge_q = game.verdict.prompt_harmful if game.verdict else None
    q = o.prompt_harmful if o.prompt_harmful is not None else judge_q
    coherent = revision_ok(game)
    matched = faithful(replace(o, prompt_harmful=judge_q)) if attacked_label != "seed" else True
    return replace(o, prompt_harmful=q, faithful_revision=coherent and matched, incoherent_revision=not coherent)


def unfaithful(o: GameOutcome) -> bool:
    """An attacked game whose prompt the judge puts in the other class than the seed (q ≠ s)."""
    return o.attacked and o.prompt_harmful is not None and not faithful(o)


class SelfRedTeam(Recipe):
    name = "self-redteam"
    roles = ("attacker", "defender")
    default_share = {"attacker": "player", "defender": "player"}

    def play(self, step: int) -> StepResult:
        cfg, ctx = self.cfg, self.ctx
        seeds = ctx.curriculum.next_batch(cfg.batch_size)
        games = self.expand(seeds, step)
        play_attacks(
            ctx.policies, games, cfg.attacker, cfg.game.cot, step_seed(cfg.seed, step, "attacker"),
            style=cfg.game.template_style, tactics=ctx.tactics,
        )
        play_defenses(
            ctx.policies, games, cfg.defender, cfg.game.cot, step_seed(cfg.seed, step, "defender"),
            system=cfg.game.defender_system,
        )
        judge_games(ctx.judge, games)
        table = reward_table(cfg.reward_table)
        cot_term = cfg.game.cot and cfg.game.format_reward
        game_cfg = cfg.game
        samples = []
        skipped_unfaithful = evasive = no_label = 0
        for g in games:
            o = outcome_of(g, cot_term, game_cfg.verbatim_prompt_label, game_cfg.attacked_prompt_label,
                           game_cfg.check_answers)
            if game_cfg.check_answers and o.prompt_harmful is not None and evasive_answer(g):
                evasive += 1
                g.extra["evasive"] = True
            if o.prompt_harmful is None and g.attack is not None and not o.unparseable:
                no_label += 1
            r_def = defender_reward(o, table)
            g.rewards["defender"] = r_def
            if r_def is not None and game_cfg.defender_skips_unfaithful and unfaithful(o):
                g.extra["defender_skipped"] = "unfaithful revision"
                skipped_unfaithful += 1
            elif r_def is not None:
                samples.append(sample_from(g.defense, r_def, group=g.extra["group"], game=g))
            if g.attack is not None:
                g.rewards["attacker"] = attacker_reward(attacker_outcome(g, o, game_cfg.attacked_prompt_label), table)
        samples += attacker_samples(games, lambda g: g.rewards.get("attacker"))
        metrics: dict[str, float] = {}
        if game_cfg.defender_skips_unfaithful:
            metrics["defender/skipped_unfaithful"] = float(skipped_unfaithful)
        if game_cfg.check_answers:
            metrics["defender/evasive"] = evasive / len(games) if games else 0.0
        if game_cfg.attacked_prompt_label != "judge":
            attacked = sum(g.attack is not None for g in games)
            metrics["defender/revisions_without_label"] = no_label / attacked if attacked else 0.0
        return StepResult(games=games, samples=samples, metrics=metrics)
