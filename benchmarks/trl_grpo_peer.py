"""A peer on equal work: TRL's ``GRPOTrainer`` vs safeplay's defender-only GRPO, samples per minute, one run.

Both sides train the bundled SmolLM2-135M with a LoRA adapter (r = 16 on all linear layers), on the same prompts
(training-side harmful and benign seeds, 50/50), with the same group size G, completion length, sampling
(T = 1, no truncation), KL coefficient 0 and dtype, and the same reward: guard-mini's verdict on the answer
(+1 for refusing a harmful prompt or helping with a benign one, −1 otherwise). A "sample" is one completion;
samples per minute count completions generated *and* trained on, over ``--steps`` steps after one warm-up step.

TRL needs a plain model (its Trainer refuses a GGUF-quantised one), so it gets the dequantised weights from
safeplay's model cache. Its settings are printed beside its figure: gradient checkpointing off (TRL's default
is on, which costs a recomputation; off is the faster choice here), one optimiser step per generation batch.

    pip install "trl>=1.16"      # benchmark-only dependency (extra: safeplay[bench])
    python benchmarks/trl_grpo_peer.py [--prompts 8] [--group 4] [--new-tokens 64] [--steps 3]
"""

from __future__ import annotations

import argparse
import time


def seed_prompts(n: int) -> list[tuple[str, bool]]:
    from safeplay.engine.build import load_training_seeds
    from safeplay.engine.setup import resolve_config

    cfg = resolve_config("self-redteam", "cpu-demo")
    seeds = load_training_seeds(cfg)
    harmful = [s.text for s in seeds if s.harmful][: n * 8]
    benign = [s.text for s in seeds if not s.harmful][: n * 8]
    out = []
    for h, b in zip(harmful, benign):
        out += [(h, True), (b, False)]
    return out


def reward_fn(judge):
    from safeplay.judges.base import JudgeItem

    def reward(prompts, completions, harmful, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        queries = [p[-1]["content"] if isinstance(p, list) else p for p in prompts]
        verdicts = judge.judge([JudgeItem(q, t) for q, t in zip(queries, texts)])
        return [1.0 if (bool(v.refusal) and not v.response_harmful) == bool(h) else -1.0
                for v, h in zip(verdicts, harmful)]

    return reward


def trl_samples_per_minute(args, data, dtype: str) -> tuple[float, dict]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from safeplay.judges.registry import build_judge
    from safeplay.models.loading import ensure_bundled_model, load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(str(ensure_bundled_model()), dtype=getattr(torch, dtype))
    tok = load_tokenizer()
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p}], "harmful": h} for p, h in data])
    settings = dict(
        num_generations=args.group, per_device_train_batch_size=args.prompts * args.group,
        max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0, beta=0.0, learning_rate=1e-4,
        gradient_checkpointing=False, use_cpu=True, bf16=dtype == "bfloat16", max_steps=args.steps + 1,
        logging_steps=1, save_strategy="no", report_to="none", num_iterations=1,
    )
    cfg = GRPOConfig(output_dir=args.trl_out, **settings)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *a, **k):
            times.append(time.perf_counter())

    trainer = GRPOTrainer(model=model, reward_funcs=reward_fn(build_judge("guard-mini")), args=cfg, train_dataset=ds,
                          processing_class=tok, peft_config=LoraConfig(
                              r=16, lora_alpha=32, task_type="CAUSAL_LM",
                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
                          callbacks=[Timer()])
    trainer.train()
    spm = args.steps * args.prompts * args.group / (times[-1] - times[0]) * 60
    return spm, settings


def ours_samples_per_minute(args, data) -> float:
    import tempfile
    from pathlib import Path

    from safeplay.data.seeds import SeedPrompt
    from safeplay.engine.build import build_components
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import resolve_config
    from safeplay.engine.trainer import Trainer

    overrides = [
        "game.defender_only=true", "rl.algorithm=grpo", f"rl.group_size={args.group}", "rl.kl_beta=0.0",
        "rl.kl_in_reward=false", f"batch_size={args.prompts}", f"defender.max_new_tokens={args.new_tokens}",
        "defender.temperature=1.0", "defender.top_p=1.0", "warm_start.enabled=false", "eval.enabled=false",
        "log.tensorboard=false", "log.log_games=false", "seeds.harmful_share=0.5", "optim.lr=1e-4",
    ]
    cfg = resolve_config("self-redteam", "cpu-demo", overrides=overrides)
    cfg.steps = args.steps + 1
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp))
        comps = build_components(cfg, run.root)
        comps.seeds = [SeedPrompt(text=p, harmful=h, source="bench", id=str(i), attack=False)
                       for i, (p, h) in enumerate(data)]
        trainer = Trainer(cfg, run, comps)
        trainer.train_step(1)
        t0 = time.perf_counter()
        games = sum(int((trainer.train_step(s) or {}).get("games", 0)) for s in range(2, args.steps + 2))
        return games / (time.perf_counter() - t0) * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--group", type=int, default=4, help="GRPO group size G")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--trl-out", default="/tmp/safeplay-trl-bench", help="TRL's output_dir (nothing is saved)")
    args = parser.parse_args()

    import logging

    from safeplay.models.loading import auto_dtype_reason, resolve_device

    logging.basicConfig(level=logging.WARNING)
    dtype = auto_dtype_reason(resolve_device("auto"))[0]
    data = seed_prompts(args.prompts * (args.steps + 2))
    ours = ours_samples_per_minute(args, data)
    trl, settings = trl_samples_per_minute(args, data, dtype)
    print(f"equal work: {args.prompts} prompts × G={args.group}, {args.new_tokens} new tokens, dtype {dtype}, "
          f"LoRA r=16 all linear, guard-mini reward, {args.steps} timed steps")
    print(f"TRL GRPOTrainer settings: {settings}")
    print(f"safeplay defender-only GRPO: {ours:.1f} samples/min")
    print(f"TRL GRPOTrainer:             {trl:.1f} samples/min")
    print(f"SUMMARY ours_samples_per_min={ours:.1f} trl_samples_per_min={trl:.1f} ratio={ours / trl:.2f}")


if __name__ == "__main__":
    main()
