"""The training run's configuration: one typed tree, loaded from recipe YAML + preset + ``--set`` overrides."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from safeplay.config import check
from safeplay.distributed.config import RolloutConfig
from safeplay.generation.base import SamplingParams
from safeplay.models.loading import ModelConfig
from safeplay.models.roles import PolicyConfig
from safeplay.rl.update import OptimConfig, RLConfig

RECIPES = ("self-redteam", "ssp", "triplay")
_RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass
class JudgeConfig:
    """Which judge labels games (the reward source)."""

    name: str = "guard-mini"
    """A judge name known to ``safeplay.judges.registry`` (guard-mini, keyword, wildguard, vote:a,b, …)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the judge (e.g. endpoint, model, timeout)."""
    max_failures: int = 3
    """Consecutive judge failures (exceptions) tolerated before the run stops; each failed batch is skipped."""

    def __post_init__(self) -> None:
        check(self.max_failures >= 1, "max_failures", "must be >= 1")


@dataclass
class GameConfig:
    """What a game looks like: templates, hidden chain-of-thought, who plays."""

    cot: bool = True
    """Hidden chain-of-thought: roles think in <think> and answer in <answer>; only answers are passed on."""
    template_style: Literal["compact", "paper"] = "compact"
    """Attacker instructions: the paper's long form, or a compact form a small model can follow."""
    defender_only: bool = False
    """Ablation: no attacker turns; every seed goes verbatim to the defender (the same RL and budget)."""
    attacker_tactics: bool = True
    """Condition each attacker revision on a tactic drawn at random (``tactics``)."""
    tactics: Literal["frames", "wildteaming"] = "frames"
    """Where tactics come from: ``frames`` = the tactic families the attacker's warm start teaches
    (``safeplay.game.frames``, named after WildTeaming's most frequent tactics); ``wildteaming`` = the
    ``tactics_top_k`` most frequent tactics of WildTeaming's file (names and definitions only: a small attacker
    has no example of what they look like)."""
    tactics_top_k: int = 50
    """With ``tactics: wildteaming``: how many of the most frequent tactics to draw from."""
    check_answers: bool = False
    """Judge-independent checks of each defender answer (``safeplay.rewards.answer_checks``): a judged refusal
    that does not say it refuses, and an answer that loops on one phrase, are evasions — they earn neither the
    refusal reward nor the helpful one (scored as the wrong choice; counted per step as ``defender/evasive``). A
    small judge calls many incoherent, off-topic or evasive answers refusals and would pay the refusal reward for
    them; dropping them instead lets the defender drift into them, since a dropped answer is never penalised."""
    attacked_prompt_label: Literal["judge", "seed", "agree"] = "judge"
    """q (is the prompt harmful?) for a prompt the attacker rewrote: ``judge`` = the judge's label of the revision
    (Self-RedTeam §1.4); ``seed`` = the seed's dataset label, for revisions that stay on the seed's topic and do not
    loop (``coherent_revision``), the rest give no defender sample; ``agree`` = the seed's label where the judge
    agrees with it and the revision is coherent, no defender sample otherwise. The attacker's faithfulness term
    needs a coherent revision in every mode (and, with ``judge``/``agree``, the judge's label of it to match the
    seed's): gibberish cannot be faithful."""
    defender_system: str | None = None
    """Optional system prompt for the defender (None: no system message, as in Self-RedTeam)."""
    format_reward: bool = True
    """Add the ±1 CoT-format term to each role's reward when cot is on (§1.5)."""
    verbatim_prompt_label: Literal["judge", "seed"] = "judge"
    """q for a prompt the defender saw verbatim: the judge's label (Self-RedTeam §1.4) or the seed's dataset
    label. Rewritten prompts always take the judge's. The prompt-harm classifier flags about a fifth of
    OR-Bench's seemingly-harmful benign prompts as harmful, and with ``judge`` each such flag rewards the
    defender for refusing a benign prompt."""
    defender_skips_unfaithful: bool = False
    """Give the defender no sample from an attacked game whose prompt the judge puts in the other class than
    its seed (an unfaithful revision: a harmful seed rewritten into something the judge calls benign, or the
    reverse). The attacker still gets its faithfulness penalty. Off = Self-RedTeam (the defender learns from
    every decided game). A small attacker's revisions are often unfaithful, and answering them rewards the
    defender for complying with jailbreak-shaped prompts."""

    def __post_init__(self) -> None:
        check(self.tactics_top_k >= 1, "tactics_top_k", "must be >= 1")


