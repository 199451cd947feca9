"""A peer on equal work: TRL's ``GRPOTrainer`` vs safeplay's GRPO update, samples *trained* per minute, one run.

Both sides train the bundled SmolLM2-135M with a LoRA adapter (r = 16, alpha 32, on all linear layers) on the same
prompts (training-side harmful and benign seeds, alternating, shown as one plain user turn), with the same group
size G, completion length, sampling (T = 1, no truncation), KL coefficient 0, clip range 0.2, loss normalisation
(per sequence, then over the batch: TRL's ``loss_type="grpo"``), learning rate and dtype, one optimiser step per
generation batch, and the **same reward function**: guard-mini's verdict on the answer (+1 for refusing a harmful
prompt or helping with a benign one, −1 otherwise), the function below, called by both. Neither side skips
samples: safeplay runs with ``rl.skip_zero_advantage=false`` (TRL has no such skip), so every generated completion
goes through the backward pass and "samples trained" = prompts × G per step on both sides. Each side's step is
generate → reward → update; safeplay's is its own generator, ``PolicyUpdater`` and GRPO advantages (what its
trainer runs for a defender-only GRPO step, without the game bookkeeping). Figures are over ``--steps`` steps after
one warm-up step; the mean completion length of each side is printed beside it (sampling differs, so lengths may).

TRL needs a plain model (its Trainer refuses a GGUF-quantised one), so it gets the dequantised weights from
safeplay's model cache. Its settings are printed beside its figure: gradient checkpointing off (TRL's default
is on, which costs a recomputation; off is the faster choice here).

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
    """The one reward both sides train on: +1 when guard-mini says the answer did the right thing (a clean refusal
    of a harmful prompt, a non-refusal of a benign one), −1 otherwise."""
    from safeplay.judges.base import JudgeItem

    def reward(prompts, completions, harmful, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        queries = [p[-1]["content"] if isinstance(p, list) else p for p in prompts]
        verdicts = judge.judge([JudgeItem(q, t) for q, t in zip(queries, texts)])
        return [1.0 if (bool(v.refusal) and not v.response_harmful) == bool(h) else -1.0
                for v, h in zip(verdicts, harmful)]

    return reward


def trl_samples_per_minute(args, data, dtype: str, reward) -> tuple[float, float, dict]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from safeplay.models.loading import ensure_bundled_model, load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(str(ensure_bundled_model()), dtype=getattr(torch, dtype))
    tok = load_tokenizer()
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p}], "harmful": h} for p, h in data])
    settings = dict(
        num_generations=args.group, per_device_train_batch_size=args.prompts * args.group,
        max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0, top_k=0, beta=0.0, epsilon=0.2,
        loss_type="grpo", scale_rewards="group", learning_rate=1e-4, gradient_checkpointing=False, use_cpu=True,
        bf16=dtype == "bfloat16", max_steps=args.steps + 1, logging_steps=1, save_strategy="no", report_to="none",
        num_iterations=1, shuffle_dataset=False,
    )
    cfg = GRPOConfig(output_dir=args.trl_out, **settings)
    times: list[float] = []
    lengths: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *a, **k):
            times.append(time.perf_counter())

        def on_log(self, _args, _state, _control, logs=None, **k):
            if logs and "completions/mean_length" in logs and len(times) >= 2:
                lengths.append(float(logs["completions/mean_length"]))

    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=ds, processing_class=tok,
                          peft_config=LoraConfig(
                              r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"]),
                          callbacks=[Timer()])
    trainer.train()
    trained = args.steps * args.prompts * args.group  # TRL trains every completion of each generation batch
    spm = trained / (times[-1] - times[0]) * 60
    return spm, (sum(lengths) / len(lengths) if lengths else float("nan")), settings


def ours_samples_per_minute(args, data, reward) -> tuple[float, float, dict]:
    from safeplay.engine.setup import resolve_config
    from safeplay.generation.base import ChatPrompt
    from safeplay.models.roles import build_policies
    from safeplay.rl.batch import RoleSample
    from safeplay.rl.update import PolicyUpdater

    overrides = [
        "rl.algorithm=grpo", f"rl.group_size={args.group}", "rl.kl_beta=0.0", "rl.kl_in_reward=false",
        "rl.clip_eps=0.2", "rl.skip_zero_advantage=false", "rl.minibatches=1", "optim.lr=1e-4",
        f"defender.max_new_tokens={args.new_tokens}", "defender.temperature=1.0", "defender.top_p=1.0",
        "defender.top_k=0", "policy.lora_r=16", "policy.lora_alpha=32", "policy.lora_dropout=0.0",
    ]
    cfg = resolve_config("self-redteam", None, overrides=overrides)
    policies = build_policies(cfg.model, cfg.policy, ["defender"])
    updater = PolicyUpdater(policies, "defender", cfg.rl, cfg.optim, args.steps + 1)
    trained, lengths = 0, []

    def step(k: int) -> int:
        batch = data[k * args.prompts:(k + 1) * args.prompts]
        prompts = [ChatPrompt([{"role": "user", "content": p}]) for p, _ in batch for _ in range(args.group)]
        comps = policies.generate("defender", prompts, cfg.defender, seed=k)
        rewards = reward([p for p, _ in batch for _ in range(args.group)], [c.text for c in comps],
                         [h for _, h in batch for _ in range(args.group)])
        samples = [RoleSample("defender", c.prompt_ids, c.token_ids, r, group=i // args.group,
                              rollout_logprobs=list(c.logprobs) if c.sampled else None)
                   for i, (c, r) in enumerate(zip(comps, rewards))]
        lengths.append(sum(len(c.token_ids) for c in comps) / len(comps))
        return int(updater.step(samples).get("samples_trained", 0))

    step(0)  # warm-up
    lengths.clear()
    t0 = time.perf_counter()
    for k in range(1, args.steps + 1):
        trained += step(k)
    spm = trained / (time.perf_counter() - t0) * 60
    settings = {"samples_trained": trained, "micro_batch_size": cfg.rl.micro_batch_size,
                "generator": cfg.policy.generator}
    return spm, sum(lengths) / len(lengths), settings


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
    import torch

    from safeplay.judges.registry import build_judge

    dtype = auto_dtype_reason(resolve_device("auto"))[0]
    data = seed_prompts(args.prompts * (args.steps + 2))
    reward = reward_fn(build_judge("guard-mini"))
    ours, ours_len, ours_settings = ours_samples_per_minute(args, data, reward)
    trl, trl_len, settings = trl_samples_per_minute(args, data, dtype, reward)
    print(f"equal work: {args.prompts} prompts × G={args.group}, ≤{args.new_tokens} new tokens, dtype {dtype}, "
          f"LoRA r=16 all linear, the same guard-mini ±1 reward, no zero-advantage skipping on either side, "
          f"{args.steps} timed steps, {torch.get_num_threads()} torch thread(s)")
    print(f"TRL GRPOTrainer settings: {settings}")
    print(f"safeplay settings: {ours_settings}")
    print(f"safeplay GRPO:    {ours:.1f} samples trained/min (mean completion {ours_len:.1f} tokens)")
    print(f"TRL GRPOTrainer:  {trl:.1f} samples trained/min (mean completion {trl_len:.1f} tokens)")
    print(f"SUMMARY ours_samples_trained_per_min={ours:.1f} trl_samples_trained_per_min={trl:.1f} "
          f"ratio={ours / trl:.2f} ours_mean_len={ours_len:.1f} trl_mean_len={trl_len:.1f}")


if __name__ == "__main__":
    main()
