"""``safeplay export``: a run's trained role as a PEFT adapter or a full Hugging Face model folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a run's defender (or another role) as a PEFT adapter or a merged Hugging Face model",
        description="Write a trained role of a run folder as a standard PEFT adapter (adapter_config.json + "
        "adapter_model.safetensors) or a full Hugging Face model (config, safetensors, tokenizer, generation "
        "config) that plain transformers loads; both carry a model card (README.md) generated from the run. "
        "`safeplay chat --model DIR` and `safeplay eval --model DIR` accept either folder.",
    )
    p.add_argument("--run", required=True, metavar="DIR", help="the training run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (must be new or empty, see --force)")
    p.add_argument("--format", default="merged", choices=["adapter", "merged"],
                   help="merged (default): a full model, loads with transformers alone; adapter: a PEFT LoRA "
                   "adapter on the base model (LoRA runs only)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--role", default="defender", help="which role's weights (default: defender)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                   help="weights dtype of a merged export (default: the base model's stored dtype)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--push-to-hub", default=None, metavar="REPO",
                   help="also upload the folder to this Hugging Face model repo (needs a token: hf auth login)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    """Every flag checked before any weights are read or a folder is written (one line per mistake)."""
    import re

    from safeplay.commands.checks import at_least, folder_path, run_folder
    from safeplay.errors import SafeplayError
    from safeplay.models.roles import ROLES

    if args.private and not args.push_to_hub:
        raise SafeplayError("--private needs --push-to-hub")
    folder_path("--out", args.out)
    at_least("--step", args.step, 0)
    if args.role not in ROLES:
        raise SafeplayError(f"--role {args.role!r} is not a role; choose one of {', '.join(ROLES)}")
    if args.push_to_hub is not None and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", args.push_to_hub):
        raise SafeplayError(f"--push-to-hub {args.push_to_hub!r} is not a Hugging Face repo id (name or owner/name)")
    run_folder("--run", args.run)


def run(args: argparse.Namespace) -> int:
    import logging

    from safeplay.errors import SafeplayError
    from safeplay.export import export_run

    _check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    out = export_run(args.run, args.out, fmt=args.format, role=args.role, step=args.step, dtype=args.dtype,
                     force=args.force, card_target=args.push_to_hub)
    print(f"wrote {out}")
    if args.push_to_hub:
        from safeplay.export.hub import push_to_hub

        print(f"pushed to {push_to_hub(out, args.push_to_hub, private=args.private)}")
    return 0
