"""`callplatform csp FILE`: the Content-Security-Policy the operator serves, for each platform.

The same function renders the security-headers ConfigMap, so this is exactly
the header the app and ingress get. The input is judged exactly as `callplatform validate`
judges it: with an error finding, nothing is printed and the exit code is validate's.
`--scope` picks the URL scope (`default`,
`/call` with camera and microphone, `/chat` which may be framed SAMEORIGIN).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from callplatform.commands.judging import add_judging_arguments, judge_manifests, refused
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
    add_judging_arguments(parser)


def csp(
    paths: list[str],
    environment: str | None,
    scope: str,
    all_headers: bool,
    stdout: TextIO,
    stderr: TextIO | None = None,
    *,
    strict: bool = False,
    allow_missing_secrets: bool = False,
    stdin: TextIO | None = None,
) -> int:
    """The headers, judged first exactly as `validate` judges (commands/judging.py)."""
    judged, notes = judge_manifests(
        paths, environment, stdin or sys.stdin, allow_missing_secrets=allow_missing_secrets
    )
    code = refused(judged, strict, notes, stderr or sys.stderr)
    if code:
        return code
    for index, item in enumerate(judged):
        headers = security_headers(item.platform, environment=environment)[scope]
        if len(judged) > 1:
            if index:
                print(file=stdout)
            print(f"# {item.platform.name} ({item.loaded.location})", file=stdout)
        selected = headers if all_headers else {CSP_KEY: headers[CSP_KEY]}
        for name, value in selected.items():
            print(f"{name}: {value}", file=stdout)
    return 0


def run(args: argparse.Namespace) -> int:
    return csp(
        args.paths,
        args.environment,
        args.scope,
        args.all_headers,
        sys.stdout,
        sys.stderr,
        strict=args.strict,
        allow_missing_secrets=args.allow_missing_secrets,
    )
