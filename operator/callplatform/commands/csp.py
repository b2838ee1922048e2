"""`callplatform csp FILE`: the Content-Security-Policy the operator serves, for each platform.

The same function renders the security-headers ConfigMap, so this is exactly
the header the app and ingress get. `--scope` picks the URL scope (`default`,
`/call` with camera and microphone, `/chat` which may be framed SAMEORIGIN).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from callplatform.commands.render import load_platforms
from callplatform.model import ENVIRONMENTS
from callplatform.render.security_headers import CSP_KEY, security_headers

SCOPES = ("default", "/call", "/chat")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FILE", help="manifests holding CallPlatform(s)")
    parser.add_argument("--environment", choices=ENVIRONMENTS, help="render as this environment instead")
    parser.add_argument("--scope", choices=SCOPES, default="default", help="URL scope (default: default)")
    parser.add_argument(
        "--all-headers", action="store_true", help="print every security header, not only CSP"
    )


def csp(paths: list[str], environment: str | None, scope: str, all_headers: bool, stdout: TextIO) -> int:
    loaded = load_platforms(paths)
    for index, item in enumerate(loaded):
        headers = security_headers(item.platform, environment=environment)[scope]
        if len(loaded) > 1:
            if index:
                print(file=stdout)
            print(f"# {item.platform.name} ({item.location})", file=stdout)
        selected = headers if all_headers else {CSP_KEY: headers[CSP_KEY]}
        for name, value in selected.items():
            print(f"{name}: {value}", file=stdout)
    return 0


def run(args: argparse.Namespace) -> int:
    return csp(args.paths, args.environment, args.scope, args.all_headers, sys.stdout)
