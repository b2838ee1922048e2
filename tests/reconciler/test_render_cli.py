"""`callplatform render` and `callplatform csp`, run as the console script."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import yaml
from reconciler_managed_coturn import managed_manifest, tls_secret_manifest
from reconciler_platforms import STRONG_SECRETS, WEAK_JWT_SECRET, platform_manifest, secret_manifest

from callplatform.inputs import load_manifests
from callplatform.render import render_platform
from callplatform.render.turnserver import DENIED_PEER_NETWORKS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CLI = [str(Path(sys.executable).parent / "callplatform")]


def _write(tmp_path: Path, *documents: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_render_prints_every_object_and_no_secret_value(tmp_path: Path) -> None:
    path = _write(tmp_path, secret_manifest(STRONG_SECRETS), platform_manifest())
    result = _run("render", "--namespace", "calls", str(path))
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == [
        ("ConfigMap", "calls-security-headers"),
        ("Deployment", "calls-calls"),
        ("Job", kinds[2][1]),
        ("Secret", "calls-ice-servers"),
        ("Secret", "calls-turn"),
        ("Service", "calls-calls"),
    ]
    assert kinds[2][1].startswith("calls-migrate-")
    assert all(o["metadata"]["namespace"] == "calls" for o in objects)
    for value in STRONG_SECRETS.values():
        if value != "calls":
            assert value not in result.stdout + result.stderr
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    assert "data" not in secrets["calls-turn"] and "data" not in secrets["calls-ice-servers"]
    conf = secrets["calls-turn"]["stringData"]["turnserver.conf"]
    assert "user=<redacted>\n" in conf
    ice = json.loads(secrets["calls-ice-servers"]["stringData"]["iceServers.json"])
    assert ice[1]["username"] == ice[1]["credential"] == "<redacted>"


def test_render_of_the_production_example_shows_the_config_but_no_credential() -> None:
    """A GitOps reviewer sees the deny list, realm, ports and quotas; never a credential value."""
    example = EXAMPLES / "production.yaml"
    result = _run("render", str(example))
    assert result.returncode == 0, result.stderr
    secrets = {o["metadata"]["name"]: o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Secret"}
    conf = secrets["production-turn"]["stringData"]["turnserver.conf"].splitlines()
    for line in (
        "realm=turn.example.com",
        "listening-port=3478",
        "tls-listening-port=5349",
        "min-port=49152",
        "max-port=65535",
        "user-quota=12",
        "total-quota=1200",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=::ffff:0:0-::ffff:ffff:ffff",
        "user=<redacted>",
    ):
        assert line in conf
    assert sum(1 for line in conf if line.startswith("denied-peer-ip=")) == len(DENIED_PEER_NETWORKS)
    ice = secrets["production-ice-servers"]["stringData"]["iceServers.json"]
    assert "turn:turn.example.com:3478?transport=udp" in ice
    stored = next(d for d in yaml.safe_load_all(example.read_text()) if d["kind"] == "Secret")
    for value in stored["stringData"].values():
        if value != "calls":  # the username is also the database user name in the URL
            assert value not in result.stdout + result.stderr
    assert "placeholder-turn-Xb7Qm2Rk9Vw4Ny6T" not in result.stdout


def test_the_operator_applies_the_turn_secret_unredacted() -> None:
    [loaded] = load_manifests([str(EXAMPLES / "production.yaml")])
    turn = render_platform(loaded.platform, loaded.secrets).turn_config_secret
    conf = base64.b64decode(turn["data"]["turnserver.conf"]).decode()
    assert "user=calls:placeholder-turn-Xb7Qm2Rk9Vw4Ny6T\n" in conf


def test_render_with_a_rule_error_prints_nothing_and_fails(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        secret_manifest({**STRONG_SECRETS, "JITSI_JWT_SECRET": WEAK_JWT_SECRET}),
        platform_manifest(),
    )
    result = _run("render", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "spec.jitsi.jwt" in result.stderr
    assert WEAK_JWT_SECRET not in result.stderr


def test_render_marks_generated_secrets(tmp_path: Path) -> None:
    values = {k: v for k, v in STRONG_SECRETS.items() if k != "JITSI_JWT_SECRET"}
    platform = platform_manifest()
    platform["spec"]["jitsi"]["jwt"]["generate"] = True
    result = _run("render", str(_write(tmp_path, secret_manifest(values), platform)))
    assert result.returncode == 0, result.stderr
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)}
    generated = objects[("Secret", "calls-generated")]
    assert generated["data"] == {"JITSI_JWT_SECRET": "<generated by the operator>"}
    env = objects[("Deployment", "calls-calls")]["spec"]["template"]["spec"]["containers"][0]["env"]
    jwt = next(e for e in env if e["name"] == "JITSI_JWT_SECRET")
    assert jwt["valueFrom"]["secretKeyRef"]["name"] == "calls-generated"


def test_render_unreadable_input_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("render", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_csp_prints_the_header(tmp_path: Path) -> None:
    path = _write(tmp_path, secret_manifest(STRONG_SECRETS), platform_manifest())
    result = _run("csp", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Content-Security-Policy: default-src 'self';")
    assert "frame-ancestors 'none'" in result.stdout
    chat = _run("csp", "--scope", "/chat", str(path))
    assert "frame-ancestors 'self'" in chat.stdout
    development = _run("csp", "--environment", "development", str(path))
    assert "upgrade-insecure-requests" not in development.stdout
    assert "upgrade-insecure-requests" in result.stdout


def test_render_shows_a_managed_coturn_without_its_tls_key(tmp_path: Path) -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIEsecret\n"
    manifest = managed_manifest(environment="staging")
    manifest["spec"]["jitsi"]["jwt"]["generate"] = True  # the calls Deployment gets the placeholder
    path = _write(tmp_path, secret_manifest(STRONG_SECRETS), tls_secret_manifest("cert", key), manifest)
    result = _run("render", "--namespace", "calls", str(path))
    assert result.returncode == 0, result.stderr
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)}
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        assert (kind, "calls-coturn") in objects, kind
    annotations = objects[("Deployment", "calls-coturn")]["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["callplatform.io/turn-checksum"]  # not the calls placeholder
    assert "MIIEsecret" not in result.stdout + result.stderr
