"""``safeplay chat``: talk to a role of a model, a saved adapter, or a training run's latest checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from safeplay.errors import SafeplayError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "chat",
        help="chat with a model, a saved role adapter, or a training run's latest checkpoint",
        description="Interactive chat (type 'exit' or press Ctrl-D to leave), or one answer with --prompt "
        "(printed alone on stdout, greedy unless --temperature is given).",
    )
    p.add_argument("--role", default="defender", help="which role's weights answer (default: defender)")
    p.add_argument("--prompt", default=None, help="answer this one prompt and exit")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, metavar="SPEC",
                     help="smollm2-135m (default), a Hugging Face model directory (an exported model or PEFT "
                     "adapter folder too), or a hub id")
    src.add_argument("--run", default=None, metavar="DIR", help="a training run folder: use its latest checkpoint")
    p.add_argument("--adapter", default=None, metavar="DIR",
                   help="a role's saved weights (a folder written by save_role) on top of --model")
    p.add_argument("--step", type=int, default=None, help="checkpoint step of --run (default: the latest)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: 0 = greedy with --prompt, 0.7 interactively)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="answer length cap in tokens (default: 256)")
    p.add_argument("--system", default=None, help="system prompt (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: auto)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: auto)")
    p.set_defaults(func=run)


def _generator(args: argparse.Namespace):
    """A Generator for the requested weights, and a short description of them."""
    from safeplay.models import PolicyConfig, RolePolicies, load_model
    from safeplay.models.checkpoint_io import load_run_policies
    from safeplay.models.roles import read_role_meta

    if args.run:
        if args.adapter:
            raise SafeplayError("--adapter and --run cannot be combined (a run brings its own weights)")
        policies = load_run_policies(Path(args.run), step=args.step, device=args.device, dtype=args.dtype)
        if args.role not in policies.roles:
            raise SafeplayError(f"run {args.run} has no role {args.role!r}; it has {', '.join(policies.roles)}")
        return policies.generator(args.role), f"{args.run} ({args.role})"
    model, tok = load_model(args.model, dtype=args.dtype, device=args.device)
    if not args.adapter:
        from safeplay.generation.factory import make_generator

        return make_generator(model, tok), args.model or "smollm2-135m"
    meta = read_role_meta(Path(args.adapter))
    lora = meta.get("lora") or {}
    cfg = PolicyConfig(
        mode=meta["mode"],
        **({"lora_r": lora["r"], "lora_alpha": lora["alpha"], "target_modules": lora["target_modules"]} if lora else {}),
    )
    # A lone role: full-weight dicts load into a 'separate' copy whatever mode wrote them.
    if cfg.mode == "full":
        cfg.mode = "separate"
    policies = RolePolicies(model, tok, [args.role], cfg, micro_batch_size=1)
    policies.load_role(args.role, Path(args.adapter))
    return policies.generator(args.role), f"{args.adapter} ({args.role})"


def _check_args(args: argparse.Namespace) -> None:
    """Every flag checked before a model loads (one line per mistake)."""
    from safeplay.commands.checks import at_least, model_flags, run_folder
    from safeplay.models.loading import check_model_spec
    from safeplay.models.roles import ROLES

    at_least("--max-new-tokens", args.max_new_tokens, 1)
    at_least("--temperature", args.temperature, 0)
    at_least("--step", args.step, 0)
    if args.role not in ROLES:
        raise SafeplayError(f"--role {args.role!r} is not a role; choose one of {', '.join(ROLES)}")
    model_flags(args.dtype, args.device)
    if args.step is not None and not args.run:
        raise SafeplayError("--step needs --run")
    if args.run:
        if args.adapter:
            raise SafeplayError("--adapter and --run cannot be combined (a run brings its own weights)")
        run_folder("--run", args.run)
    if args.model:
        check_model_spec(args.model, "--model")
    if args.adapter:
        from safeplay.models.roles import read_role_meta

        read_role_meta(Path(args.adapter))


def run(args: argparse.Namespace) -> int:
    from safeplay.generation.base import ChatPrompt, SamplingParams

    _check_args(args)
    temperature = args.temperature if args.temperature is not None else (0.0 if args.prompt is not None else 0.7)
    sampling = SamplingParams(temperature=temperature, max_new_tokens=args.max_new_tokens)
    system = [{"role": "system", "content": args.system}] if args.system else []
    gen, label = _generator(args)

    if args.prompt is not None:
        out = gen.generate([ChatPrompt(system + [{"role": "user", "content": args.prompt}])], sampling, seed=args.seed)
        print(out[0].text.strip())
        return 0
    return _repl(gen, label, system, sampling, args.seed)


def _repl(gen, label: str, system: list[dict[str, str]], sampling, seed: int) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.prompt import Prompt

    from safeplay.generation.base import ChatPrompt

    console = Console()
    console.print(f"[dim]chatting with {escape(label)} — 'exit' or Ctrl-D to leave, '/reset' to start over[/dim]")
    history: list[dict[str, str]] = []
    turn = 0
    while True:
        try:
            text = Prompt.ask("[bold cyan]you[/bold cyan]", console=console)
        except (EOFError, KeyboardInterrupt):
            console.print()
            return 0
        if text.strip() in ("exit", "quit"):
            return 0
        if text.strip() == "/reset":
            history = []
            continue
        if not text.strip():
            continue
        history.append({"role": "user", "content": text})
        with console.status("thinking…"):
            out = gen.generate([ChatPrompt(system + history)], sampling, seed=seed + turn)[0]
        turn += 1
        answer = out.text.strip()
        history.append({"role": "assistant", "content": answer})
        # Model output is untrusted: print it as plain text, never as rich markup.
        console.print("[bold green]model[/bold green]: ", end="")
        console.print(answer, markup=False, highlight=False)
        if out.finish_reason == "length":
            console.print("[dim](cut at --max-new-tokens)[/dim]")
