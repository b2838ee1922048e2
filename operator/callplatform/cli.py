"""`callplatform` command line: one sub-command per module in callplatform.commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from callplatform.commands.errors import UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

# Each module defines `add_parser(subparsers)` and `run(args) -> int`; imported
# lazily so `callplatform validate` never pays for kopf or the Kubernetes client.
COMMANDS = {
    "run": "Run the operator (kopf) against the current Kubernetes context.",
    "validate": "Check manifests or an env file against the production rules, offline.",
    "render": "Print the objects the operator would apply for a manifest, offline.",
    "probe": "Probe Jitsi and coturn once, the way the operator's health monitor does.",
    "csp": "Print the Content-Security-Policy the operator serves for a platform.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callplatform", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"callplatform.commands.{name}")
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
