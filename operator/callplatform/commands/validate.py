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


def run(args: argparse.Namespace) -> int:
    return validate(
        paths=args.paths,
        env_files=args.env_file,
        environment=args.environment,
        output_format=args.format,
        strict=args.strict,
        stdout=sys.stdout,
        stdin=sys.stdin,
    )


def validate(
    paths: Sequence[str],
    env_files: Sequence[str],
    environment: str | None,
    output_format: str,
    strict: bool,
    stdout: TextIO,
    stdin: TextIO | None = None,
) -> int:
    """Judge every input and print the findings; the exit code as documented above."""
    if not paths and not env_files:
        raise UsageError("give at least one PATH or --env-file FILE")
    if sum(1 for p in [*paths, *env_files] if p == "-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    findings = collect_findings(paths, env_files, environment, stdin)
    stdout.write(format_json(findings) if output_format == "json" else format_text(findings))
    counts = count_by_severity(findings)
    return 1 if counts["errors"] or (strict and counts["warnings"]) else 0


def collect_findings(
    paths: Sequence[str], env_files: Sequence[str], environment: str | None, stdin: TextIO | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    try:
        if paths:
            loaded = load_manifests(paths, stdin)
            if not loaded:
                raise UsageError(f"{', '.join(paths)}: no CallPlatform (apiVersion callplatform.io/*) found")
            for item in loaded:
                where = f"{item.platform.object_ref} ({item.location})"
                findings.extend(
                    replace(f, object=where) for f in check_platform(item.platform, item.secrets, environment)
                )
        for env_file in env_files:
            variables = load_env_file(env_file, stdin)
            source = "env file <stdin>" if env_file == "-" else f"env file {env_file}"
            findings.extend(check_env(variables, environment or "production", source))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return findings


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
