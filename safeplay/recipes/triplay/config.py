"""TriPlay-RL's own settings (the ``triplay:`` section of its YAML) and the run config that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from safeplay.config import check
from safeplay.engine.config import TrainConfig


@dataclass
class TriPlayConfig:
    """TriPlay-RL specifics (papers.md §3)."""

    phase_steps: list[int] = field(default_factory=lambda: [1, 1, 1])
    """RL steps in each of the Red, Blue and Eval phases of one cycle."""
    defender_weights: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    """Weights of the live Blue and the frozen defenders in the Red reward."""
    frozen_defenders: list[str] = field(default_factory=lambda: ["base", "base-system"])
    """Frozen defenders: 'base' (adapters off), 'base-system' (adapters off + safety system prompt), or a model spec."""
    semantic_reward: float = 0.5
    """Reward added when the evaluator judges that the attack keeps the seed's intent (the paper's R_sem:
    "positive only if judged relevant"); an attack judged off-intent, or an unreadable check, adds nothing. 0 =
    no semantic check."""
    diversity: bool = True
    """Apply the diversity penalty against the Attack Success Pool (ablation: off)."""
    diversity_k: float = 1.0
    """k in y(z) = e^{k·z} − 1."""
    diversity_max: float = 1.0
    """The largest diversity penalty (an exact repeat of a pool entry). The paper's terms 2·y(z_B) + 4·y(z_C)
    reach 6·(e^k − 1) (10.3 at k = 1) against an outcome reward of ±1; they are divided by that maximum and
    multiplied by this, so the paper's 1 : 2 balance of the BLEU and embedding terms and its e^{kz} shape stay
    and a repeated success nets at most the outcome reward less this."""
    pool_cap: int = 256
    """Attack Success Pool size."""
    experts: list[str] = field(default_factory=lambda: ["guard-mini", "keyword"])
    """Expert judges whose majority vote labels the evaluator's training data."""
    require_agreement: bool = True
    """Drop items on which the experts disagree (agreement filter)."""
    label_decoding: Literal["scored", "generate"] = "scored"
    """How the evaluator answers: ``scored`` = the allowed answer (label word, yes/no) with the highest
    probability, sampled from those probabilities in the Eval phase (constrained decoding: every answer is
    readable); ``generate`` = free text parsed for a label (unreadable answers are counted and fall back)."""

    def __post_init__(self) -> None:
        check(len(self.phase_steps) == 3 and all(n >= 0 for n in self.phase_steps) and sum(self.phase_steps) > 0,
              "phase_steps", "three integers >= 0 (Red, Blue, Eval) with a positive sum")
        check(len(self.defender_weights) == 1 + len(self.frozen_defenders), "defender_weights",
              f"one weight for the live Blue plus one per frozen defender ({1 + len(self.frozen_defenders)} in all)")
        check(all(w >= 0 for w in self.defender_weights) and sum(self.defender_weights) > 0, "defender_weights",
              "weights must be >= 0 with a positive sum")
        check(len(self.experts) >= 1, "experts", "needs at least one expert judge")
        check(self.experts.count("|") <= 1 and self.experts[0] != "|" and self.experts[-1] != "|", "experts",
              "use [a, b] or [a, '|', b, c] (safety panel | utility panel)")
        check(self.semantic_reward >= 0, "semantic_reward", "must be >= 0")
        check(self.diversity_k > 0, "diversity_k", "must be > 0")
        check(self.diversity_max > 0, "diversity_max", "must be > 0 (triplay.diversity=false turns the penalty off)")
        check(self.pool_cap >= 1, "pool_cap", "must be >= 1")


@dataclass
class TriPlayTrainConfig(TrainConfig):
    """A TriPlay-RL run: every recipe's settings plus the ``triplay`` section."""

    triplay: TriPlayConfig = field(default_factory=TriPlayConfig)
    """TriPlay-RL recipe settings."""
