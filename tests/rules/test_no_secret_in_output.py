"""No secret value ever appears in a finding or in `validate`'s output, in either format."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_fixtures import ROOT, set_path, valid_manifest

from callplatform.cli import main
from callplatform.model import parse_platform
from callplatform.rules import check_env, check_platform

WriteFile = Callable[[str, str], Path]

# Values that break a rule each (so every message path that mentions a secret runs), and are
# distinctive enough that finding one in the output can only mean it leaked.
DB_PASSWORD = "Hq4Vr8Zs2Wd6"
DB_URL = f"mysql://leakuser:{DB_PASSWORD}@leakhost.internal:99999/?sslmode=disable"
LEAKY_SECRETS = {
    "DATABASE_URL": DB_URL,  # CP005 (scheme, port, database), CP009
    "JITSI_JWT_SECRET": "Lk9Qz3Wx",  # CP001
    "TURN_USERNAME": "turnuser-Xv3Bn7",
    "TURN_PASSWORD": "keepthissecret",  # CP006
    "TURN_SHARED_SECRET": "Ss8Dd2Ff",  # CP006 (rest variant)
    "DEMO_USER_PASSWORD": "Pw5Yk1Jc9Rf3",  # CP004
}
SECRET_FRAGMENTS = [*LEAKY_SECRETS.values(), DB_PASSWORD, "leakuser", "leakhost"]


def leaky_files(write_file: WriteFile) -> list[Path]:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "calls-secrets"}}
    static = set_path(valid_manifest(), "metadata.namespace", None)
    rest = set_path(static, "spec.turn.credentials.mode", "rest")
    rest = set_path(rest, "metadata.name", "calls-rest")
    weak_db = {**LEAKY_SECRETS, "DATABASE_URL": f"postgresql://leakuser:{'Q' * 14}@leakhost/db"}
    reused = {**LEAKY_SECRETS, "JITSI_JWT_SECRET": DB_PASSWORD, "TURN_PASSWORD": DB_PASSWORD}  # CP016
    return [
        write_file("static.yaml", yaml.safe_dump_all([{**secret, "stringData": LEAKY_SECRETS}, static])),
        write_file("rest.yaml", yaml.safe_dump_all([{**secret, "stringData": LEAKY_SECRETS}, rest])),
        write_file(
            "weakdb/all.yaml",
            yaml.safe_dump_all(
                [{**secret, "stringData": weak_db}, set_path(static, "metadata.name", "weak-db")]
            ),
        ),
        write_file(
            "reused/all.yaml",
            yaml.safe_dump_all(
                [{**secret, "stringData": reused}, set_path(static, "metadata.name", "reused")]
            ),
        ),
    ]


def leaky_env(write_file: WriteFile) -> Path:
    lines = [f"{key}={value}" for key, value in LEAKY_SECRETS.items() if key != "TURN_SHARED_SECRET"]
    return write_file(
        "leaky.env", "\n".join([*lines, "JITSI_DOMAIN=meet.internal", "ALLOW_DEMO_SEED=true"]) + "\n"
    )


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_validate_output_holds_no_secret_value(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile, output_format: str
) -> None:
    files = [str(p) for p in leaky_files(write_file)]
    env_file = str(leaky_env(write_file))
    code = main(["validate", "--format", output_format, *files, "--env-file", env_file])
    out, err = capsys.readouterr()
    assert code == 1
    rules = {"CP001", "CP003", "CP004", "CP005", "CP006", "CP009", "CP016"}
    assert all(rule in out for rule in rules), out
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in out + err


def test_validate_error_messages_hold_no_secret_value(
    capsys: pytest.CaptureFixture[str], write_file: WriteFile
) -> None:
    secret_line = f"  TURN_PASSWORD: {LEAKY_SECRETS['TURN_PASSWORD']} {{\n"
    broken_yaml = write_file("broken.yaml", f"apiVersion: v1\nkind: Secret\nstringData:\n{secret_line}")
    broken_env = write_file("broken.env", f"TURN_PASSWORD='{LEAKY_SECRETS['TURN_PASSWORD']}\n")
    for argv in ([str(broken_yaml)], ["--env-file", str(broken_env)]):
        assert main(["validate", *argv]) == 2
        out, err = capsys.readouterr()
        assert LEAKY_SECRETS["TURN_PASSWORD"] not in out + err
        assert err


def test_console_script_output_holds_no_secret_value(write_file: WriteFile) -> None:
    script = Path(sys.executable).with_name("callplatform")
    files = [str(p) for p in leaky_files(write_file)]
    for output_format in ("text", "json"):
        result = subprocess.run(
            [str(script), "validate", "--format", output_format, *files],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 1
        for fragment in SECRET_FRAGMENTS:
            assert fragment not in result.stdout + result.stderr


SECRET_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=40
).map(lambda s: "LEAK" + s)
SECRET_KEYS = ("DATABASE_URL", "JITSI_JWT_SECRET", "TURN_USERNAME", "TURN_PASSWORD", "TURN_SHARED_SECRET")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.fixed_dictionaries({key: SECRET_TEXT for key in SECRET_KEYS}),
    db_password=SECRET_TEXT,
    mode=st.sampled_from(["static", "rest"]),
    environment=st.sampled_from(["production", "staging", "development"]),
)
def test_no_rule_copies_a_secret_into_a_message(
    values: dict[str, str], db_password: str, mode: str, environment: str
) -> None:
    values = {
        **values,
        "DATABASE_URL": f"postgresql://u:{db_password}@h/db",
        "DEMO_USER_PASSWORD": values["TURN_PASSWORD"],
    }
    manifest = set_path(valid_manifest(environment), "spec.turn.credentials.mode", mode)
    findings = check_platform(parse_platform(manifest), {"calls-secrets": values})
    findings += check_env(values, environment)
    for finding in findings:
        text = " ".join(finding.as_dict().values())
        for value in [*values.values(), db_password]:
            assert value not in text
