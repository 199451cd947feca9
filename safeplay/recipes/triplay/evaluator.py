"""How TriPlay's evaluator role labels things: its 3-class label of ⟨prompt, answer⟩ pairs (greedy, with the
training judge as fallback), the Eval phase's sampled labels, the semantic-consistency yes/no, and the expert
panel whose majority vote it learns from. A mixin of the ``TriPlay`` recipe: it reads ``self.cfg``, ``self.ctx``
(policies and judge), ``self.totals`` (label counters) and ``self.experts``."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from safeplay.errors import SafeplayError
from safeplay.game.rollout import Game
from safeplay.game.templates import evaluator_prompt, parse_evaluator_label, parse_yes_no, semantic_consistency_prompt
from safeplay.generation.base import ChatPrompt, Completion, SamplingParams
from safeplay.judges.base import JudgeItem, Label
from safeplay.recipes.triplay.labels import LABELS


class EvaluatorLabelling:
    """The evaluator as a labeller (see the module docstring)."""

    cfg: Any
    ctx: Any
    totals: dict[str, int]
    experts: Any

    def expert_judge(self):
        """Majority vote of ``triplay.experts``: ``[a, b]`` puts a and b on both panels; ``[a, "|", b, c]`` makes a
        the safety panel (safe vs unsafe) and b, c the utility panel (refusal vs helpful), as in the paper. The
        training judge is reused when an expert has its name."""
        if self.experts is None:
            from safeplay.judges.registry import build_judge
            from safeplay.judges.voting import VotingJudge

            names = list(self.cfg.triplay.experts)
            if names.count("|") > 1 or names[0] == "|" or names[-1] == "|":
                raise SafeplayError(f"triplay.experts: use [a, b] or [a, '|', b, c], got {names}")
            built: dict[str, Any] = {}

            def get(n: str):
                if n not in built:
                    if n == self.cfg.judge.name and self.ctx.judge is not None:
                        built[n] = self.ctx.judge
                    else:
                        built[n] = build_judge(n, **(self.cfg.judge.options if n == self.cfg.judge.name else {}))
                return built[n]

            cut = names.index("|") if "|" in names else len(names)
            safety = [get(n) for n in names[:cut]]
            utility = [get(n) for n in names[cut + 1:]]
            self.experts = VotingJudge(safety, utility, require_agreement=self.cfg.triplay.require_agreement)
        return self.experts

    def _greedy(self, max_new_tokens: int) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)

    def label(self, pairs: Sequence[tuple[str, str]], seed: int) -> tuple[list[Label | None], list[str]]:
        """The evaluator's greedy label of each (prompt, response), with the source of each label:
        ``evaluator``, ``fallback`` (unreadable → the training judge) or ``none`` (dropped)."""
        if not pairs:
            return [], []
        labels = self.greedy_labels([evaluator_prompt(p, r) for p, r in pairs], seed)
        sources = ["evaluator" if lab is not None else "none" for lab in labels]
        missing = [i for i, lab in enumerate(labels) if lab is None]
        self.totals["labels"] += len(pairs)
        self.totals["label_unparseable"] += len(missing)
        if missing and self.ctx.judge is not None:
            verdicts = self.ctx.judge.judge([JudgeItem(pairs[i][0], pairs[i][1]) for i in missing])
            for i, v in zip(missing, verdicts):
                if v is not None and not v.unparseable and v.label is not None:
                    labels[i], sources[i] = v.label, "fallback"
                    self.totals["label_fallback"] += 1
        return labels, sources

    def greedy_labels(self, prompts: Sequence[ChatPrompt], seed: int) -> list[Label | None]:
        """The evaluator's label of each prompt: the most probable label word (``scored``) or its parsed
        greedy text (``generate``; ``None`` when unreadable)."""
        if self.cfg.triplay.label_decoding == "scored":
            lp = self.ctx.policies.choice_logprobs("evaluator", prompts, LABELS)
            return [LABELS[i] for i in lp.argmax(-1).tolist()]
        comps = self.ctx.policies.generate(
            "evaluator", prompts, self._greedy(self.cfg.evaluator.max_new_tokens), seed=seed
        )
        return [parse_evaluator_label(c.text) for c in comps]

    def sampled_labels(self, prompts: Sequence[ChatPrompt], seed: int) -> list[Completion]:
        """Eval-phase answers to learn from. ``scored``: a label word drawn from the evaluator's probabilities
        over the three words (at ``evaluator.temperature``), as a completion of the word's tokens + EOS whose
        log-probs are those of the constrained policy (the first token's, renormalised; forced tokens 0).
        ``generate``: free sampled text."""
        policies = self.ctx.policies
        if self.cfg.triplay.label_decoding != "scored":
            return policies.generate("evaluator", prompts, self.cfg.evaluator, seed=seed)
        lp = policies.choice_logprobs("evaluator", prompts, LABELS)
        temperature = self.cfg.evaluator.temperature
        if temperature <= 0:
            picks = lp.argmax(-1)
        else:
            gen = torch.Generator().manual_seed(seed)
            picks = torch.multinomial(torch.softmax(lp / temperature, dim=-1), 1, generator=gen).squeeze(-1)
        tok = policies.tokenizer
        label_ids = [tok(lab, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for lab in LABELS]
        out = []
        for k, i in enumerate(picks.tolist()):
            ids = label_ids[i]
            out.append(Completion(
                text=LABELS[i],
                prompt_ids=tok(policies.render(prompts[k]), add_special_tokens=False)["input_ids"],
                token_ids=list(ids),
                logprobs=[float(lp[k, i])] + [0.0] * (len(ids) - 1),
                finish_reason="eos",
                sampled=False,  # a pick among the label words, not token-by-token sampling
            ))
        return out

    def semantic_checks(self, games: Sequence[Game], seed: int) -> list[bool | None]:
        if not games or self.cfg.triplay.semantic_reward == 0:
            return [None] * len(games)
        prompts = [semantic_consistency_prompt(g.seed_text, g.attack.public) for g in games]
        if self.cfg.triplay.label_decoding == "scored":
            lp = self.ctx.policies.choice_logprobs("evaluator", prompts, ("yes", "no"))
            return [bool(i == 0) for i in lp.argmax(-1).tolist()]
        comps = self.ctx.policies.generate(
            "evaluator", prompts, self._greedy(max(4, self.cfg.evaluator.max_new_tokens)), seed=seed
        )
        return [parse_yes_no(c.text) for c in comps]
