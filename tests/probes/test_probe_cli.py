"""`callplatform probe` against real coturn and prosody, explicit targets and manifests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from callplatform.cli import main
from callplatform.commands.probe import parse_turn_url

from .platforms import platform_manifest
from .servers import (
    SHARED_SECRET,
    STATIC_PASSWORD,
    STATIC_USER,
    Coturn,
    Prosody,
    free_port,
    running_coturn,
    running_health_server,
    running_prosody,
)


@pytest.fixture(scope="module")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    with running_prosody(tmp_path_factory.mktemp("prosody-cli")) as server:
        yield server


def write(path: Path, text: str) -> str:
    path.write_text(text + "\n")
    return str(path)


@pytest.mark.coturn
def test_explicit_turn_targets_with_static_credentials(
    coturn_static: Coturn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password_file = write(tmp_path / "password", STATIC_PASSWORD)
    code = main([
        "probe", "--turn", f"turn:127.0.0.1:{coturn_static.port}",
        "--turn", f"turn:127.0.0.1:{coturn_static.port}?transport=tcp",
        "--turn", f"turns:127.0.0.1:{coturn_static.tls_port}", "--ca-file", str(coturn_static.tls.cert),
        "--turn-user", STATIC_USER, "--turn-password-file", password_file,
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "6 of 6 probes succeeded" in out
    assert out.count("allocate") == 3
    assert STATIC_PASSWORD not in out


@pytest.mark.coturn
def test_rest_secret_file_and_json(
    coturn_rest: Coturn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = write(tmp_path / "secret", SHARED_SECRET)
    code = main(["probe", "--turn", f"turn:127.0.0.1:{coturn_rest.port}", "--turn-secret-file", secret_file,
                 "--format", "json"])  # fmt: skip
    out = capsys.readouterr().out
    body = json.loads(out)
    assert code == 0 and body["healthy"] is True
    assert [(r["probe"], r["success"]) for r in body["results"]] == [("udp", True), ("allocate", True)]
    assert SHARED_SECRET not in out


@pytest.mark.coturn
def test_wrong_password_exits_1(
    coturn_static: Coturn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password_file = write(tmp_path / "password", "wrong-password-here")
    code = main(["probe", "--turn", f"turn:127.0.0.1:{coturn_static.port}", "--turn-user", STATIC_USER,
                 "--turn-password-file", password_file, "--format", "json"])  # fmt: skip
    body = json.loads(capsys.readouterr().out)
    assert code == 1 and body["healthy"] is False
    assert [r["reason"] for r in body["results"]] == ["", "auth_failed"]


@pytest.mark.coturn
@pytest.mark.prosody
def test_manifest_with_secrets(
    coturn_static: Coturn, prosody: Prosody, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_health_server() as base:
        manifest = platform_manifest(
            turn_port=coturn_static.port, tls_port=coturn_static.tls_port,
            probes={"webURL": f"{base}/", "boshURL": prosody.bosh_url,
                    "jvbHealthURL": f"{base}/about/health", "jicofoHealthURL": f"{base}/about/health"},
        )  # fmt: skip
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "calls-secrets", "namespace": "calls"},
            "stringData": {
                "TURN_USERNAME": STATIC_USER,
                "TURN_PASSWORD": STATIC_PASSWORD,
                "JITSI_JWT_SECRET": "x" * 40,
            },
        }
        path = write(tmp_path / "platform.yaml", yaml.safe_dump_all([secret, manifest]))
        code = main(["probe", path, "--ca-file", str(coturn_static.tls.cert)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "8 of 8 probes succeeded" in out
    assert "calls/probed" in out
    assert STATIC_PASSWORD not in out


def test_production_weak_jwt_secret_fails_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    manifest = platform_manifest(
        environment="production", turn_port=free_port(), tls_port=0,
        probes={"webURL": closed, "boshURL": closed, "jvbHealthURL": closed, "jicofoHealthURL": closed},
    )  # fmt: skip
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "calls-secrets"},
              "stringData": {"TURN_USERNAME": "u", "TURN_PASSWORD": "p" * 20, "JITSI_JWT_SECRET": "tiny-secret"}}  # fmt: skip
    path = write(tmp_path / "weak.yaml", yaml.safe_dump_all([secret, manifest]))
    code = main(["probe", path, "--timeout", "1", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1
    reasons = {(r["probe"], r["reason"]) for r in json.loads(out)["results"]}
    assert ("jwt", "weak_secret") in reasons
    assert "tiny-secret" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["probe"],
        ["probe", "--turn", "stun:127.0.0.1"],
        ["probe", "--turn", "turns:127.0.0.1?transport=udp"],
        ["probe", "--turn", "turn:127.0.0.1:3478", "--turn-user", "u"],
        [
            "probe",
            "--turn",
            "turn:127.0.0.1:3478",
            "--turn-user",
            "u",
            "--turn-password-file",
            "/nonexistent/pw",
        ],
        ["probe", "--jitsi", "meet.example.org"],
        ["probe", "/nonexistent/manifest.yaml"],
        ["probe", "--turn-secret-file", "/etc/hostname"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("callplatform probe: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("turn:turn.example.org", ("turn.example.org", 3478, "udp")),
        ("turn:turn.example.org:3479?transport=tcp", ("turn.example.org", 3479, "tcp")),
        ("turn:10.0.0.7:3478?transport=udp", ("10.0.0.7", 3478, "udp")),
        ("turns:turn.example.org", ("turn.example.org", 5349, "tls")),
        ("turns:turn.example.org:443", ("turn.example.org", 443, "tls")),
        ("turn:[::1]:3478", ("::1", 3478, "udp")),
    ],
)
def test_turn_urls(url: str, expected: tuple[str, int, str]) -> None:
    endpoint = parse_turn_url(url)
    assert (endpoint.host, endpoint.port, endpoint.transport) == expected
    assert parse_turn_url(endpoint.describe()) == endpoint


@pytest.mark.coturn
def test_turn_acl_names_the_internal_peers_a_server_relays_to(
    coturn_static: Coturn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The test coturn has no deny list: it refuses loopback (its default) but relays to 10.0.0.1 and friends."""
    password_file = write(tmp_path / "password", STATIC_PASSWORD)
    code = main([
        "probe", "--turn", f"turn:127.0.0.1:{coturn_static.port}", "--turn-acl", "--format", "json",
        "--turn-user", STATIC_USER, "--turn-password-file", password_file,
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    (acl,) = [r for r in json.loads(out)["results"] if r["probe"] == "acl"]
    assert (acl["component"], acl["success"], acl["reason"]) == ("coturn_acl", False, "internal_peer_allowed")
    accepted = acl["message"].split(";")[0]
    assert "10.0.0.1" in accepted and "169.254.169.254" in accepted
    assert "127.0.0.1" not in accepted.replace("::ffff:127.0.0.1", "")
    assert STATIC_PASSWORD not in out


def test_turn_acl_without_credentials_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--turn", "turn:127.0.0.1:3478", "--turn-acl"]) == 2
    assert "--turn-acl needs TURN credentials" in capsys.readouterr().err


@pytest.mark.coturn
def test_turn_relay_reports_round_trip_and_loss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    password_file = write(tmp_path / "password", STATIC_PASSWORD)
    with running_coturn(tmp_path / "coturn", "static", loopback_peers=True) as coturn:
        code = main([
            "probe", "--turn", f"turn:127.0.0.1:{coturn.port}", "--turn-relay", "--format", "json",
            "--turn-user", STATIC_USER, "--turn-password-file", password_file,
        ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    (relay,) = [r for r in json.loads(out)["results"] if r["probe"] == "relay"]
    assert (relay["component"], relay["success"]) == ("coturn", True), relay
    assert relay["facts"]["loss_ratio"] == 0.0 and relay["facts"]["rtt_p50_seconds"] > 0
    assert "5 of 5 packets relayed and echoed" in relay["message"]
    assert STATIC_PASSWORD not in out


@pytest.mark.coturn
def test_turn_relay_refused_exits_1_naming_the_address(
    coturn_static: Coturn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """coturn's default refuses loopback peers, and its relay address here is 127.0.0.1."""
    password_file = write(tmp_path / "password", STATIC_PASSWORD)
    code = main([
        "probe", "--turn", f"turn:127.0.0.1:{coturn_static.port}", "--turn-relay",
        "--turn-user", STATIC_USER, "--turn-password-file", password_file,
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    (line,) = [row for row in out.splitlines() if "  relay  " in row]
    assert "FAIL" in line and "forbidden" in line and "relayed address 127.0.0.1 (403" in line


def test_turn_relay_without_credentials_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--turn", "turn:127.0.0.1:3478", "--turn-relay"]) == 2
    assert "--turn-relay needs TURN credentials (explicit has no UDP Allocate" in capsys.readouterr().err
