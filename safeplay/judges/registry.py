"""Judges by name: ``build_judge("guard-mini")``, ``build_judge("wildguard", endpoint=..., model_name=...)``, …

Names:

* ``guard-mini`` — the shipped MiniLM classifier (options: ``weights``, ``meta``, ``thresholds``);
  ``guard-mini:PATH`` — the same judge with the weights that ``safeplay judge train --out PATH`` wrote (a folder or
  the ``.safetensors`` file; in a config, ``judge.name: guard-mini:PATH`` or ``judge.options: {weights: PATH}``);
* ``keyword`` — refusal-phrase baseline (options: ``phrases``, ``window``, ``prompt_harmful``, ``assume_harmful``);
* ``wildguard``, ``llama-guard``, ``ssp-score``, ``triplay-eval``, ``strongreject`` (StrongREJECT's rubric
  grader: its verdicts carry the rubric items, which give the benchmark's published score) — LLM judges; need
  ``model=`` (a local model directory or spec) or ``endpoint=`` + ``model_name=`` (an OpenAI-compatible server);
  further options go to the backend (``api``, ``timeout``, ``retries``, ``concurrency``, ``api_key_env``,
  ``batch_size``, ``dtype``, …);
* ``classify`` — a remote ``/classify`` judge server (``url=``);
* ``vote:<a>,<b>,...`` — majority vote of those experts on both panels, or ``vote:<a>,<b>|<c>,<d>`` for safety
  experts a, b and utility experts c, d. Options: ``require_agreement``, ``tie``, ``utility_tie``, and ``experts``
  = ``{expert name: {its options}}``.
"""

from __future__ import annotations

from typing import Any, Callable

from safeplay.errors import SafeplayError
from safeplay.judges.base import Judge

LLM_JUDGES = ("wildguard", "llama-guard", "ssp-score", "triplay-eval", "strongreject")


def _guard_mini(**options: Any) -> Judge:
    from safeplay.judges.guard_mini import GuardMini

    return GuardMini(**options)


def _keyword(**options: Any) -> Judge:
    from safeplay.judges.keyword import KeywordJudge

    return KeywordJudge(**options)


def _classify(**options: Any) -> Judge:
    from safeplay.judges.classify_client import HTTPClassifyJudge

    if "url" not in options:
        raise SafeplayError("judge 'classify' needs url=<http://host:port/classify>")
    return HTTPClassifyJudge(**options)


def _llm(kind: str) -> Callable[..., Judge]:
    def make(**options: Any) -> Judge:
        from safeplay.judges.llm import build_llm_judge

        return build_llm_judge(kind, **options)

    return make


BUILDERS: dict[str, Callable[..., Judge]] = {
    "guard-mini": _guard_mini,
    "keyword": _keyword,
    **{k: _llm(k) for k in LLM_JUDGES},
    "classify": _classify,
}
KNOWN = (*BUILDERS, "guard-mini:<weights path>", "vote:<a>,<b>,...")


def _vote(spec: str, options: dict[str, Any]) -> Judge:
    from safeplay.judges.voting import VotingJudge

    expert_options = options.pop("experts", {}) or {}
    panels = spec.split("|")
    if len(panels) > 2 or not panels[0].strip():
        raise SafeplayError(f"bad voting spec 'vote:{spec}'; use vote:a,b,c or vote:a,b|c,d")
    built: dict[str, Judge] = {}

    def experts(panel: str) -> list[Judge]:
        names = [n.strip() for n in panel.split(",") if n.strip()]
        for n in names:
            if n.startswith("vote:"):
                raise SafeplayError("voting judges cannot be nested")
            if n not in built:
                built[n] = build_judge(n, **expert_options.get(n, {}))
        return [built[n] for n in names]

    safety = experts(panels[0])
    utility = experts(panels[1]) if len(panels) == 2 else []
    return VotingJudge(safety, utility, **options)


