"""The engine on a CUDA GPU: correctness checks of the CUDA path and rollout throughput, in one run.

Uses a model with the bundled SmolLM2-135M's architecture and tokenizer and **random weights** (built here from
its config, nothing downloaded), so it runs on any CUDA machine with safeplay installed. Checks:

1. **generation parity** on CUDA in bf16: the lean decoder (``FastGenerator``) and the HF generator with the same
   LoRA adapter, greedy — each generator's log-probs match the teacher-forced log-probs of its own tokens (max
   abs difference printed). How many greedy sequences of the two are identical is printed for information only:
   a random-weight model's next-token distributions are nearly flat, so bf16 rounding flips near-ties;
2. **training** with ``model.device=cuda`` (Self-RedTeam, GRPO with gradient checkpointing and REINFORCE++,
   built-in seeds, a hash-based judge, no evaluation): finishes, weights move;
3. **resume equivalence** on CUDA: 4 steps in one go vs killed in step 3 (checkpoint at 2) + resumed to 4 (max abs weight
   difference and whether the metrics rows are equal; CUDA kernels need not be bit-deterministic);
4. **rollout tokens/s**: the lean decoder vs plain HF ``model.generate`` at batch 64 and 256, 64 new tokens,
   EOS ignored, same prompts;
5. **training tokens/s**: one ``PolicyUpdater`` step (REINFORCE++ with KL, LoRA r = 16, micro-batches of 8) on 24
   synthetic samples of 60–180 tokens, as ``benchmarks/throughput.py`` measures it on the CPU: padded tokens
   processed per second of the update;
6. **a larger model of the same family**: a Llama of the bundled model's shape scaled to about 0.68B parameters
   (hidden 1536, 24 layers, 24 heads, 8 KV heads, MLP 4096; the bundled vocabulary and tokenizer), random weights
   built from that config here (nothing downloaded): its rollout tokens/s (lean decoder vs HF ``generate``, batch
   64) and its training tokens/s as in 5, plus the same with gradient checkpointing.

    python benchmarks/cuda_check.py [--config-dir DIR] [--json out.json] [--sections …] [--device cuda|cpu]

``--config-dir``: a folder with the model's ``config.json`` and tokenizer files (default: the bundled model's
cache, built on first use). Without a CUDA device the script says so and stops (exit 0, ``SUMMARY skipped``);
``--device cpu`` runs the sections on the CPU instead — slowly — except the larger model's, which are skipped
there (its parameter count is still printed, from a weightless build). The last line is ``SUMMARY parity=…
train=… resume_max_diff=… fast_tok_s_b256=… hf_tok_s_b256=… train_tok_s=… big_params=… big_fast_tok_s_b64=…
big_train_tok_s=…``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


def random_model_dir(config_dir: Path, out: Path) -> Path:
    """An HF folder with ``config_dir``'s config and tokenizer and freshly initialised weights (seed 0)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (config_dir / name).is_file():
            shutil.copy2(config_dir / name, out / name)
    config = AutoConfig.from_pretrained(config_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    return out


def default_config_dir() -> Path:
    from safeplay.models.loading import BUNDLED, bundled_cache_dir, load_model

    target = bundled_cache_dir()
    if not (target / "config.json").is_file():
        load_model(BUNDLED, device="cpu")  # builds the cache
    tok_dir = target.parent.parent / "tokenizers" / BUNDLED
    merged = Path(tempfile.mkdtemp(prefix="safeplay-cfg-"))
    shutil.copy2(target / "config.json", merged / "config.json")
    for name in TOKENIZER_FILES:
        for src in (target / name, tok_dir / name):
            if src.is_file():
                shutil.copy2(src, merged / name)
                break
    return merged


def parity(spec: str, device: str) -> dict:
    import torch

    from safeplay.generation.base import ChatPrompt, SamplingParams
    from safeplay.models.loading import ModelConfig
    from safeplay.models.roles import PolicyConfig, build_policies

    out = {}
    prompts = [ChatPrompt([{"role": "user", "content": f"Tell me about topic number {i}."}]) for i in range(8)]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=24)
    results = {}
    for backend in ("fast", "hf"):
        pol = build_policies(ModelConfig(spec=spec, device=device, dtype="bfloat16"),
                             PolicyConfig(share={"attacker": "player", "defender": "player"}, generator=backend),
                             ["attacker", "defender"])
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():  # a non-zero adapter, so that merged weights matter
            for p in pol.trainable_parameters("defender"):
                p.add_(torch.randn(p.shape, generator=gen).to(p.device, p.dtype) * 0.02)
        comps = pol.generate("defender", prompts, greedy, seed=0)
        from safeplay.rl.batch import RoleSample, collate

        samples = [RoleSample("defender", c.prompt_ids, c.token_ids, 0.0) for c in comps]
        batch = collate(samples, pol.tokenizer.pad_token_id, pol.device)
        with torch.no_grad():
            tf = pol.token_logprobs("defender", batch.input_ids, batch.attention_mask, batch.start).float()
        diffs = []
        for i, c in enumerate(comps):
            mask = batch.response_mask[i].bool()
            diffs.append(float((tf[i][mask].cpu() - torch.tensor(c.logprobs)).abs().max()))
        results[backend] = [c.token_ids for c in comps]
        out[f"{backend}_logprob_max_abs_diff"] = max(diffs)
        del pol
        torch.cuda.empty_cache()
    same = sum(a == b for a, b in zip(results["fast"], results["hf"]))
    out["greedy_sequences_equal"] = f"{same}/{len(prompts)}"
    out["ok"] = max(out["fast_logprob_max_abs_diff"], out["hf_logprob_max_abs_diff"]) < 0.1
    return out


