"""`callplatform` command line: one sub-command per module in callplatform.commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from callplatform.commands.errors import UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

# Each module defines `add_arguments(parser)` and `run(args) -> int`; only the chosen one is
# imported, so `callplatform validate` never pays for kopf, the probes or the Kubernetes client.
COMMANDS = {
    "run": "Run the operator (kopf) against the current Kubernetes context.",
    "validate": "Check manifests or an env file against the production rules, offline.",
    "render": "Print the objects the operator would apply for a manifest, offline.",
    "probe": "Probe Jitsi and coturn once, the way the operator's health monitor does.",
    "csp": "Print the Content-Security-Policy the operator serves for a platform.",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every sub-command, or with only `command`'s arguments (and module) loaded."""
    parser = argparse.ArgumentParser(prog="callplatform", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if command is None or name == command:
            module = importlib.import_module(f"callplatform.commands.{name}")
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The top-level parser takes no option with a value, so the first word is the sub-command.
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"callplatform {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
