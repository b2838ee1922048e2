"""`callplatform validate`: the production rules, offline, for CI pipelines.

Exit codes: 0 no error finding (warnings allowed unless --strict), 1 at least one
error (or warning with --strict), 2 usage errors and input that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from callplatform.commands.errors import UsageError
from callplatform.commands.judging import (
    add_judging_arguments,
    all_findings,
    exit_code,
    format_json,
    format_text,
    judge_manifests,
)
from callplatform.findings import Finding
from callplatform.inputs import InputError, load_env_file
from callplatform.model import ENVIRONMENTS
from callplatform.rules import check_env

__all__ = ["collect_findings", "format_json", "format_text", "validate"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="YAML file or directory of manifests (CallPlatforms and their Secrets); '-' reads stdin",
    )
    parser.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="dotenv file with the production checklist's variables (repeatable)",
    )
    parser.add_argument(
        "--environment",
        choices=ENVIRONMENTS,
        help="judge as this environment instead of spec.environment (env files default to production)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_judging_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return validate(
        paths=args.paths,
        env_files=args.env_file,
        environment=args.environment,
        output_format=args.format,
        strict=args.strict,
        stdout=sys.stdout,
        stdin=sys.stdin,
        allow_missing_secrets=args.allow_missing_secrets,
        stderr=sys.stderr,
    )


def validate(
    paths: Sequence[str],
    env_files: Sequence[str],
    environment: str | None,
    output_format: str,
    strict: bool,
    stdout: TextIO,
    stdin: TextIO | None = None,
    allow_missing_secrets: bool = False,
    stderr: TextIO | None = None,
) -> int:
    """Judge every input and print the findings; the exit code as documented above."""
    if not paths and not env_files:
        raise UsageError("give at least one PATH or --env-file FILE")
    if sum(1 for p in [*paths, *env_files] if p == "-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    findings, unchecked = collect_findings(paths, env_files, environment, stdin, allow_missing_secrets)
    for note in unchecked:
        print(f"note: {note}", file=stderr or sys.stderr)
    stdout.write(format_json(findings) if output_format == "json" else format_text(findings))
    return exit_code(findings, strict)


def collect_findings(
    paths: Sequence[str],
    env_files: Sequence[str],
    environment: str | None,
    stdin: TextIO | None = None,
    allow_missing_secrets: bool = False,
) -> tuple[list[Finding], list[str]]:
    """Findings for every input, and notes on Secrets whose values could not be checked."""
    findings: list[Finding] = []
    unchecked: list[str] = []
    if paths:
        judged, unchecked = judge_manifests(
            paths, environment, stdin, allow_missing_secrets=allow_missing_secrets
        )
        findings = all_findings(judged)
    try:
        for env_file in env_files:
            variables = load_env_file(env_file, stdin)
            source = "env file <stdin>" if env_file == "-" else f"env file {env_file}"
            findings.extend(check_env(variables, environment or "production", source))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return findings, unchecked
