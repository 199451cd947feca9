"""The ``safeplay`` command. Each subcommand lives in ``safeplay/commands/<name>.py`` and exposes
``register(subparsers)``; command modules import heavy libraries (torch, transformers) only inside the
function that runs the command, so ``safeplay --help`` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from safeplay import __version__
from safeplay.config import ConfigError
from safeplay.errors import SafeplayError

COMMANDS = ["train", "eval", "report", "ablate", "chat", "export", "judge", "models"]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the mistake and where to read the usage, instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="safeplay",
        description="Safer language models by self-play reinforcement learning.",
    )
    parser.add_argument("--version", action="version", version=f"safeplay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"safeplay.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"safeplay.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, SafeplayError, FileNotFoundError) as e:
        print(f"safeplay {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"safeplay {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
