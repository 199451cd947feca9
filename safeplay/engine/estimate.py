"""How long a run will take, said when it starts: from its config and rates measured on a 2-core CPU.

The rates are this project's measurements of the bundled 135M model on a 2-core CPU with native bf16
(``avx512_bf16``): generation and training tokens per second of the lean decoder and the update (README,
Throughput), and the warm start's and evaluation's rates from a full main-job run (README, Results: the warm
start's distillation 170 s, its SFT 664 s, one 698-item evaluation 335–355 s, RL 26 s per step). A machine where
bf16 is emulated runs in fp32, at about half these rates; a GPU is far faster. The figure is a planning aid, printed as "about N minutes", not a promise.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeplay.engine.config import TrainConfig

GENERATE_TOKENS_PER_S = 380.0
"""Rollout tokens per second at batch 16 (README throughput table)."""
TRAIN_TOKENS_PER_S = 240.0
"""Tokens per second through an RL update or SFT (forward + backward)."""
PROMPT_TOKENS = 150
"""Typical rendered prompt length of a game turn (a frame or a seed plus the chat template)."""
WARM_GENERATE_TOKENS_PER_S = 240.0
"""The warm start's self-distillation, judging and answer checks included (41k tokens in 170 s)."""
SFT_TOKENS_PER_S = 390.0
"""Supervised warm-start training: forward + backward, no reference or rollout pass (260k tokens in 664 s)."""
EVAL_SECONDS_PER_ITEM = 0.5
"""Greedy evaluation, 64 new tokens, with judging: 0.48–0.51 s per item on 2 cores (698 items in 335–355 s)."""
STEP_OVERHEAD_S = 2.0
"""Judge, embeddings, logging and checkpoints per RL step."""


@dataclass
class Estimate:
    warm_start_min: float
    rl_min: float
    eval_min: float

    @property
    def total_min(self) -> float:
        return self.warm_start_min + self.rl_min + self.eval_min

    def line(self, cached_warm_start: bool) -> str:
        warm = "reused from the cache" if cached_warm_start else f"~{self.warm_start_min:.0f} min"
        return (f"expected duration: about {self.total_min:.0f} minutes on a 2-core CPU with native bf16 "
                f"(warm start {warm}, RL ~{self.rl_min:.0f} min, evaluations ~{self.eval_min:.0f} min); "
                "about twice that where bf16 is emulated")


def eval_items(cfg: TrainConfig) -> int:
    """Items of one held-out evaluation (per-benchmark limits applied; unknown sizes counted at the limit)."""
    from safeplay.data.benchmarks import load_benchmark
    from safeplay.errors import SafeplayError

    total = 0
    for name in cfg.eval.benchmarks:
        limit = cfg.eval.limits.get(name, cfg.eval.limit)
        try:
            total += len(load_benchmark(name, limit=limit))
        except SafeplayError:
            total += limit or 0
    return total


def estimate(cfg: TrainConfig, cached_warm_start: bool = False) -> Estimate:
    ws = cfg.warm_start
    warm = 0.0
    if ws.enabled and not cached_warm_start:
        generated = ws.harmful_prompts * ws.distill_samples * ws.max_new_tokens + ws.benign_prompts * ws.max_new_tokens
        examples = ws.harmful_prompts + ws.benign_prompts * 0.6 + (ws.attacker_pairs if ws.attacker else 0)
        trained = examples * ws.epochs * (PROMPT_TOKENS + ws.max_new_tokens)
        warm = generated / WARM_GENERATE_TOKENS_PER_S + trained / SFT_TOKENS_PER_S
    attacked = 0.0 if cfg.game.defender_only else cfg.seeds.attack_share
    g_def = cfg.rl.group_size
    g_att = cfg.rl.attack_group_size or g_def
    games = cfg.batch_size * ((1 - attacked) * g_def + attacked * g_att * g_def)
    revisions = cfg.batch_size * attacked * g_att
    generated = revisions * cfg.attacker.max_new_tokens * 0.8 + games * cfg.defender.max_new_tokens * 0.8
    trained = (revisions + games) * (PROMPT_TOKENS + cfg.defender.max_new_tokens)
    step_s = generated / GENERATE_TOKENS_PER_S + trained / TRAIN_TOKENS_PER_S + STEP_OVERHEAD_S
    rl = cfg.steps * step_s / 60
    if cfg.max_minutes is not None:
        rl = min(rl, cfg.max_minutes)
    n_evals = 0
    if cfg.eval.enabled and cfg.eval.benchmarks:
        n_evals = (0 if cached_warm_start else 1 + int(ws.enabled)) + 1
        if cfg.eval.every:
            n_evals += max(0, (cfg.steps - 1) // cfg.eval.every)
    evals = n_evals * eval_items(cfg) * EVAL_SECONDS_PER_ITEM * cfg.eval.max_new_tokens / 64 / 60 if n_evals else 0.0
    return Estimate(warm / 60, rl, evals)
