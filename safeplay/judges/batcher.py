"""Coalesce concurrent judge requests into batches: many small HTTP requests, few large judge calls.

Request threads hand their items to one batching thread and wait. That thread takes the first waiting request,
collects more for up to ``max_wait_s`` or until ``max_batch`` items are waiting, calls the judge on them in
chunks of at most ``max_batch`` items, and hands each request back exactly its own slice of the verdicts. Only
this thread ever calls the judge, so judges need not be thread-safe (a local model is not).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any, Sequence

from safeplay.judges.base import JudgeItem, Verdict


class BatchTimeout(Exception):
    """A request's verdicts did not arrive in time (the judge itself may raise TimeoutError: not this)."""


@dataclass
class _Request:
    items: list[JudgeItem]
    future: Future = field(default_factory=Future)


class Batcher:
    """Serves ``submit(items)`` from many threads with batched calls of ``judge.judge``."""

    def __init__(self, judge: Any, max_batch: int = 64, max_wait_s: float = 0.005):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.judge = judge
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_s)
        self.counts = {"requests": 0, "items": 0, "batches": 0, "judge_calls": 0, "errors": 0}
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="judge-batcher", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[JudgeItem], timeout: float | None = None) -> list[Verdict]:
        """The verdicts of ``items``, in order; re-raises the judge's exception if its batch failed."""
        if not items:
            return []
        req = _Request(list(items))
        self._queue.put(req)
        if not wait([req.future], timeout).done:
            raise BatchTimeout(f"no verdicts within {timeout:g}s")
        return req.future.result()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # -- the batching thread ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, n = [first], len(first.items)
            deadline = time.monotonic() + self.max_wait_s
            stop = False
            while n < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                n += len(nxt.items)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[_Request]) -> None:
        items = [it for req in batch for it in req.items]
        verdicts: list[Verdict] = []
        calls = 0
        try:
            for start in range(0, len(items), self.max_batch):
                chunk = items[start:start + self.max_batch]
                out = self.judge.judge(chunk)
                calls += 1
                if len(out) != len(chunk):
                    raise RuntimeError(f"judge returned {len(out)} verdicts for {len(chunk)} items")
                verdicts += out
        except Exception as e:  # every request of the batch learns why; the server answers 500
            with self._lock:
                self.counts["errors"] += len(batch)
            for req in batch:
                req.future.set_exception(e)
            return
        with self._lock:
            self.counts["requests"] += len(batch)
            self.counts["items"] += len(items)
            self.counts["batches"] += 1
            self.counts["judge_calls"] += calls
        pos = 0
        for req in batch:
            req.future.set_result(verdicts[pos:pos + len(req.items)])
            pos += len(req.items)
