"""Game rollout: attacker turn (for seeds marked to be rewritten) → defender turn → judge, batched across games.

Only the public part of a turn (the text inside <answer>, or the whole text without CoT) reaches the opponent
and the judge; the thinking stays in the game record for auditing.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from safeplay.game.cot import CotParse, parse_cot
from safeplay.game.templates import attacker_prompt, defender_prompt
from safeplay.generation.base import ChatPrompt, Completion, SamplingParams, logprob_temperature
from safeplay.judges.base import Judge, JudgeItem, Verdict

_ids = itertools.count()


@dataclass
class Turn:
    """One role's move: what it was shown, what it generated, and what it passed on."""

    role: str
    prompt: ChatPrompt
    completion: Completion
    parse: CotParse | None
    """The CoT parse (None when CoT is off)."""
    public: str
    """What the opponent and the judge see."""
    temperature: float = 1.0
    """Temperature the turn was sampled at (1.0 for greedy turns): the learner scores it at the same one."""

    @property
    def format_ok(self) -> bool | None:
        return None if self.parse is None else not self.parse.violation

    def record(self) -> dict[str, Any]:
        return {
            "thinking": self.parse.thinking if self.parse else None,
            "public": self.public,
            "raw": self.completion.text,
            "format_ok": self.format_ok,
            "format_issues": self.parse.reasons if self.parse else [],
            "tokens": len(self.completion.token_ids),
            "finish": self.completion.finish_reason,
        }


@dataclass
class Game:
    """One seed played out."""

    step: int
    seed_text: str
    seed_harmful: bool
    marked_for_attack: bool
    """The attacker rewrites this seed (decided before anyone plays; ``attack`` holds the revision once played)."""
    attack: Turn | None = None
    """The attacker's turn (None: the defender saw the seed verbatim)."""
    defense: Turn | None = None
    """The defender's turn."""
    verdict: Verdict | None = None
    rewards: dict[str, float | None] = field(default_factory=dict)
    source: str = "fresh"
    """"fresh" (from the curriculum) or "replay" (from an experience pool)."""
    tactic: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def query(self) -> str:
        """The prompt the defender saw."""
        return self.attack.public if self.attack is not None else self.seed_text

    def record(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "step": self.step,
            "source": self.source,
            "seed": self.seed_text,
            "seed_harmful": self.seed_harmful,
            "attacked": self.marked_for_attack,
            "tactic": self.tactic,
            "attacker": self.attack.record() if self.attack else None,
            "query": self.query,
            "defender": self.defense.record() if self.defense else None,
            "verdict": None
            if v is None
            else {
                "prompt_harmful": v.prompt_harmful,
                "refusal": v.refusal,
                "response_harmful": v.response_harmful,
                "label": v.label,
                "score": v.score,
                "unparseable": v.unparseable,
                "judge": v.judge,
            },
            "rewards": self.rewards,
            **({"extra": self.extra} if self.extra else {}),
        }


def play_turns(
    policies, role: str, prompts: Sequence[ChatPrompt], sampling: SamplingParams, cot: bool, seed: int
) -> list[Turn]:
    """One sampled turn of ``role`` per prompt: generate, split thinking from the public answer (with CoT)."""
    if not prompts:
        return []
    completions = policies.generate(role, list(prompts), sampling, seed=seed)
    turns = []
    for prompt, comp in zip(prompts, completions):
        parse = parse_cot(comp.text) if cot else None
        public = parse.answer if parse is not None else comp.text.strip()
        turns.append(Turn(role, prompt, comp, parse, public, temperature=logprob_temperature(sampling)))
    return turns


def play_attacks(
    policies,
    games: Sequence[Game],
    sampling: SamplingParams,
    cot: bool,
    seed: int,
    style: str = "compact",
    tactics: Sequence[str] = (),
    role: str = "attacker",
    prompt_of: Callable[[Game, str | None], ChatPrompt] | None = None,
) -> None:
    """Generate the attacker's revision for every game ``marked_for_attack`` (in place).

    Games that share ``extra["attack_slot"]`` share one revision (one attacker turn, answered once per game: a
    defender group of answers to the same prompt); every other attacked game gets its own. ``prompt_of(game,
    tactic)`` builds the attacker's prompt (default: Self-RedTeam's revision prompt)."""
    slots: dict[object, list[Game]] = {}
    for g in games:
        if g.marked_for_attack:
            slots.setdefault(g.extra.get("attack_slot", ("game", g.id)), []).append(g)
    rng = random.Random(seed)
    prompts = []
    for members in slots.values():
        tactic = rng.choice(list(tactics)) if tactics else None
        for g in members:
            g.tactic = tactic
        first = members[0]
        prompts.append(
            prompt_of(first, tactic) if prompt_of is not None
            else attacker_prompt(first.seed_text, first.seed_harmful, cot, tactic=tactic, style=style)
        )
    for members, turn in zip(slots.values(), play_turns(policies, role, prompts, sampling, cot, seed)):
        for g in members:
            g.attack = turn


def play_defenses(
    policies,
    games: Sequence[Game],
    sampling: SamplingParams,
    cot: bool,
    seed: int,
    system: str | None = None,
    role: str = "defender",
) -> None:
    """Generate the defender's answer to each game's query (in place)."""
    prompts = [defender_prompt(g.query, cot, system=system) for g in games]
    for g, turn in zip(games, play_turns(policies, role, prompts, sampling, cot, seed)):
        g.defense = turn


def judge_games(judge: Judge, games: Sequence[Game]) -> None:
    """Label each game's (query, defender answer); raises whatever the judge raises (the trainer counts it)."""
    items = [JudgeItem(prompt=g.query, response=g.defense.public, seed=g.seed_text) for g in games]
    verdicts = judge.judge(items) if items else []
    if len(verdicts) != len(items):
        raise RuntimeError(f"judge {judge.name} returned {len(verdicts)} verdicts for {len(items)} items")
    for g, v in zip(games, verdicts):
        g.verdict = v
