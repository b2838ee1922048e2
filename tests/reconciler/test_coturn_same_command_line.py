"""Proof that the managed coturn pod would run: the rendered container's command, args and mounts,
executed with Debian's `turnserver` against the same files (each mount path mapped into a temp
dir), then probed with the project's own probes (Binding on UDP, TCP and TLS, and Allocate)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reconciler_coturn import free_port, require_coturn, stop_process, wait_for_tcp
from reconciler_managed_coturn import managed_manifest
from reconciler_platforms import STRONG_SECRETS

from callplatform.model import parse_platform
from callplatform.probes.credentials import StaticAuth
from callplatform.probes.tls import TlsOptions
from callplatform.probes.turn import TurnEndpoint, probe_allocate, probe_binding
from callplatform.probes.turn_acl import INTERNAL_PEERS, probe_turn_acl
from callplatform.probes.turn_relay import probe_turn_relay
from callplatform.render import render_platform
from probes.servers import make_self_signed  # tests/ is on sys.path (its conftest)

pytestmark = pytest.mark.coturn

# The pod listens on every interface; on a test machine only loopback may be used. These are the
# only arguments added to the rendered command line.
# Loopback only; the IPv6 loopback relay lets the ACL probe ask the IPv6 internal peers too.
LOOPBACK_ONLY = ["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--relay-ip", "::1"]


def _files_of(volume: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """path inside the volume -> content, as the kubelet would project it."""
    if "emptyDir" in volume:
        return {}
    source = volume["secret"]
    data = secrets[source["secretName"]]
    return {item["path"]: data[item["key"]] for item in source["items"]}


def _materialize(pod: dict[str, Any], secrets: dict[str, dict[str, str]], root: Path) -> dict[str, str]:
    """Write every mount under `root`; returns mount path -> host path."""
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mapping = {}
    for mount in pod["containers"][0]["volumeMounts"]:
        host = root / mount["mountPath"].lstrip("/")
        host.mkdir(parents=True, exist_ok=True)
        for relative, content in _files_of(volumes[mount["name"]], secrets).items():
            (host / relative).write_text(content)
        if mount.get("readOnly"):
            host.chmod(0o555)
        mapping[mount["mountPath"]] = str(host)
    return mapping


def _mapped(arg: str, mapping: dict[str, str]) -> str:
    for mount_path, host_path in sorted(mapping.items(), key=lambda item: -len(item[0])):
        if arg == mount_path or arg.startswith(f"{mount_path}/"):
            return host_path + arg[len(mount_path) :]
    return arg


def _wait_for_udp(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """coturn binds its UDP listeners after the TCP ones: until a Binding over UDP is answered."""
    deadline = time.monotonic() + timeout
    endpoint = TurnEndpoint("127.0.0.1", port, "udp")
    while not asyncio.run(probe_binding(endpoint, timeout=1.0)).success:
        assert process.poll() is None, "turnserver exited"
        assert time.monotonic() < deadline, f"no UDP Binding answer on {port} within {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def rendered_coturn(tmp_path: Path) -> Iterator[tuple[int, int, str]]:
    require_coturn()
    pki = make_self_signed(tmp_path / "pki")
    cert, key = pki.cert.read_text(), pki.key.read_text()
    port, tls_port, relay = free_port(), free_port(), free_port()
    manifest = managed_manifest(environment="development")
    manifest["metadata"]["namespace"] = "calls"
    manifest["metadata"]["uid"] = "uid-1"
    turn = manifest["spec"]["turn"]
    turn.update(port=port, tlsPort=tls_port)
    turn["relay"] = {"allowedPeerCIDRs": [], "minPort": relay, "maxPort": relay + 20}
    platform = parse_platform(manifest)
    secrets = {"calls-secrets": dict(STRONG_SECRETS)}
    tls = {"tls.crt": cert, "tls.key": key}
    desired = render_platform(platform, secrets, turn_tls=tls)
    assert desired.coturn is not None
    conf_secret = desired.turn_config_secret
    mounted = {
        conf_secret["metadata"]["name"]: {
            k: base64.b64decode(v).decode() for k, v in conf_secret["data"].items()
        },
        platform.turn.tls_secret_name: tls,
    }
    pod = desired.coturn.workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mapping = _materialize(pod, mounted, tmp_path / "root")
    command = [_mapped(arg, mapping) for arg in [*container["command"], *container["args"]]]
    assert command[0] == "turnserver"
    log_path = tmp_path / "turnserver.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([*command, *LOOPBACK_ONLY], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for_tcp(port, process, log_path, "turnserver")
        wait_for_tcp(tls_port, process, log_path, "turnserver (TLS)")
        _wait_for_udp(port, process)
        yield port, tls_port, str(pki.cert)
    finally:
        stop_process(process)
    log = log_path.read_text(errors="replace")
    assert "Bad configuration format" not in log
    assert "CONFIG ERROR" not in log
    assert "cannot find" not in log.lower()  # the certificate and key were found where mounted


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_binding_on_the_rendered_command_line(
    rendered_coturn: tuple[int, int, str], transport: str
) -> None:
    port, tls_port, ca_file = rendered_coturn
    endpoint = TurnEndpoint(
        "127.0.0.1", tls_port if transport == "tls" else port, transport, server_name="localhost"
    )
    result = await probe_binding(endpoint, tls=TlsOptions(ca_file=ca_file))
    assert result.success, result


async def test_allocate_on_the_rendered_command_line(rendered_coturn: tuple[int, int, str]) -> None:
    port, _, _ = rendered_coturn
    auth = StaticAuth(STRONG_SECRETS["TURN_USERNAME"], STRONG_SECRETS["TURN_PASSWORD"])
    result = await probe_allocate(TurnEndpoint("127.0.0.1", port, "udp"), auth)
    assert result.success, result
    wrong = await probe_allocate(
        TurnEndpoint("127.0.0.1", port, "udp"), StaticAuth("calls", "not-the-password-1234")
    )
    assert not wrong.success  # control: the server really checks the rendered credentials


async def test_acl_probe_finds_every_internal_peer_refused_on_the_rendered_command_line(
    rendered_coturn: tuple[int, int, str],
) -> None:
    port, _, _ = rendered_coturn
    auth = StaticAuth(STRONG_SECRETS["TURN_USERNAME"], STRONG_SECRETS["TURN_PASSWORD"])
    result = await probe_turn_acl(TurnEndpoint("127.0.0.1", port, "udp"), auth)
    assert result.success, result
    # Every internal address, the IPv6 ones included (asked on the ::1 relay), got 403.
    assert result.message == f"{len(INTERNAL_PEERS)} internal peers refused", result.message


async def test_relay_probe_on_the_rendered_command_line_is_refused_its_loopback_relay(
    rendered_coturn: tuple[int, int, str],
) -> None:
    """The rendered deny list stops the data path too: the relay here is 127.0.0.1, so the two
    allocations may not reach each other (in a cluster the relayed address is a public one)."""
    port, _, _ = rendered_coturn
    auth = StaticAuth(STRONG_SECRETS["TURN_USERNAME"], STRONG_SECRETS["TURN_PASSWORD"])
    result = await probe_turn_relay(TurnEndpoint("127.0.0.1", port, "udp"), auth)
    assert (result.success, result.reason) == (False, "forbidden"), result
    assert "its own relayed address 127.0.0.1 (403" in result.message
