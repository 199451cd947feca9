"""Deterministic stand-ins for tests: a judge whose labels depend only on the texts."""

from __future__ import annotations

import zlib
from typing import Sequence

from safeplay.judges.base import JudgeItem, Verdict, label_from


def _h(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


class FakeJudge:
    """Labels from text hashes: the same (prompt, response) always gets the same verdict."""

    name = "fake"

    def __init__(self, fail_on_calls: Sequence[int] = ()):
        self.calls = 0
        self.fail_on_calls = set(fail_on_calls)

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        self.calls += 1
        if self.calls in self.fail_on_calls:
            raise TimeoutError("fake judge timed out")
        out = []
        for it in items:
            q = _h(it.prompt) % 3 != 0
            f = _h(it.response) % 2 == 0
            h = (not f) and q and _h(it.response + "h") % 2 == 0
            out.append(Verdict(q, f, h, label_from(f, h), score=1 + 4 * float(h), judge=self.name))
        return out


class TinyWorkerSpec:
    """Rollout/judge workers for Ray tests: the tiny random model (same init as ``test_engine.make_trainer``) and
    the fake judge. ``log`` (a file path) records each shard a worker starts and finishes; ``kill`` (a file path)
    arms one crash: the first defender shard that sees the file removes it and kills its worker process, as an
    out-of-memory kill would. Defender shards follow the step's attacker shards, so the crash is mid-step."""

    def __init__(self, cfg, roles, log: str | None = None, kill: str | None = None):
        self.cfg, self.roles, self.log, self.kill = cfg, list(roles), log, kill

    def build_engine(self):
        import torch

        from safeplay.models.loading import tiny_model
        from safeplay.models.roles import RolePolicies

        model, tok = tiny_model(seed=0)
        torch.manual_seed(self.cfg.seed)
        return RecordingEngine(RolePolicies(model, tok, self.roles, self.cfg.policy), self.log, self.kill)

    def build_judge(self):
        return FakeJudge()


class RecordingEngine:
    """A worker's policies that log every shard (start/done, with its seed) and can crash once on purpose."""

    def __init__(self, inner, log: str | None, kill: str | None):
        self.inner, self.log, self.kill = inner, log, kill

    def _write(self, what: str, role: str, seed) -> None:
        import os

        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{what} {role} {seed} {os.getpid()}\n")

    def generate(self, role, prompts, sampling, seed=None):
        import os

        self._write("start", role, seed)
        if self.kill and role == "defender":
            try:
                os.rename(self.kill, self.kill + ".fired")  # atomic: exactly one worker fires
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        out = self.inner.generate(role, prompts, sampling, seed)
        self._write("done", role, seed)
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)
