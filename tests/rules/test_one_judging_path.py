"""`validate`, `csp` and `render` judge the same input the same way: same findings, messages and exit
codes (commands/judging.py), and `csp`/`render` print nothing when `validate` refuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from rules_fixtures import EXAMPLES, GOOD_SECRETS, set_path, valid_manifest

from callplatform.cli import main

WriteFile = Callable[[str, str], Path]
HOSTILE_HOSTS = [
    "meet.example.com 'unsafe-eval'",
    "*.example.com",
    "https://https://x",
    "meet.example.com\nX-Injected: 1",
    "meet.example.com;script-src *",
]


def secret_document(values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "calls-secrets", "namespace": "team-a"},
        "stringData": values,
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def findings_block(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("error", "warning")) or "error(s)" in line]


def write(write_file: WriteFile, manifest: dict[str, Any], values: dict[str, str] | None = None) -> str:
    text = yaml.safe_dump_all([secret_document(values or dict(GOOD_SECRETS)), manifest])
    return str(write_file("platform.yaml", text))


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_csp_refuses_a_hostile_public_host_as_validate_does(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile, host: str
) -> None:
    path = write(write_file, set_path(valid_manifest(), "spec.jitsi.publicHost", host))
    validate_code, validate_out, _ = run(capsys, "validate", path)
    csp_code, csp_out, csp_err = run(capsys, "csp", path)
    render_code, render_out, render_err = run(capsys, "render", path)
    assert validate_code == csp_code == render_code == 1
    assert csp_out == render_out == ""
    assert "CP007" in validate_out
    assert findings_block(validate_out) == findings_block(csp_err) == findings_block(render_err)


def test_csp_and_render_refuse_a_realm_injection_as_validate_does(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile
) -> None:
    realm = "turn.example.com\nallowed-peer-ip=10.0.0.0-10.255.255.255"
    path = write(write_file, set_path(valid_manifest(), "spec.turn.realm", realm))
    codes, blocks = [], []
    for command in ("validate", "csp", "render"):
        code, out, err = run(capsys, command, path)
        codes.append(code)
        blocks.append(findings_block(out if command == "validate" else err))
        if command != "validate":
            assert out == ""
    assert codes == [1, 1, 1]
    assert blocks[0] == blocks[1] == blocks[2]
    assert any("CP019" in line and "spec.turn.realm" in line for line in blocks[0])


@pytest.mark.parametrize("example", ["production.yaml", "staging.yaml", "broken.yaml"])
def test_the_examples_get_the_same_verdict_from_all_three(
    capsys: pytest.CaptureFixture[str], example: str
) -> None:
    path = str(EXAMPLES / example)
    validate_code, validate_out, _ = run(capsys, "validate", path)
    csp_code, _, csp_err = run(capsys, "csp", path)
    render_code, _, render_err = run(capsys, "render", path)
    assert validate_code == csp_code == render_code
    assert (
        findings_block(validate_out)[:-1] == findings_block(csp_err)[:-1] == findings_block(render_err)[:-1]
    )


def test_strict_and_missing_secrets_flags_mean_the_same_for_all_three(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile
) -> None:
    path = str(write_file("platform.yaml", yaml.safe_dump(valid_manifest())))  # no Secret in the input
    assert {run(capsys, c, path)[0] for c in ("validate", "csp", "render")} == {1}  # CP010
    relaxed = {run(capsys, c, "--allow-missing-secrets", path)[0] for c in ("validate", "csp", "render")}
    assert relaxed == {0}
    strict = set_path(valid_manifest(), "spec.calls.allowUnsafeInlineStyles", True)
    path = write(write_file, strict)
    assert {run(capsys, c, "--strict", path)[0] for c in ("validate", "csp", "render")} == {1}


def test_unreadable_input_is_exit_2_for_all_three(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    for command in ("validate", "csp", "render"):
        assert run(capsys, command, missing)[0] == 2
