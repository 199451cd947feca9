"""``safeplay models``: the known model specs, their cache state, and what ``auto`` picks on this machine."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list known models, their cache state, and the dtype/device auto picks here",
        description="Known model specs (any Hugging Face model directory, or hub id when online, works too), "
        "where the bundled model's file is, whether its converted cache is built, and the device and dtype "
        "that 'auto' chooses on this machine and why.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from safeplay.errors import SafeplayError
    from safeplay.models import bundled, loading

    console = Console()
    console.print("[bold]known models[/bold]")
    try:
        source = str(bundled.gguf_path())
        cache = f"{bundled.cache_status()} — {bundled.bundled_cache_dir()}"
    except SafeplayError as e:
        source, cache = f"unavailable: {e}", "-"
    console.print(f"  [bold]{bundled.BUNDLED}[/bold] (default, offline)", highlight=False)
    console.print(f"      file:  {source}", highlight=False, soft_wrap=True)
    console.print(f"      cache: {cache}", highlight=False, soft_wrap=True)
    console.print("  [bold]<directory>[/bold]   a local Hugging Face model folder (config.json + weights)")
    console.print("  [bold]<org/name>[/bold]    a Hugging Face hub id (needs network access)")
    device = loading.resolve_device("auto")
    dtype, why = loading.auto_dtype_reason(device)
    device_why = "CUDA available" if device.type == "cuda" else "no CUDA device"
    console.print(f"device auto -> [bold]{device}[/bold] ({device_why})")
    console.print(f"dtype  auto -> [bold]{dtype}[/bold] ({why})")
    return 0