class HashJudge:
    """Verdicts from text hashes: varied and repeatable, so that a random-weight model still gets a training
    signal (a real judge would call all of its babble the same)."""

    name = "hash"

    def judge(self, items):
        import zlib

        from safeplay.judges.base import Verdict, label_from

        out = []
        for it in items:
            h = lambda t: zlib.crc32(t.encode())  # noqa: E731
            q, f = h(it.prompt) % 3 != 0, h(it.response) % 2 == 0
            harm = (not f) and q and h(it.response + "h") % 2 == 0
            out.append(Verdict(q, f, harm, label_from(f, harm), judge=self.name))
        return out


def train_runs(spec: str, root: Path, device: str) -> dict:
    """Self-RedTeam on ``device``: a GRPO run, and 4 REINFORCE++ steps straight vs killed at 2 and resumed."""
    import torch

    from safeplay.config import load_config
    from safeplay.data.seeds import load_seeds
    from safeplay.engine.build import resolve_share
    from safeplay.engine.run_dir import RunDir
    from safeplay.engine.setup import config_layers
    from safeplay.engine.trainer import Components, Trainer
    from safeplay.engine.config import TrainConfig
    from safeplay.models.roles import build_policies

    seeds = load_seeds(None, seed=0)  # the built-in seed set: no data directory needed

    def trainer(name: str, *overrides: str) -> Trainer:
        cfg = load_config(TrainConfig, config_layers("self-redteam", None), [
            f"model.spec={spec}", f"model.device={device}", "eval.enabled=false", "log.tensorboard=false",
            "batch_size=16", "checkpoint_every=2", "attacker.max_new_tokens=48", "defender.max_new_tokens=48",
            "game.attacker_tactics=false", "steps=4", *overrides])
        resolve_share(cfg)
        torch.manual_seed(cfg.seed)
        policies = build_policies(cfg.model, cfg.policy, ["attacker", "defender"])
        return Trainer(cfg, RunDir(root / name), Components(policies=policies, judge=HashJudge(), seeds=seeds, tactics=[]))

    def weights(tr: Trainer) -> dict:
        return {k: v.detach().float().cpu().clone() for k, v in tr.policies.state_dict("defender").items()}

    out: dict = {}
    t0 = time.time()
    grpo = trainer("grpo", "steps=2", "rl.algorithm=grpo", "rl.group_size=4", "rl.kl_in_reward=false",
                   "rl.kl_estimator=k3", "model.gradient_checkpointing=true")  # as the GPU presets train
    before = weights(grpo)
    grpo.fit()
    out["grpo_2_steps_s"] = round(time.time() - t0, 1)
    after = weights(grpo)
    out["grpo_weights_moved"] = any(not torch.equal(before[k], after[k]) for k in before)
    t0 = time.time()
    straight = trainer("straight")
    straight.fit()
    out["reinforce_pp_4_steps_s"] = round(time.time() - t0, 1)
    rows = [r for r in straight.run.metrics.rows() if r["kind"] == "train"]
    out["samples_per_step"] = [r["samples"] for r in rows]
    killed = trainer("resumed")

    def kill(step, row):
        if step == 3:  # after the step-2 checkpoint: step 3 is lost and redone
            raise KeyboardInterrupt

    try:
        killed.fit(progress=kill)
    except KeyboardInterrupt:
        pass
    resumed = trainer("resumed")
    resumed.fit(resume=True)
    a, b = weights(straight), weights(resumed)
    out["resume_max_abs_diff"] = max(float((a[k] - b[k]).abs().max()) for k in a)
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]  # noqa: E731
    out["resume_metrics_equal"] = strip(straight.run.metrics.rows()) == strip(resumed.run.metrics.rows())
    out["train_ok"] = out["grpo_weights_moved"] and all(n > 0 for n in out["samples_per_step"])
    return out


