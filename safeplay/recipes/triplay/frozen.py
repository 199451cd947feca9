"""TriPlay's frozen defenders: models that never learn and only answer Red's attacks (``triplay.frozen_defenders``:
``base`` = the base model with adapters off, ``base-system`` = the same under the safety system prompt, or a model
spec loaded on first use). A mixin of the ``TriPlay`` recipe: it reads ``self.cfg``, ``self.ctx`` and keeps the
built defenders in ``self._frozen``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from safeplay.errors import SafeplayError
from safeplay.game.cot import parse_cot
from safeplay.game.rollout import Game
from safeplay.game.templates import SAFETY_SYSTEM, defender_prompt


@dataclass
class FrozenDefender:
    """A defender that never learns and only answers Red's attacks."""

    name: str
    generator: Any
    system: str | None = None


class FrozenDefenders:
    """Builds and plays the frozen defenders (see the module docstring)."""

    cfg: Any
    ctx: Any
    _frozen: list[FrozenDefender] | None = None

    def frozen_defenders(self) -> list[FrozenDefender]:
        if self._frozen is None:
            out = []
            for spec in self.cfg.triplay.frozen_defenders:
                if spec == "base":
                    out.append(FrozenDefender("base", self.ctx.policies.base_generator()))
                elif spec == "base-system":
                    out.append(FrozenDefender("base-system", self.ctx.policies.base_generator(), SAFETY_SYSTEM))
                else:
                    out.append(FrozenDefender(Path(spec.rstrip("/")).name or spec, self._load_model(spec)))
            names = [d.name for d in out]
            if len(set(names)) != len(names):
                raise SafeplayError(f"triplay.frozen_defenders: names must be distinct, got {names}")
            self._frozen = out
        return self._frozen

    def _load_model(self, spec: str):
        from safeplay.generation.factory import make_generator
        from safeplay.models.loading import load_model

        model, tok = load_model(spec, self.cfg.model.dtype, self.cfg.model.device)
        return make_generator(model, tok, self.cfg.rl.micro_batch_size, self.cfg.policy.generator)

    def frozen_answers(self, d: FrozenDefender, games: Sequence[Game], seed: int) -> list[str]:
        cot = self.cfg.game.cot
        prompts = [defender_prompt(g.query, cot, system=d.system) for g in games]
        comps = d.generator.generate(prompts, self.cfg.defender, seed=seed)
        return [parse_cot(c.text).answer if cot else c.text.strip() for c in comps]
