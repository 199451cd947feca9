"""SSP's reflective experience replay: a pool of failure cases sampled by UCB.

The SSP paper's exact rule was not obtainable; this follows the project's reconstruction:

* **Insert** an entry (goal, attack prompt, defender response) whenever the defender's reward on it is below
  ``insert_threshold`` (a failure). Its running mean starts at that reward; ``visits`` counts *replays* only.
  The same (goal, attack) pair is not inserted twice.
* **Priority** of an entry: ``(1 − R̄) + c·sqrt(ln N / (n + 1))`` where R̄ is its mean defender reward rescaled
  from ``[reward_lo, reward_hi]`` to [0, 1] (low reward = high priority), n its replays and N = total replays so
  far + 1 (so ln N ≥ 0 and the first draw is pure exploitation). The ``+ 1`` in both places keeps the bonus
  finite for unvisited entries; with ``explore_unvisited_first`` (default) never-replayed entries are still
  drawn before any replayed one (lowest reward first) — the usual UCB convention of trying every arm once.
* **Sample** ``k`` distinct entries: the top-k by priority (``mode="ucb"``), k uniformly at random
  (``"uniform"``, the ablation), or none (``"none"``). Ties are broken by the pool's own seeded RNG, so a run is
  reproducible from the pool state.
* **Update** after replay: the defender is re-run on the attack and re-judged; the new reward enters the running
  mean (over the insertion observation and every replay), the stored response becomes the latest one.
* **Remove solved entries**: once an entry has ``evict_min_visits`` replays and its mean reward is above
  ``evict_success_threshold`` it is no longer a failure and leaves the pool.
* **Cap**: when the pool exceeds ``cap``, the entry the defender handles best (highest mean reward) goes first,
  oldest among equals (``evict_policy="lowest_priority"``, default: a full pool keeps its hardest cases);
  ``"fifo"`` evicts the oldest insertion instead, as in the reconstruction's first draft.

The SSP recipe builds its pool from the run's ``ssp`` settings (``recipes.ssp.config.SSPConfig``, the one place
their defaults live); the constructor's keyword defaults serve direct library use.

``state_dict()`` is plain JSON-able data (RNG state included) and ``load_state_dict`` restores the pool exactly.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any, Literal

ReplayMode = Literal["ucb", "uniform", "none"]
EvictPolicy = Literal["lowest_priority", "fifo"]


@dataclass
class PoolEntry:
    """One stored failure case."""

    goal: str
    attack: str
    response: str
    """The defender's latest response to ``attack``."""
    visits: int
    """Times replayed."""
    mean_reward: float
    """Running mean defender reward over the insertion observation and every replay."""
    inserted_step: int
    last_step: int
    """Step of the latest observation (insertion or replay)."""
    id: int


