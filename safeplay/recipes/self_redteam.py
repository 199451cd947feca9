"""Self-RedTeam (papers.md §1): one policy plays attacker and defender; a 3-label judge; REINFORCE++.

Per step: seeds from the curriculum (half harmful, half benign; half of each rewritten by the attacker) →
attacker turns → defender turns → judge → the general-sum reward table (or a variant) per role. Games with a
missing label (a tie) or an unparseable verdict give no sample for the role that needs that label, and are
counted. The prompt-harm label in the reward is the judge's label of the prompt the defender actually saw
(§1.4), never the seed's dataset label — except, when ``game.verbatim_prompt_label: seed``, for prompts passed
verbatim, whose dataset label *is* a label of the prompt the defender saw (and a human one).
"""

from __future__ import annotations

from safeplay.game.rollout import judge_games, play_attacks, play_defenses
from safeplay.recipes.base import Recipe, StepResult, attacker_samples, sample_from, step_seed
from safeplay.rewards.self_redteam import GameOutcome, attacker_reward, defender_reward, faithful, reward_table


def outcome_of(game, cot: bool, verbatim_label: str = "judge") -> GameOutcome:
    """The reward table's view of a game. ``verbatim_label="seed"``: a prompt the defender saw verbatim takes its
    seed's dataset label as q instead of the judge's (see ``GameConfig.verbatim_prompt_label``)."""
    v = game.verdict
    attacked = game.attack is not None
    q = v.prompt_harmful if v else None
    if verbatim_label == "seed" and not attacked and v is not None and not v.unparseable:
        q = game.seed_harmful
    return GameOutcome(
        seed_harmful=game.seed_harmful,
        attacked=attacked,
        prompt_harmful=q,
        refusal=v.refusal if v else None,
        response_harmful=v.response_harmful if v else None,
        attacker_format_ok=game.attack.format_ok if (cot and game.attack is not None) else None,
        defender_format_ok=game.defense.format_ok if cot else None,
        unparseable=v is None or v.unparseable,
    )


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
        samples = []
        skipped_unfaithful = 0
        for g in games:
            o = outcome_of(g, cot_term, cfg.game.verbatim_prompt_label)
            r_def = defender_reward(o, table)
            g.rewards["defender"] = r_def
            if r_def is not None and cfg.game.defender_skips_unfaithful and unfaithful(o):
                g.extra["defender_skipped"] = "unfaithful revision"
                skipped_unfaithful += 1
            elif r_def is not None:
                samples.append(sample_from(g.defense, r_def, group=g.extra["group"], game=g))
            if g.attack is not None:
                g.rewards["attacker"] = attacker_reward(o, table)
        samples += attacker_samples(games, lambda g: g.rewards.get("attacker"))
        metrics = {"defender/skipped_unfaithful": float(skipped_unfaithful)} if cfg.game.defender_skips_unfaithful else {}
        return StepResult(games=games, samples=samples, metrics=metrics)
