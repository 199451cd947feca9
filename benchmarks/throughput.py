"""Self-play throughput on this machine, each figure beside its plain baseline measured in the same run.

Rows (the bundled SmolLM2-135M; "ours" = the engine's defaults, dtype ``auto``; "plain" = what one writes first):

* **rollout tokens/s** at batch 16 and 64 — ours: the lean decoder with a LoRA adapter merged, sampling at T = 1;
  plain: batched HF ``model.generate`` in fp32 (no adapter), the same prompts, 64 new tokens, EOS ignored on both.
* **training tokens/s** — ours: one ``PolicyUpdater`` step (REINFORCE++ with KL: reference pass + gradient pass,
  fused when it fits); plain: the same three passes written naively (fp32, old-policy pass, reference pass,
  gradient pass, LM head over every position). Tokens = padded rows × width processed per second of the update.
* **games per minute** of the ``self-redteam`` ``cpu-demo`` preset (warm start and held-out evaluation off) — ours:
  defaults; plain: ``policy.generator=hf``, ``model.dtype=float32``, ``rl.fused_max_tokens=0``.
* **model load** — in a fresh process, with torch and transformers already imported: ours = a warm load from the
  converted safetensors cache; plain = transformers reading the GGUF file (dequantising every tensor), as a fresh
  load does. A second row adds the imports (what a user waits for at ``python -c``; the imports alone take
  about 3 s here and are the same for both).

The FLOP ceiling is measured here (2048³ matmuls in fp32 and bf16) and the share of it reached is printed:
forward ≈ 2·N FLOPs per token, LoRA training ≈ 4·N (no weight gradients for the frozen base), N = 135M.
The last line is ``SUMMARY rollout_tok_s=… plain_tok_s=… ratio=… games_per_min=… load_s=… start_s=…`` (batch 64).

    python benchmarks/throughput.py [--new-tokens 64] [--steps 2] [--skip-games] [--skip-gguf] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

PROMPTS = [
    "Give three tips for staying healthy.", "Explain how photosynthesis works in simple terms.",
    "Write a short poem about the sea.", "What are the main causes of inflation?", "Describe the water cycle.",
    "Suggest a name for a bakery.", "Summarise the plot of Romeo and Juliet.", "How do vaccines train the immune system?",
]


def prompts(n: int) -> list[str]:
    from safeplay.paths import data_dir

    root = data_dir()
    path = root / "alpaca_instructions" / "harmless_test.json" if root else None
    if path and path.is_file():
        return [r["instruction"] for r in json.loads(path.read_text())[:n]]
    return [PROMPTS[i % len(PROMPTS)] + f" (variant {i})" for i in range(n)]


def matmul_gflops(dtype) -> float:
    import torch

    a = torch.randn(2048, 2048, dtype=dtype)
    a @ a
    t0 = time.perf_counter()
    for _ in range(6):
        a @ a
    return 6 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9


def lora_policies(model, tok):
    from safeplay.models.policy_config import PolicyConfig
    from safeplay.models.roles import RolePolicies

    import torch

    torch.manual_seed(0)
    pol = RolePolicies(model, tok, ["defender"], PolicyConfig())
    with torch.no_grad():  # a trained-looking adapter (peft starts B at zero)
        for p in pol.trainable_parameters("defender"):
            if p.dim() == 2 and p.shape[1] == pol.cfg.lora_r:
                p.normal_(0, 0.01)
    return pol


def rollout_ours(pol, texts: list[str], batch: int, new_tokens: int) -> float:
    from safeplay.generation.base import ChatPrompt, SamplingParams

    gen = pol._layout.gen  # the engine's generator of the LoRA policies
    gen.ignore_eos, gen.micro_batch_size = True, batch
    chats = [ChatPrompt([{"role": "user", "content": t}]) for t in texts[:batch]]
    pol.generate("defender", chats[:2], SamplingParams(max_new_tokens=4), seed=0)  # warm-up
    t0 = time.perf_counter()
    outs = pol.generate("defender", chats, SamplingParams(temperature=1.0, max_new_tokens=new_tokens), seed=0)
    return sum(len(o.token_ids) for o in outs) / (time.perf_counter() - t0)


def rollout_plain(model, tok, texts: list[str], batch: int, new_tokens: int) -> float:
    import torch

    tok.padding_side = "left"
    rendered = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                for t in texts[:batch]]
    enc = tok(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
    kw = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, pad_token_id=tok.pad_token_id)
    with torch.inference_mode():
        model.generate(**tok(rendered[:2], return_tensors="pt", padding=True, add_special_tokens=False),
                       max_new_tokens=4, **kw)
        t0 = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
    return (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0] / (time.perf_counter() - t0)


def synthetic_samples(tok, n: int = 24):
    import random

    from safeplay.rl.batch import RoleSample

    rng = random.Random(0)
    out = []
    for i in range(n):
        p = tok.apply_chat_template([{"role": "user", "content": PROMPTS[i % 8] * rng.randint(1, 4)}],
                                    tokenize=True, add_generation_prompt=True)
        if isinstance(p, dict) or hasattr(p, "input_ids"):
            p = p["input_ids"]
        c = [rng.randrange(100, 40000) for _ in range(rng.randint(32, 96))]
        # Rollout log-probs as the generator reports them (values only feed the KL term; timing is what counts).
        lps = [-rng.uniform(0.1, 5.0) for _ in c]
        out.append(RoleSample("defender", list(p), c, reward=rng.uniform(-1, 1), rollout_logprobs=lps))
    return out


def padded_tokens(samples, micro: int) -> int:
    order = sorted(samples, key=lambda s: len(s.prompt_ids) + len(s.completion_ids))
    return sum(len(c) * max(len(s.prompt_ids) + len(s.completion_ids) for s in c)
               for c in (order[i:i + micro] for i in range(0, len(order), micro)))


def training_ours(pol, samples) -> float:
    from safeplay.rl.config import OptimConfig, RLConfig
    from safeplay.rl.update import PolicyUpdater

    rl = RLConfig(micro_batch_size=8)
    upd = PolicyUpdater(pol, "defender", rl, OptimConfig(), total_steps=10)
    upd.step(samples[:8])  # warm-up
    t0 = time.perf_counter()
    upd.step(samples)
    return padded_tokens(samples, rl.micro_batch_size) / (time.perf_counter() - t0)


def training_plain(pol, samples) -> float:
    """Old pass, reference pass, gradient pass; full logits; in input order; one optimiser step."""
    import torch

    from safeplay.rl.batch import collate
    from safeplay.rl.losses import ppo_clip_loss

    params = pol.trainable_parameters("defender")
    opt = torch.optim.AdamW(params, lr=1e-5)
    pad = pol.tokenizer.pad_token_id
    chunks = [samples[i:i + 8] for i in range(0, len(samples), 8)]

    def run(chs) -> None:
        pol.train()
        opt.zero_grad()
        for ch in chs:
            b = collate(ch, pad)
            with torch.no_grad():
                old = pol.token_logprobs("defender", b.input_ids, b.attention_mask)
                pol.ref_token_logprobs(b.input_ids, b.attention_mask)
            logp = pol.token_logprobs("defender", b.input_ids, b.attention_mask)
            adv = torch.tensor([s.reward for s in ch])[:, None].expand_as(logp)
            loss, _ = ppo_clip_loss(logp, old, adv, b.response_mask)
            loss.backward()
        opt.step()

    run(chunks[:1])
    t0 = time.perf_counter()
    run(chunks)
    tokens = sum(len(c) * max(len(s.prompt_ids) + len(s.completion_ids) for s in c) for c in chunks)
    return tokens / (time.perf_counter() - t0)


def games_per_minute(overrides: list[str], steps: int) -> float:
    import tempfile

    from safeplay.engine.build import build_components
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import resolve_config
    from safeplay.engine.trainer import Trainer

    base = ["warm_start.enabled=false", "eval.enabled=false", "log.tensorboard=false", "log.log_games=false"]
    cfg = resolve_config("self-redteam", "cpu-demo", overrides=base + overrides)
    cfg.steps = steps + 1
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp))
        trainer = Trainer(cfg, run, build_components(cfg, run.root))
        trainer.train_step(1)
        t0 = time.perf_counter()
        games = sum(int((trainer.train_step(s) or {}).get("games", 0)) for s in range(2, steps + 2))
        return games / (time.perf_counter() - t0) * 60


LOAD_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
import torch, transformers
from transformers import AutoModelForCausalLM, LlamaForCausalLM
from safeplay.models.bundled import gguf_path
from safeplay.models.loading import load_model
t1 = time.perf_counter()
if sys.argv[1] == "cache":
    load_model("smollm2-135m")
else:
    path = gguf_path()
    AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
print(json.dumps({"import_s": t1 - t0, "load_s": time.perf_counter() - t1}))
"""