def throughput(spec: str, device: str, batches: tuple[int, ...] = (64, 256)) -> dict:
    import torch

    from safeplay.generation.base import ChatPrompt, SamplingParams
    from safeplay.generation.fast import FastGenerator
    from safeplay.models.loading import load_model

    model, tok = load_model(spec, dtype="bfloat16", device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    out = {}
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=64)
    for b in batches:
        prompts = [ChatPrompt([{"role": "user", "content": f"Write a short story about item {i}."}]) for i in range(b)]
        fast = FastGenerator(model, tok, micro_batch_size=b, ignore_eos=True)
        fast.generate(prompts[:8], sampling, seed=0)  # warm-up
        sync()
        t0 = time.perf_counter()
        comps = fast.generate(prompts, sampling, seed=0)
        sync()
        out[f"fast_tok_s_b{b}"] = round(sum(len(c.token_ids) for c in comps) / (time.perf_counter() - t0), 1)
        texts = [fast.render(p) for p in prompts]
        tok.padding_side = "left"
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        kw = dict(max_new_tokens=64, min_new_tokens=64, do_sample=True, temperature=1.0, top_p=1.0,
                  pad_token_id=tok.pad_token_id)
        model.generate(**{k: v[:8] for k, v in enc.items()}, **kw)  # warm-up
        sync()
        t0 = time.perf_counter()
        gen = model.generate(**enc, **kw)
        sync()
        new = (gen.shape[1] - enc["input_ids"].shape[1]) * b
        out[f"hf_tok_s_b{b}"] = round(new / (time.perf_counter() - t0), 1)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


BIG_SHAPE = dict(hidden_size=1536, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=24,
                 num_key_value_heads=8, head_dim=64)
"""The bundled model's family (Llama, SmolLM2 tokenizer, tied embeddings) at about 0.68B parameters."""
SECTIONS = ("parity", "train", "throughput", "training_throughput", "big")


def big_config_dir(config_dir: Path, out: Path) -> Path:
    """``config_dir`` with the model shape replaced by :data:`BIG_SHAPE` (tokenizer files copied)."""
    out.mkdir(parents=True, exist_ok=True)
    data = json.loads((config_dir / "config.json").read_text())
    data.update(BIG_SHAPE)
    (out / "config.json").write_text(json.dumps(data, indent=1))
    for name in TOKENIZER_FILES:
        if (config_dir / name).is_file():
            shutil.copy2(config_dir / name, out / name)
    return out


