"""The one path from manifests to findings, shared by `validate`, `csp` and `render`.

All three read the same inputs the same way, judge each CallPlatform with the rules engine as
the operator would (generated secrets stood in by strong random values), print the findings in
the same format and exit with the same code: 0 no error (warnings allowed unless --strict),
1 an error (or a warning with --strict), 2 input that cannot be read. `csp` and `render` print
their output only when nothing is refused, and put the findings on stderr.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from callplatform.commands.errors import UsageError
from callplatform.findings import Finding, count_by_severity
from callplatform.inputs import InputError, LoadedPlatform, load_manifests
from callplatform.model import Platform
from callplatform.render.secrets import (
    SecretValues,
    effective_secrets,
    missing_generated_keys,
    new_secret_value,
)
from callplatform.rules import check_platform


@dataclass(frozen=True, slots=True)
class Judged:
    """One CallPlatform as the operator would see it, and its findings."""

    loaded: LoadedPlatform
    platform: Platform  # with --namespace applied
    generated: dict[str, str]  # stand-ins for what the operator would generate
    findings: list[Finding]

    @property
    def values(self) -> SecretValues:
        return effective_secrets(self.platform, self.loaded.secrets, self.generated)


def add_judging_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    parser.add_argument(
        "--allow-missing-secrets",
        action="store_true",
        help="Secrets absent from the inputs (kept out of Git) are assumed to exist: no CP010 for them, "
        "and their values are not checked; Secrets that are in the inputs are checked as usual",
    )


def judge_manifests(
    paths: Sequence[str],
    environment: str | None,
    stdin: TextIO | None = None,
    *,
    allow_missing_secrets: bool = False,
    namespace: str = "",
) -> tuple[list[Judged], list[str]]:
    """Every CallPlatform in `paths`, judged; and notes on Secrets whose values were not checked."""
    try:
        loaded = load_manifests(paths, stdin)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not loaded:
        raise UsageError(f"{', '.join(paths)}: no CallPlatform (apiVersion callplatform.io/*) found")
    judged: list[Judged] = []
    notes: list[str] = []
    for item in loaded:
        platform = item.platform
        if namespace and not platform.namespace:
            platform = replace(platform, namespace=namespace)
        where = f"{item.platform.object_ref} ({item.location})"
        # Stand-ins for what the operator would generate: strong, so the rules judge them as it would.
        generated = {key: new_secret_value() for key in missing_generated_keys(platform, item.secrets, {})}
        values = effective_secrets(platform, item.secrets, generated)
        findings = check_platform(platform, values, environment, allow_missing_secrets=allow_missing_secrets)
        judged.append(Judged(item, platform, generated, [replace(f, object=where) for f in findings]))
        absent = sorted(platform.secret_names() - set(item.secrets))
        if allow_missing_secrets and absent:
            names = ", ".join(repr(name) for name in absent)
            notes.append(f"{where}: Secret(s) {names} not in the inputs; their values were not checked")
    return judged, notes


def exit_code(findings: Sequence[Finding], strict: bool) -> int:
    counts = count_by_severity(list(findings))
    return 1 if counts["errors"] or (strict and counts["warnings"]) else 0


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


def all_findings(judged: Sequence[Judged]) -> list[Finding]:
    return [finding for item in judged for finding in item.findings]


def refused(judged: Sequence[Judged], strict: bool, notes: Sequence[str], stderr: TextIO) -> int:
    """For `csp` and `render`: print notes and findings on stderr; the exit code `validate` gives."""
    for note in notes:
        print(f"note: {note}", file=stderr)
    findings = all_findings(judged)
    if findings:
        stderr.write(format_text(findings))
    return exit_code(findings, strict)