class ExperiencePool:
    """SSP's failure-case pool with a UCB sampler (see the module docstring for the rules)."""

    def __init__(
        self,
        cap: int = 1024,
        insert_threshold: float = 0.5,
        c: float = 1.0,
        mode: ReplayMode = "ucb",
        evict_success_threshold: float = 0.8,
        seed: int = 0,
        evict_min_visits: int = 2,
        evict_policy: EvictPolicy = "lowest_priority",
        explore_unvisited_first: bool = True,
        reward_lo: float = 0.0,
        reward_hi: float = 1.0,
    ) -> None:
        if cap < 1:
            raise ValueError("cap must be >= 1")
        if mode not in ("ucb", "uniform", "none"):
            raise ValueError(f"mode must be ucb, uniform or none, got {mode!r}")
        if evict_policy not in ("lowest_priority", "fifo"):
            raise ValueError(f"evict_policy must be lowest_priority or fifo, got {evict_policy!r}")
        if not reward_hi > reward_lo:
            raise ValueError("reward_hi must be greater than reward_lo")
        self.cap = cap
        self.insert_threshold = insert_threshold
        self.c = c
        self.mode = mode
        self.evict_success_threshold = evict_success_threshold
        self.seed = seed
        self.evict_min_visits = evict_min_visits
        self.evict_policy = evict_policy
        self.explore_unvisited_first = explore_unvisited_first
        self.reward_lo = reward_lo
        self.reward_hi = reward_hi
        self._rng = random.Random(seed)
        self._entries: dict[int, PoolEntry] = {}
        self._next_id = 0
        self.total_visits = 0
        self.counters = {"inserted": 0, "duplicates": 0, "evicted_cap": 0, "removed_solved": 0, "missing_updates": 0}

    # ------------------------------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[PoolEntry]:
        """All entries in insertion order (copies are not made: treat as read-only)."""
        return list(self._entries.values())

    def get(self, entry_id: int) -> PoolEntry | None:
        return self._entries.get(entry_id)

    def _norm(self, reward: float) -> float:
        return min(1.0, max(0.0, (reward - self.reward_lo) / (self.reward_hi - self.reward_lo)))

    def priority(self, e: PoolEntry) -> float:
        """UCB score: (1 − normalised mean reward) + c·sqrt(ln N / (n + 1)), N = total replays + 1."""
        bonus = self.c * math.sqrt(math.log(self.total_visits + 1) / (e.visits + 1))
        return (1.0 - self._norm(e.mean_reward)) + bonus

    # ------------------------------------------------------------------------------------------ changes

    def maybe_insert(self, goal: str, attack: str, response: str, defender_reward: float, step: int) -> int | None:
        """Insert a failure case; returns its id, or None when not a failure, a duplicate, or mode "none"."""
        if self.mode == "none" or not defender_reward < self.insert_threshold:
            return None
        if any(e.goal == goal and e.attack == attack for e in self._entries.values()):
            self.counters["duplicates"] += 1
            return None
        entry = PoolEntry(goal, attack, response, 0, float(defender_reward), step, step, self._next_id)
        self._entries[entry.id] = entry
        self._next_id += 1
        self.counters["inserted"] += 1
        while len(self._entries) > self.cap:
            self._evict_one()
        return entry.id if entry.id in self._entries else None

    def _evict_one(self) -> None:
        if self.evict_policy == "fifo":
            victim = min(self._entries.values(), key=lambda e: (e.inserted_step, e.id))
        else:
            victim = max(self._entries.values(), key=lambda e: (e.mean_reward, -e.inserted_step, -e.id))
        del self._entries[victim.id]
        self.counters["evicted_cap"] += 1

    def sample(self, k: int) -> list[PoolEntry]:
        """Up to ``k`` distinct entries to replay (none in mode "none")."""
        if k <= 0 or self.mode == "none" or not self._entries:
            return []
        entries = list(self._entries.values())
        if self.mode == "uniform":
            return self._rng.sample(entries, min(k, len(entries)))
        # One tie-break draw per entry, in insertion order, keeps the choice a function of the RNG state.
        ties = [self._rng.random() for _ in entries]

        def key(i: int) -> tuple[float, ...]:
            e = entries[i]
            unvisited = 1.0 if (self.explore_unvisited_first and e.visits == 0) else 0.0
            return (-unvisited, -self.priority(e), ties[i])

        order = sorted(range(len(entries)), key=key)
        return [entries[i] for i in order[:k]]

    def update(self, entry_id: int, defender_reward: float, response: str, step: int) -> PoolEntry | None:
        """Record one replay's outcome; returns the entry, or None if it was removed (solved) or is gone."""
        e = self._entries.get(entry_id)
        if e is None:
            self.counters["missing_updates"] += 1
            return None
        e.visits += 1
        e.mean_reward += (float(defender_reward) - e.mean_reward) / (e.visits + 1)
        e.response = response
        e.last_step = step
        self.total_visits += 1
        if e.visits >= self.evict_min_visits and e.mean_reward > self.evict_success_threshold:
            del self._entries[entry_id]
            self.counters["removed_solved"] += 1
            return None
        return e

    # ------------------------------------------------------------------------------------------ reporting

    def stats(self) -> dict[str, float]:
        """Size, mean priority / reward / visits, total replays and the event counters."""
        es = list(self._entries.values())
        n = len(es)
        out: dict[str, float] = {
            "size": n,
            "total_visits": self.total_visits,
            "mean_priority": sum(self.priority(e) for e in es) / n if n else 0.0,
            "mean_reward": sum(e.mean_reward for e in es) / n if n else 0.0,
            "mean_visits": sum(e.visits for e in es) / n if n else 0.0,
            "unvisited": sum(1 for e in es if e.visits == 0),
        }
        out.update(self.counters)
        return out

    # ------------------------------------------------------------------------------------------ state

    _SETTINGS = (
        "cap", "insert_threshold", "c", "mode", "evict_success_threshold", "seed", "evict_min_visits",
        "evict_policy", "explore_unvisited_first", "reward_lo", "reward_hi",
    )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly, as JSON-able data."""
        version, internal, gauss = self._rng.getstate()
        return {
            "settings": {name: getattr(self, name) for name in self._SETTINGS},
            "entries": [dataclasses.asdict(e) for e in self._entries.values()],
            "next_id": self._next_id,
            "total_visits": self.total_visits,
            "counters": dict(self.counters),
            "rng": [version, list(internal), gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state["settings"].items():
            setattr(self, name, value)
        self._entries = {d["id"]: PoolEntry(**d) for d in state["entries"]}
        self._next_id = int(state["next_id"])
        self.total_visits = int(state["total_visits"])
        self.counters = dict(state["counters"])
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