def parameter_count(config_dir: Path) -> int:
    """Parameters of the model ``config_dir`` describes, built on the meta device (no memory, no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir))
    return sum(p.numel() for p in model.parameters())


def training_throughput(spec: str, device: str, gradient_checkpointing: bool = False, n_samples: int = 24) -> dict:
    """Padded tokens per second of one REINFORCE++ ``PolicyUpdater`` step on synthetic samples (LoRA r = 16)."""
    import torch

    from safeplay.models.loading import ModelConfig, enable_gradient_checkpointing
    from safeplay.models.roles import PolicyConfig, build_policies
    from safeplay.rl.update import OptimConfig, PolicyUpdater, RLConfig
    from throughput import padded_tokens, synthetic_samples

    pol = build_policies(ModelConfig(spec=spec, device=device, dtype="bfloat16",
                                     gradient_checkpointing=gradient_checkpointing),
                         PolicyConfig(share={"defender": "player"}), ["defender"])
    samples = synthetic_samples(pol.tokenizer, n_samples)
    rl = RLConfig(micro_batch_size=8)
    upd = PolicyUpdater(pol, "defender", rl, OptimConfig(), total_steps=10)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    upd.step(samples[:8])  # warm-up
    sync()
    t0 = time.perf_counter()
    upd.step(samples)
    sync()
    out = {"train_tok_s": round(padded_tokens(samples, rl.micro_batch_size) / (time.perf_counter() - t0), 1),
           "samples": len(samples), "gradient_checkpointing": gradient_checkpointing}
    del pol, upd
    if device.startswith("cuda"):
        out["peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.empty_cache()
    return out


def big_model(config_dir: Path, work: Path, device: str) -> dict:
    """Rollout and training throughput of the ~0.68B random-weight model (CUDA only; on the CPU its size alone)."""
    big_cfg = big_config_dir(config_dir, work / "big-config")
    out: dict = {"params": parameter_count(big_cfg)}
    if not device.startswith("cuda"):
        out["skipped"] = "needs CUDA (a 0.68B model on the CPU would take tens of minutes here)"
        return out
    spec = str(random_model_dir(big_cfg, work / "big-model"))
    out.update({f"rollout_{k}": v for k, v in throughput(spec, device, batches=(64,)).items()})
    out["training"] = training_throughput(spec, device)
    out["training_checkpointed"] = training_throughput(spec, device, gradient_checkpointing=True)
    return out


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-dir", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu, to try the script itself")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    args = ap.parse_args()
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: the CUDA checks are skipped (--device cpu runs them on the CPU, slowly)")
        print("SUMMARY skipped=no-cuda")
        return 0
    report: dict = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                    "torch": torch.__version__}
    work = Path(tempfile.mkdtemp(prefix="safeplay-cuda-"))
    config_dir = Path(args.config_dir) if args.config_dir else default_config_dir()
    spec = str(random_model_dir(config_dir, work / "model"))
    dev = args.device
    runs = {
        "parity": lambda: parity(spec, dev), "train": lambda: train_runs(spec, work / "runs", dev),
        "throughput": lambda: throughput(spec, dev), "training_throughput": lambda: training_throughput(spec, dev),
        "big": lambda: big_model(config_dir, work, dev),
    }
    for name in sections:
        t0 = time.time()
        try:
            report[name] = runs[name]()
        except Exception as e:  # report every section even when one fails
            import traceback

            traceback.print_exc()
            report[name] = {"error": f"{type(e).__name__}: {e}"}
        report[name]["section_s"] = round(time.time() - t0, 1)
        print(name, json.dumps(report[name]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    p, t, g = (report.get(k, {}) for k in ("parity", "train", "throughput"))
    tt, big = report.get("training_throughput", {}), report.get("big", {})
    print(f"SUMMARY parity={p.get('ok')} fast_lp_diff={p.get('fast_logprob_max_abs_diff')} "
          f"train={t.get('train_ok')} resume_max_diff={t.get('resume_max_abs_diff')} "
          f"resume_metrics_equal={t.get('resume_metrics_equal')} "
          f"fast_tok_s_b256={g.get('fast_tok_s_b256')} hf_tok_s_b256={g.get('hf_tok_s_b256')} "
          f"train_tok_s={tt.get('train_tok_s')} big_params={big.get('params')} "
          f"big_fast_tok_s_b64={big.get('rollout_fast_tok_s_b64')} "
          f"big_train_tok_s={(big.get('training') or {}).get('train_tok_s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
