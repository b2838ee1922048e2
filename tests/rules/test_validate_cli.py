"""`callplatform validate`: exit codes, both output formats, both input forms, and no tracebacks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rules_fixtures import EXAMPLES, ROOT

from callplatform.cli import main

WriteFile = Callable[[str, str], Path]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_production_example_passes_with_only_the_security_debt_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, str(EXAMPLES / "production.yaml"))
    assert code == 0
    assert "CP012" in out
    assert out.rstrip().endswith("0 error(s), 1 warning(s)")


def test_strict_fails_on_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run_cli(capsys, "--strict", str(EXAMPLES / "production.yaml"))
    assert code == 1


def test_staging_example_passes_as_staging_but_not_as_production(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, str(EXAMPLES / "staging.yaml"))[0] == 0
    code, out, _ = run_cli(capsys, "--environment", "production", str(EXAMPLES / "staging.yaml"))
    assert code == 1
    assert {"CP003", "CP014"} <= {line.split()[1] for line in out.splitlines()[:-1]}


def test_broken_example_fails_and_reports_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--format", "json", str(EXAMPLES / "broken.yaml"))
    assert code == 1
    document = json.loads(out)
    assert set(document) == {"findings", "summary"}
    rules = {f["rule"] for f in document["findings"]}
    assert {"CP001", "CP003", "CP004", "CP005", "CP006", "CP007", "CP008", "CP010", "CP011"} <= rules
    for finding in document["findings"]:
        assert set(finding) == {"rule", "severity", "object", "field", "message"}
        assert finding["object"].startswith("CallPlatform broken (")
    errors = sum(1 for f in document["findings"] if f["severity"] == "error")
    assert document["summary"] == {"errors": errors, "warnings": len(document["findings"]) - errors}


def test_a_directory_validates_every_platform(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--format", "json", str(EXAMPLES))
    objects = {f["object"].split(" (")[0] for f in json.loads(out)["findings"]}
    assert code == 1
    assert objects == {"CallPlatform broken", "CallPlatform production", "CallPlatform staging"}


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((EXAMPLES / "production.yaml").read_text()))
    code, out, _ = run_cli(capsys, "-")
    assert code == 0
    assert "(<stdin>:" in out


def test_env_files(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--environment", "production", "--env-file")
    assert run_cli(capsys, *args, str(EXAMPLES / "production.env"))[:2] == (
        0,
        "OK: no findings\n0 error(s), 0 warning(s)\n",
    )
    code, out, _ = run_cli(capsys, *args, str(EXAMPLES / "broken.env"))
    assert code == 1
    assert "error   CP011 env file " in out


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("a: [1\n", ".yaml", ":2: invalid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", ".yaml", "no CallPlatform"),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {K: '%%%'}\n",
            ".yaml",
            ":4: Secret data key 'K'",
        ),
        ("GOOD=1\nBAD='x\n", ".env", ":2: cannot parse this line"),
    ],
)
def test_unreadable_input_exits_2_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile, text: str, suffix: str, expected: str
) -> None:
    path = write_file(f"input{suffix}", text)
    args = ["--env-file", str(path)] if suffix == ".env" else [str(path)]
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith(f"callplatform validate: {path}")
    assert expected in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(capsys)[0] == 2
    assert run_cli(capsys, str(tmp_path / "nope.yaml"))[0] == 2
    assert run_cli(capsys, "-", "--env-file", "-")[0] == 2
    with pytest.raises(SystemExit) as raised:
        main(["validate", "--environment", "prod", str(EXAMPLES)])
    assert raised.value.code == 2


def test_console_script_never_prints_a_traceback(write_file: WriteFile) -> None:
    bad = write_file("bad.yaml", "spec: {jitsi: [\n")
    script = Path(sys.executable).with_name("callplatform")
    cases = [[str(bad)], [str(bad.parent / "missing")], ["--env-file", str(write_file("x.env", "'oops\n"))]]
    for argv in cases:
        result = subprocess.run(
            [str(script), "validate", *argv], capture_output=True, text=True, cwd=ROOT, check=False
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1


ENTRY_POINTS = {
    "console script": [str(Path(sys.executable).with_name("callplatform"))],
    "python -m callplatform.cli": [sys.executable, "-m", "callplatform.cli"],
}


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("command", ["validate", "csp", "render"])
def test_input_errors_exit_2_without_a_traceback_through_every_entry_point(
    write_file: WriteFile, entry_point: str, command: str
) -> None:
    """Each entry point runs main() from its own module object; the error type must be the same."""
    duplicate = write_file("dup.yaml", "kind: CallPlatform\nkind: Secret\n")
    cases: list[tuple[list[str], bytes, str]] = [
        ([str(duplicate.parent / "missing.yaml")], b"", "missing.yaml: cannot be read"),
        ([str(duplicate)], b"", ":2: duplicate mapping key (first at line 1)"),
        (["-"], b"kind: \xff\n", "<stdin>:1: is not UTF-8 text"),
    ]
    for argv, stdin, expected in cases:
        result = subprocess.run(
            [*ENTRY_POINTS[entry_point], command, *argv],
            input=stdin,
            capture_output=True,
            cwd=ROOT,
            check=False,
        )
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert result.stdout == b""
        assert stderr.startswith(f"callplatform {command}: ") and expected in stderr
        assert "Traceback" not in stderr and stderr.count("\n") == 1


def test_allow_missing_secrets_checks_the_spec_and_the_secrets_present(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile
) -> None:
    """For pipelines that keep Secrets out of Git: no CP010 for absent Secrets, a note on stderr."""
    text = (EXAMPLES / "production.yaml").read_text().split("---\n", 1)[1]  # the CallPlatform alone
    path = write_file("platform.yaml", text)
    code, out, _ = run_cli(capsys, str(path))
    assert code == 1
    assert "CP010" in out

    code, out, err = run_cli(capsys, "--allow-missing-secrets", str(path))
    assert code == 0
    assert "CP010" not in out
    assert "note: CallPlatform production" in err and "'calls-secrets' not in the inputs" in err

    broken = write_file(
        "broken.yaml", text.replace("publicHost: meet.example.com", "publicHost: meet.example.com:443")
    )
    code, out, _ = run_cli(capsys, "--allow-missing-secrets", str(broken))
    assert code == 1
    assert "CP007" in out


def test_allow_missing_secrets_still_checks_secrets_that_are_present(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "--allow-missing-secrets", str(EXAMPLES / "broken.yaml"))
    assert code == 1
    assert {"CP001", "CP004", "CP010"} <= {line.split()[1] for line in out.splitlines()[:-1]}
    assert err == ""


@pytest.mark.parametrize(
    ("key", "injected"),
    [
        ("TURN_PASSWORD", "placeholder-turn-Xb7Qm2Rk9Vw4Ny6T\\nallowed-peer-ip=10.0.0.0-10.255.255.255"),
        ("TURN_PASSWORD", "placeholder-turn-Xb7Qm2Rk9Vw4Ny6T\\n"),  # kubectl create secret --from-file
        ("TURN_USERNAME", "calls\\r\\nno-auth"),
        ("TURN_USERNAME", "calls:admin"),
    ],
)
def test_a_turn_credential_that_would_inject_config_lines_fails_without_being_quoted(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile, key: str, injected: str
) -> None:
    text = (EXAMPLES / "production.yaml").read_text(encoding="utf-8")
    original = {"TURN_PASSWORD": "placeholder-turn-Xb7Qm2Rk9Vw4Ny6T", "TURN_USERNAME": "calls"}[key]
    line = f'  {key}: "{original}"'
    assert line in text
    path = write_file("injected.yaml", text.replace(line, f'  {key}: "{injected}"'))
    for output_format in ("text", "json"):
        code, out, err = run_cli(capsys, "--format", output_format, str(path))
        assert code == 1
        assert "CP017" in out
        for fragment in ("Xb7Qm2Rk9Vw4Ny6T", "allowed-peer-ip=10", "no-auth", "calls:admin"):
            assert fragment not in out + err
    # `callplatform render` refuses it too: findings on stderr, no objects, exit 1.
    code = main(["render", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "CP017" in err
    assert "turnserver" not in out
    for fragment in ("Xb7Qm2Rk9Vw4Ny6T", "allowed-peer-ip=10", "no-auth", "calls:admin"):
        assert fragment not in out + err
