"""How far do rollouts drift from the policy that learns, and what does keeping the adapter exact cost?

The lean decoder used to merge the LoRA adapter into bf16 weights, where a small adapter delta rounds away; it now
keeps the adapter as a low-rank side path in bf16/fp16. This benchmark samples the same prompts both ways from one
trained adapter (a run's checkpoint, or a random one), scores the sampled tokens with the learner's own
teacher-forced pass at the sampling temperature, and prints for each way the mean and largest |Δ log-prob| per
token and the rollout speed, with the low-rank path's ratio to the merged one measured in the same run.

    python benchmarks/rollout_gap.py [--run RUN_DIR [--step N]] [--prompts 32] [--tokens 48] [--temperature 0.7]
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=None, help="a run folder whose defender adapter is used (default: random)")
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--adapter-std", type=float, default=1e-4, help="std of a random adapter's B (no --run)")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    import safeplay.generation.fast_weights as fast_weights
    from safeplay.data.seed_sources import load_builtin_seeds
    from safeplay.game.templates import defender_prompt
    from safeplay.generation.base import SamplingParams
    from safeplay.rl.batch import RoleSample, collate

    if args.run:
        from safeplay.models.checkpoint_io import load_run_policies

        policies = load_run_policies(args.run, step=args.step)
        source = f"{args.run} (defender)"
    else:
        from safeplay.models import PolicyConfig, build_policies, ModelConfig

        policies = build_policies(ModelConfig(spec="smollm2-135m"), PolicyConfig(), ("defender",))
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in policies.model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * args.adapter_std)
        source = f"random adapter (B std {args.adapter_std:g})"
    seeds = load_builtin_seeds()
    prompts = [defender_prompt(s.text, cot=False) for s in (seeds * 4)[: args.prompts]]
    sampling = SamplingParams(temperature=args.temperature, max_new_tokens=args.tokens)
    exact = fast_weights._merge_exactly
    results = {}
    for mode in ("merged", "low-rank"):
        fast_weights._merge_exactly = (lambda m, a: fast_weights._has_adapter(m, a)) if mode == "merged" else exact
        try:
            policies._layout.gen._cache.clear()
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                outs = policies.generate("defender", prompts, sampling, seed=1)
                best = min(best, time.perf_counter() - t0)
        finally:
            fast_weights._merge_exactly = exact
        samples = [RoleSample("defender", o.prompt_ids, o.token_ids, 0.0, temperature=o.temperature) for o in outs]
        gaps, worst, n = 0.0, 0.0, 0
        for i in range(0, len(samples), 8):
            chunk = samples[i : i + 8]
            batch = collate(chunk, policies.tokenizer.pad_token_id)
            with torch.no_grad():
                lp = policies.token_logprobs("defender", batch.input_ids, batch.attention_mask, batch.start,
                                             only=batch.response_mask, temperature=batch.temperature).float()
            for row, (s, o) in enumerate(zip(chunk, outs[i : i + 8])):
                start = len(s.prompt_ids) - 1
                learner = lp[row, start : start + len(s.completion_ids)]
                diff = (learner - torch.tensor(o.logprobs)).abs()
                gaps += float(diff.sum())
                worst = max(worst, float(diff.max()))
                n += len(s.completion_ids)
        tokens = sum(len(o.token_ids) for o in outs)
        results[mode] = {"gap": gaps / max(1, n), "gap_max": worst, "tok_s": tokens / best}
    print(f"adapter: {source}; {args.prompts} prompts × up to {args.tokens} tokens at T={args.temperature}; "
          f"dtype {next(policies.model.parameters()).dtype}")
    print("| rollout weights | mean abs Δ log-prob/token | max | tokens/s |")
    print("|---|---|---|---|")
    for mode, r in results.items():
        print(f"| {mode} | {r['gap']:.4f} | {r['gap_max']:.3f} | {r['tok_s']:.0f} |")
    ratio = results["low-rank"]["tok_s"] / results["merged"]["tok_s"]
    print(f"low-rank / merged speed: {ratio:.2f}×; gap: {results['low-rank']['gap'] / results['merged']['gap']:.2f}×")


if __name__ == "__main__":
    main()