_OPTIONS: dict[str, tuple[str, ...]] = {
    "guard-mini": ("weights", "meta", "encoder", "thresholds", "cross", "prompt_head_words", "prompt_tail_words"),
    "keyword": ("phrases", "window", "prompt_harmful", "assume_harmful"),
    "classify": ("url", "batch_size", "timeout", "retries", "backoff", "api_key_env", "name"),
}
"""Options each judge takes (``build_judge`` passes them on as keyword arguments)."""
_LLM_LOCAL = ("model", "dtype", "device", "batch_size")
_LLM_HTTP = ("endpoint", "model_name", "api", "api_key_env", "timeout", "retries", "backoff", "concurrency")
_VOTE = ("require_agreement", "tie", "utility_tie", "name", "experts")


def check_judge(name: str, options: dict[str, Any] | None = None, what: str = "judge",
                options_what: str | None = None) -> None:
    """Raise a one-line SafeplayError if ``build_judge(name, **options)`` cannot work, without building anything
    (no weights read, no server called): unknown names, unknown or missing options. ``what`` names the setting of
    the name in the message, ``options_what`` (default: ``what``) the setting of the options."""
    options = dict(options or {})
    opt = options_what or what
    if name.startswith("vote:"):
        panels = name[len("vote:"):].split("|")
        if len(panels) > 2 or not panels[0].strip():
            raise SafeplayError(f"{what}: bad voting spec {name!r}; use vote:a,b,c or vote:a,b|c,d")
        _check_keys(opt, name, options, _VOTE)
        experts = options.get("experts") or {}
        if not isinstance(experts, dict):
            raise SafeplayError(f"{opt}: option 'experts' must map expert names to their options")
        for panel in panels:
            for expert in (n.strip() for n in panel.split(",") if n.strip()):
                if expert.startswith("vote:"):
                    raise SafeplayError(f"{what}: voting judges cannot be nested")
                check_judge(expert, experts.get(expert, {}), what, opt)
        return
    if name.startswith("guard-mini:"):
        from pathlib import Path

        path = Path(name[len("guard-mini:"):]).expanduser()
        if not str(path) or str(path) == ".":
            raise SafeplayError(f"{what}: judge 'guard-mini:PATH' needs a path to retrained weights")
        weights = path / "guard_mini.safetensors" if path.is_dir() else path
        if not weights.is_file():
            raise SafeplayError(f"{what}: {path} holds no guard-mini weights (what `safeplay judge train --out` writes)")
        if "weights" in options:
            raise SafeplayError(f"{opt}: judge {name!r} names its weights; drop the weights option")
        return
    if name not in BUILDERS:
        raise SafeplayError(f"{what}: unknown judge {name!r}; known: {', '.join(KNOWN)}")
    if name in LLM_JUDGES:
        if ("model" in options) == ("endpoint" in options):
            raise SafeplayError(f"{opt}: judge {name} needs exactly one of the options model=<local dir or spec> "
                                "or endpoint=<url>")
        if "endpoint" in options and not options.get("model_name"):
            raise SafeplayError(f"{opt}: judge {name} with endpoint= also needs model_name= (the served model's name)")
        _check_keys(opt, name, options, _LLM_HTTP if "endpoint" in options else _LLM_LOCAL)
        return
    if name == "classify" and "url" not in options:
        raise SafeplayError(f"{opt}: judge 'classify' needs url=<http://host:port/classify>")
    _check_keys(opt, name, options, _OPTIONS[name])


def _check_keys(what: str, name: str, options: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SafeplayError(f"{what}: judge {name!r} has no option {unknown[0]!r}; its options: {', '.join(known)}")


def build_judge(name: str, **options: Any) -> Judge:
    """The judge called ``name`` (see the module docstring); unknown names raise SafeplayError."""
    if name.startswith("vote:"):
        return _vote(name[len("vote:"):], dict(options))
    if name.startswith("guard-mini:"):
        path = name[len("guard-mini:"):]
        if not path:
            raise SafeplayError("judge 'guard-mini:PATH' needs a path to retrained weights")
        if "weights" in options:
            raise SafeplayError(f"judge {name!r} names its weights; drop the weights option")
        return _guard_mini(weights=path, **options)
    builder = BUILDERS.get(name)
    if builder is None:
        raise SafeplayError(f"unknown judge {name!r}; known: {', '.join(KNOWN)}")
    try:
        return builder(**options)
    except TypeError as e:
        raise SafeplayError(f"judge {name!r}: bad options {sorted(options)} ({e})") from None
