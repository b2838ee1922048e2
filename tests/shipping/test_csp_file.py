"""ops/jitsi-csp-staging.txt is exactly what `callplatform csp` prints for the staging example."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from callplatform.cli import main

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "ops" / "jitsi-csp-staging.txt"
COMMAND = ["csp", "--environment", "staging", str(REPO / "examples" / "staging.yaml")]
REGENERATE = "callplatform csp --environment staging examples/staging.yaml > ops/jitsi-csp-staging.txt"


def generated() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(COMMAND)
    assert code == 0
    return out.getvalue()


def test_committed_staging_csp_is_what_the_command_prints() -> None:
    assert COMMITTED.read_text() == generated(), f"stale: regenerate with `{REGENERATE}`"


def test_staging_csp_pins_the_staging_hosts_and_forbids_framing() -> None:
    header = COMMITTED.read_text().strip()
    assert header.startswith("Content-Security-Policy: ")
    directives: dict[str, str] = {}
    for part in header.split(": ", 1)[1].split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "*" not in header.split()
    assert "https://meet.staging.example.com" in directives["frame-src"]
    assert "upgrade-insecure-requests" in directives
