"""`callplatform validate`: the production rules, offline, for CI pipelines.

Exit codes: 0 no error finding (warnings allowed unless --strict), 1 at least one
error (or warning with --strict), 2 usage errors and input that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from callplatform.cli import UsageError
from callplatform.findings import Finding, count_by_severity
from callplatform.inputs import InputError, load_env_file, load_manifests
from callplatform.model import ENVIRONMENTS
from callplatform.rules import check_env, check_platform


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
    parser.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    parser.add_argument(
        "--allow-missing-secrets",
        action="store_true",
        help="Secrets absent from the inputs (kept out of Git) are assumed to exist: no CP010 for them, "
        "and their values are not checked; Secrets that are in the inputs are checked as usual",
    )


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
    counts = count_by_severity(findings)
    return 1 if counts["errors"] or (strict and counts["warnings"]) else 0


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
    try:
        if paths:
            loaded = load_manifests(paths, stdin)
            if not loaded:
                raise UsageError(f"{', '.join(paths)}: no CallPlatform (apiVersion callplatform.io/*) found")
            for item in loaded:
                where = f"{item.platform.object_ref} ({item.location})"
                judged = check_platform(
                    item.platform, item.secrets, environment, allow_missing_secrets=allow_missing_secrets
                )
                findings.extend(replace(f, object=where) for f in judged)
                absent = sorted(item.platform.secret_names() - set(item.secrets))
                if allow_missing_secrets and absent:
                    names = ", ".join(repr(name) for name in absent)
                    unchecked.append(
                        f"{where}: Secret(s) {names} not in the inputs; their values were not checked"
                    )
        for env_file in env_files:
            variables = load_env_file(env_file, stdin)
            source = "env file <stdin>" if env_file == "-" else f"env file {env_file}"
            findings.extend(check_env(variables, environment or "production", source))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return findings, unchecked


def format_text(findings: Sequence[Finding]) -> str:
    lines = [f"{f.severity:<7} {f.rule} {f.object} {f.field}: {f.message}" for f in findings]
    counts = count_by_severity(list(findings))
    if not findings:
        lines.append("OK: no findings")
    lines.append(f"{counts['errors']} error(s), {counts['warnings']} warning(s)")
    return "\n".join(lines) + "\n"


def format_json(findings: Sequence[Finding]) -> str:
    document = {
        "findings": [f.as_dict() for f in findings],
        "summary": count_by_severity(list(findings)),
    }
    return json.dumps(document, indent=2) + "\n"