@dataclass
class SeedConfig:
    """Where seed prompts come from and how a step's batch is mixed."""

    harmful_share: float = 0.5
    """Share of harmful seeds in each batch (Self-RedTeam: 0.5)."""
    attack_share: float = 0.5
    """Share of seeds (per class) rewritten by the attacker; the rest go verbatim to the defender (§1.3: 0.5)."""
    max_per_class: int | None = 2000
    """Cap on seeds per class after de-duplication (None = all)."""
    file: str | None = None
    """Optional user seed file (JSONL/CSV with text/prompt and harmful columns) used instead of the data dir; its
    seeds are de-duplicated against the evaluation sets and ``attack_share`` of each class is marked for the
    attacker, like the data directory's."""

    def __post_init__(self) -> None:
        check(0 <= self.harmful_share <= 1, "harmful_share", "must be in [0, 1]")
        check(0 <= self.attack_share <= 1, "attack_share", "must be in [0, 1]")
        check(self.max_per_class is None or self.max_per_class >= 1, "max_per_class", "must be >= 1 (or null: all)")


@dataclass
class WarmStartConfig:
    """Short supervised stage before RL (measurements §3: RL from the base model does not move)."""

    enabled: bool = False
    """Run the warm start before step 1."""
    defender: bool = True
    """Defender SFT: judged-safe varied refusals for harmful seeds, the model's own judged answers for benign."""
    attacker: bool = True
    """Attacker SFT on (plain request, tactic) → the request in a frame of that tactic (``safeplay.game.frames``),
    for harmful and benign seeds, optionally mixed with JailbreakBench PAIR artifacts (``attacker_pair_share``)."""
    harmful_prompts: int = 192
    """Harmful seed prompts used for defender refusals."""
    benign_prompts: int = 192
    """Benign seed prompts answered by the model itself."""
    wrapped_share: float = 0.5
    """Share of the defender's harmful SFT prompts shown wrapped in a jailbreak template (same refusal target)."""
    contextual_share: float = 0.0
    """Share of the defender's harmful SFT prompts taken from contextual sources (a context paragraph, then a
    harmful request about it: HarmBench val's contextual behaviours), when the seeds hold them."""
    hard_benign_share: float = 0.0
    """Share of the benign SFT prompts taken from seemingly-harmful benign sources (OR-Bench hard-1k), when the
    seeds hold them: they teach that a frightening word alone is no reason to refuse (XSTest's failure mode)."""
    benign_wrapped_share: float = 0.0
    """Share of the benign SFT prompts shown wrapped in a jailbreak template, with the same helpful answer: the
    wrapping alone is no reason to refuse (WildJailbreak's adversarial benign prompts)."""
    refusal_file: str | None = None
    """Optional JSONL of {prompt, refusal} pairs to use instead of self-distilled refusals."""
    distill_samples: int = 4
    """Refusal candidates sampled per harmful prompt under the safety system prompt (kept if judged safe)."""
    attacker_pairs: int = 160
    """Attacker SFT examples (plain request → jailbreak)."""
    attacker_pair_share: float = 0.0
    """Share of the attacker's examples taken from JailbreakBench's PAIR artifacts (free paraphrases by larger
    models, shown without a tactic) instead of tactic frames. A 135M attacker that learns to paraphrase loses the
    request (measured: a third of its revisions kept half of their seed's content words), so frames are the
    default."""
    evaluator_examples: int = 0
    """Evaluator SFT examples (TriPlay): (3-class prompt, label word) pairs from the train side of the human-labelled
    XSTest completions, classes balanced; the held-out evaluator set is on the other side. 0 = none."""
    epochs: int = 2
    """Passes over the SFT data."""
    lr: float = 2e-4
    """SFT learning rate."""
    batch_size: int = 16
    """Sequences per SFT optimizer step."""
    max_new_tokens: int = 64
    """Length of self-distilled answers."""
    cache: bool = True
    """Reuse a warm start computed earlier for the same inputs, and store this run's for later runs
    (``safeplay.engine.warm_cache``: under the cache folder, keyed by every setting the warm start reads)."""

    def __post_init__(self) -> None:
        for name in ("wrapped_share", "contextual_share", "hard_benign_share", "benign_wrapped_share",
                     "attacker_pair_share"):
            check(0 <= getattr(self, name) <= 1, name, "must be in [0, 1]")
        for name in ("harmful_prompts", "benign_prompts", "attacker_pairs", "evaluator_examples"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        for name in ("distill_samples", "epochs", "batch_size", "max_new_tokens"):
            check(getattr(self, name) >= 1, name, "must be >= 1")
        check(self.lr > 0, "lr", "must be > 0")


@dataclass
class EvalConfig:
    """Held-out evaluation of the defender during training."""

    every: int = 10
    """Evaluate every N RL steps (plus before RL starts and at the end); 0 = only before and at the end."""
    benchmarks: list[str] = field(default_factory=lambda: ["harmbench", "xstest-safe"])
    """Benchmarks from ``safeplay.data.benchmarks``, or ``file:PATH`` for a custom set (JSONL/CSV with prompt and
    harmful/benign label columns, see ``safeplay.data.custom_sets``); held-out: never used as seeds."""
    limit: int | None = 48
    """Fixed seeded subset per benchmark (None = all)."""
    limits: dict[str, Any] = field(default_factory=dict)
    """Per-benchmark overrides of ``limit`` (benchmark name → items, null = all)."""
    batch_size: int = 32
    """Prompts generated together during evaluation (greedy: the grouping does not change the answers)."""
    judge: str = "guard-mini"
    """Judge of the evaluation (may differ from the training judge)."""
    judge_options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the evaluation judge (e.g. endpoint, model_name)."""
    max_new_tokens: int = 96
    """Defender answer length during evaluation (greedy)."""
    enabled: bool = True
    """Switch periodic evaluation off entirely."""

    def __post_init__(self) -> None:
        check(self.every >= 0, "every", "must be >= 0")
        check(self.limit is None or self.limit >= 1, "limit", "must be >= 1 (or null: every item)")
        check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")


@dataclass
class SSPConfig:
    """Safety Self-Play specifics (papers.md §2)."""

    replay: Literal["ucb", "uniform", "none"] = "ucb"
    """Reflective experience replay mode (ablation: uniform, none)."""
    replay_share: float = 0.25
    """Share of each defender batch drawn from the experience pool."""
    pool_cap: int = 512
    """Maximum entries in the pool."""
    insert_threshold: float = 0.5
    """A game enters the pool when the defender's reward is below this."""
    ucb_c: float = 0.5
    """Exploration constant c of the UCB priority (1 − mean reward) + c·sqrt(ln N / (n + 1))."""
    evict_success_threshold: float = 0.75
    """Entries whose mean defender reward rises above this (after min_visits) are no longer failures: removed."""
    min_visits: int = 2
    """Visits before an entry can be removed as solved."""
    benign_share: float = 0.25
    """Share of benign seeds sent verbatim to the defender (guards against over-refusal; 0 = paper-pure)."""

    def __post_init__(self) -> None:
        check(0 <= self.replay_share <= 1, "replay_share", "must be in [0, 1]")
        check(0 <= self.benign_share <= 1, "benign_share", "must be in [0, 1]")
        check(self.pool_cap >= 1, "pool_cap", "must be >= 1")
        check(self.ucb_c >= 0, "ucb_c", "must be >= 0")
        check(self.min_visits >= 0, "min_visits", "must be >= 0")


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
class LogConfig:
    """Where and how a run reports."""

    tensorboard: bool = True
    """Write a TensorBoard log under <run>/tb (needs the tensorboard package; skipped with a warning if absent)."""
    wandb: bool = False
    """Also log metrics, the resolved config and evaluation tables to Weights & Biases (pip install
    'safeplay[wandb]'; needs `wandb login`, or WANDB_MODE=offline to keep the run in <run>/wandb for `wandb sync`)."""
    wandb_project: str = "safeplay"
    """W&B project of the run."""
    wandb_entity: str | None = None
    """W&B entity (user or team); None = the login's default."""
    mlflow: bool = False
    """Also log metrics, the resolved config and evaluation results to MLflow (pip install 'safeplay[mlflow]')."""
    mlflow_tracking_uri: str | None = None
    """MLflow tracking URI; None = MLFLOW_TRACKING_URI if set, else a file store in <run>/mlruns (works offline)."""
    mlflow_experiment: str = "safeplay"
    """MLflow experiment the run is logged under (created if missing)."""
    log_games: bool = True
    """Write every game (full texts, verdicts, rewards) to games.jsonl."""
    diversity_every: int = 1
    """Compute attacker diversity metrics every N steps."""


@dataclass
class TrainConfig:
    """A training run."""

    recipe: str = "self-redteam"
    """Which recipe: self-redteam, ssp or triplay."""
    name: str = ""
    """Run name (folder under runs/); empty = recipe-preset-timestamp."""
    seed: int = 8888
    """Seed of everything random in the run (Self-RedTeam's is 8888)."""
    steps: int = 200
    """RL steps (Self-RedTeam stops at 200)."""
    batch_size: int = 16
    """Seed prompts per step (before GRPO's group expansion)."""
    max_minutes: float | None = None
    """Stop RL after this much wall time (checkpoint and evaluate first); None = no limit."""
    checkpoint_every: int = 10
    """Save a checkpoint every N steps (and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (oldest deleted first)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The base model."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """How roles map onto trainable weights."""
    rl: RLConfig = field(default_factory=RLConfig)
    """Policy-gradient algorithm."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and schedule."""
    game: GameConfig = field(default_factory=GameConfig)
    """Game shape."""
    attacker: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=128))
    """Attacker sampling (truncated: at 135M, T=1 without top-p gives incoherent rewrites, measurements §5)."""
    defender: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=96))
    """Defender sampling."""
    evaluator: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=16))
    """Evaluator sampling (TriPlay)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Reward judge."""
    reward_table: str = "general_sum"
    """Self-RedTeam reward table: general_sum (the code's, default), general_sum_all_one, zero_sum."""
    seeds: SeedConfig = field(default_factory=SeedConfig)
    """Seed prompts."""
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    """Supervised warm start before RL."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Periodic held-out evaluation."""
    ssp: SSPConfig = field(default_factory=SSPConfig)
    """SSP recipe settings."""
    triplay: TriPlayConfig = field(default_factory=TriPlayConfig)
    """TriPlay-RL recipe settings."""
    log: LogConfig = field(default_factory=LogConfig)
    """Logging."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """How a step's generation and judging are sharded, and where the shards run (this process or Ray)."""

    def __post_init__(self) -> None:
        check(self.recipe in RECIPES, "recipe", f"{self.recipe!r} is not a recipe; choose one of {', '.join(RECIPES)}")
        check(not self.name or (_RUN_NAME.fullmatch(self.name) is not None and self.name not in (".", "..")),
              "name", f"{self.name!r} is not a folder name (letters, digits, '.', '_', '-')")
        check(self.steps >= 0, "steps", "must be >= 0")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "must be > 0 (or null: no limit)")
        check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        # RL and optimiser ranges their own classes leave open.
        check(self.rl.reward_clip > 0, "rl.reward_clip", "must be > 0")
        check(self.rl.aux_sft_coef >= 0, "rl.aux_sft_coef", "must be >= 0")
        check(self.rl.aux_sft_batch >= 1, "rl.aux_sft_batch", "must be >= 1")
        check(self.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
        check(self.optim.grad_clip >= 0, "optim.grad_clip", "must be >= 0 (0 = no clipping)")
        check(self.log.diversity_every >= 0, "log.diversity_every", "must be >= 0 (0 = never)")
        check(
            self.reward_table in ("general_sum", "general_sum_all_one", "zero_sum"),
            "reward_table",
            f"{self.reward_table!r} is not allowed; choose one of 'general_sum', 'general_sum_all_one', 'zero_sum'",
        )
        check(
            self.rl.aux_sft_coef <= 0 or (self.warm_start.enabled and self.warm_start.defender),
            "rl.aux_sft_coef",
            "the auxiliary SFT data is the defender warm start's: set warm_start.enabled=true (and warm_start.defender)",
        )
        check(self.eval.batch_size >= 1, "eval.batch_size", "must be >= 1")
        for name, n in self.eval.limits.items():
            check(n is None or (isinstance(n, int) and n >= 0), f"eval.limits.{name}", "must be a count >= 0 or null")