def load_seconds(source: str) -> dict[str, float]:
    """Import and load times of the bundled model in a fresh process: ``cache`` = the converted safetensors
    cache (what every run after the first reads), ``gguf`` = transformers de-quantising the GGUF file."""
    import subprocess
    import sys

    from safeplay.models.bundled import ensure_bundled_model

    ensure_bundled_model()  # the cache exists from here on: the timed load is a warm one
    out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, source], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="timed self-play steps per side for games/min")
    parser.add_argument("--skip-games", action="store_true", help="skip the games-per-minute rows (the slowest)")
    parser.add_argument("--skip-gguf", action="store_true", help="skip timing the GGUF load baseline")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import logging

    import torch
    from rich.console import Console
    from rich.table import Table

    from safeplay.models.loading import auto_dtype_reason, load_model, resolve_device

    logging.basicConfig(level=logging.WARNING)
    console = Console()
    device = resolve_device("auto")
    dtype_name, why = auto_dtype_reason(device)
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    n_params = 134.5e6
    ours_gflops = bf16 if dtype_name == "bfloat16" else fp32
    ceiling = {"forward": ours_gflops * 1e9 / (2 * n_params), "training": ours_gflops * 1e9 / (4 * n_params)}
    console.print(f"machine: {torch.get_num_threads()} threads, matmul fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s"
                  f" · auto dtype {dtype_name} ({why}) · ceilings: forward {ceiling['forward']:.0f} tok/s, "
                  f"LoRA training {ceiling['training']:.0f} tok/s")

    rows: list[dict] = []

    def add(what: str, ours: float, plain: float, unit: str, ceil: float | None = None, lower_is_better=False):
        ratio = plain / ours if lower_is_better else ours / plain
        rows.append({"what": what, "ours": ours, "plain": plain, "unit": unit, "ratio": ratio,
                     "share_of_ceiling": ours / ceil if ceil else None})

    warm = load_seconds("cache")
    gguf = None if args.skip_gguf else load_seconds("gguf")
    console.print(f"fresh process: importing torch + transformers {warm['import_s']:.2f} s, then the model load")
    if gguf is not None:
        add("model load (libraries imported)", warm["load_s"], gguf["load_s"], "s", lower_is_better=True)
        add("process start: imports + model load", warm["import_s"] + warm["load_s"],
            gguf["import_s"] + gguf["load_s"], "s", lower_is_better=True)

    texts = prompts(64)
    model, tok = load_model("smollm2-135m")
    pol = lora_policies(model, tok)
    plain_model, plain_tok = load_model("smollm2-135m", dtype="float32")
    for batch in (16, 64):
        add(f"rollout, batch {batch}", rollout_ours(pol, texts, batch, args.new_tokens),
            rollout_plain(plain_model, plain_tok, texts, batch, args.new_tokens), "tok/s", ceiling["forward"])
    samples = synthetic_samples(tok)
    plain_pol = lora_policies(plain_model, plain_tok)
    add("training (REINFORCE++ update)", training_ours(pol, samples), training_plain(plain_pol, samples), "tok/s",
        ceiling["training"])
    del pol, plain_pol, model, plain_model
    gpm = None
    if not args.skip_games:
        gpm = games_per_minute([], args.steps)
        plain = games_per_minute(["policy.generator=hf", "model.dtype=float32", "rl.fused_max_tokens=0"], args.steps)
        add("self-redteam cpu-demo games", gpm, plain, "games/min")

    table = Table("", "ours", "plain", "unit", "× plain", "share of ceiling",
                  title="safeplay throughput (each row measured in this run)")
    for r in rows:
        share = f"{r['share_of_ceiling']:.0%}" if r["share_of_ceiling"] else ""
        table.add_row(r["what"], f"{r['ours']:.1f}", f"{r['plain']:.1f}", r["unit"], f"{r['ratio']:.2f}", share)
    console.print(table)
    b64 = next(r for r in rows if r["what"] == "rollout, batch 64")
    print(f"SUMMARY rollout_tok_s={b64['ours']:.1f} plain_tok_s={b64['plain']:.1f} ratio={b64['ratio']:.2f} "
          f"games_per_min={gpm if gpm is None else round(gpm, 1)} load_s={warm['load_s']:.2f} "
          f"start_s={warm['import_s'] + warm['load_s']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"matmul_gflops": {"fp32": fp32, "bf16": bf16}, "dtype": str(dtype_name),
                                               "ceiling_tok_s": ceiling, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
