"""Real servers for the probe tests, on free loopback ports: coturn, prosody, HTTP(S) stubs.

Each starts in a context manager that always tears it down.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_coturn import free_port, stop_process, wait_for_tcp  # shared with the reconciler tests

REALM = "probe.test"
STATIC_USER = "probeuser"
STATIC_PASSWORD = "probe-password-0123456789"
SHARED_SECRET = "shared-secret-for-rest-credentials-0123"


def free_port_range(size: int) -> tuple[int, int]:
    """`size` consecutive ports that are free right now (best effort), for coturn's relays."""
    for _ in range(200):
        start = free_port()
        if start + size > 65000:
            continue
        ok = True
        for port in range(start, start + size):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return start, start + size - 1
    raise RuntimeError("no free port range")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    not_after: datetime.datetime


def make_self_signed(directory: Path, name: str = "localhost", days: float = 30) -> TlsFiles:
    """A self-signed certificate for `name` and 127.0.0.1, valid for `days`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=days)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}-{int(days)}.crt", directory / f"{name}-{int(days)}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return TlsFiles(cert_path, key_path, not_after.replace(microsecond=0))


def require(binary: str, package: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} not installed (apt-get install {package})")


def _read_until(sock: socket.socket, marker: bytes, timeout: float = 5) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r} from coturn's CLI")
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@dataclass
class Coturn:
    port: int
    tls_port: int
    cli_port: int
    log_path: Path
    tls: TlsFiles
    mode: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, command: str) -> str:
        """Run one command on coturn's own telnet CLI and return its output."""
        with socket.create_connection(("127.0.0.1", self.cli_port), timeout=5) as sock:
            _read_until(sock, b"Enter password:")
            sock.sendall(b"probe-cli\n")
            _read_until(sock, b"> ")
            sock.sendall(command.encode() + b"\n")
            return _read_until(sock, b"> ").decode(errors="replace")

    def total_sessions(self) -> int:
        import re

        match = re.search(r"Total sessions:\s*(\d+)", self.cli("ps"))
        if match is None:
            raise AssertionError("coturn's CLI did not report a session count")
        return int(match.group(1))


def coturn_config(
    mode: str,
    port: int,
    tls_port: int,
    cli_port: int,
    relay: tuple[int, int],
    tls: TlsFiles,
    workdir: Path,
    *,
    user: tuple[str, str] = (STATIC_USER, STATIC_PASSWORD),
    realm: str = REALM,
    loopback_peers: bool = False,
) -> str:
    """A test coturn on loopback. `loopback_peers` lets it relay to 127.0.0.1 (its relay address, so
    the relay probe's two allocations can reach each other); it has no deny list either way."""
    loopback = "allow-loopback-peers\n" if loopback_peers else ""
    auth = (
        f"use-auth-secret\nstatic-auth-secret={SHARED_SECRET}\n"
        if mode == "rest"
        else f"lt-cred-mech\nuser={user[0]}:{user[1]}\n"
    )
    return (
        "listening-ip=127.0.0.1\n"
        "relay-ip=127.0.0.1\n"
        f"listening-port={port}\n"
        f"tls-listening-port={tls_port}\n"
        f"min-port={relay[0]}\nmax-port={relay[1]}\n"
        f"realm={realm}\n"
        "fingerprint\n"
        f"{auth}"
        f"userdb={workdir / 'turndb'}\n"
        f"cert={tls.cert}\npkey={tls.key}\n"
        "no-dtls\n"
        f"cli-ip=127.0.0.1\ncli-port={cli_port}\ncli-password=probe-cli\n"
        "no-multicast-peers\n"
        f"{loopback}"
        "simple-log\nverbose\n"
        f"pidfile={workdir / 'turnserver.pid'}\n"
    )


@contextlib.contextmanager
def running_coturn(
    workdir: Path,
    mode: str = "static",
    *,
    ports: tuple[int, int, int] | None = None,
    tls: TlsFiles | None = None,
    relay_ports: int = 40,
    user: tuple[str, str] = (STATIC_USER, STATIC_PASSWORD),
    realm: str = REALM,
    loopback_peers: bool = False,
) -> Iterator[Coturn]:
    require("turnserver", "coturn")
    workdir.mkdir(parents=True, exist_ok=True)
    port, tls_port, cli_port = ports or (free_port(), free_port(), free_port())
    tls = tls or make_self_signed(workdir)
    conf = workdir / "turnserver.conf"
    relay = free_port_range(relay_ports)
    conf.write_text(
        coturn_config(
            mode,
            port,
            tls_port,
            cli_port,
            relay,
            tls,
            workdir,
            user=user,
            realm=realm,
            loopback_peers=loopback_peers,
        )
    )
    log_path = workdir / "turnserver.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(["turnserver", "-c", str(conf)], stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_tcp(port, process, log_path, "turnserver")
            wait_for_tcp(tls_port, process, log_path, "turnserver (TLS)")
            wait_for_tcp(cli_port, process, log_path, "turnserver (CLI)")
            yield Coturn(port, tls_port, cli_port, log_path, tls, mode)
        finally:
            stop_process(process)


PROSODY_DOMAIN = "meet.probe.test"
PROSODY_MODULES = Path(__file__).resolve().parent / "prosody_modules"


@dataclass(frozen=True)
class Prosody:
    http_port: int
    domain: str
    log_path: Path

    @property
    def bosh_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/http-bind"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/health"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_prosody(workdir: Path, *, health_acl: str | None = None) -> Iterator[Prosody]:
    """Debian's prosody with BOSH on a free loopback port and an anonymous virtual host.

    With `health_acl` (Lua settings such as `http_health_allow_cidr = "127.0.0.0/8"`), also
    /health from tests/probes/prosody_modules/mod_http_health.lua (Debian does not ship it)."""
    require("prosody", "prosody")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    http_port, c2s_port = free_port(), free_port()
    log_path = workdir / "prosody.log"
    conf = workdir / "prosody.cfg.lua"
    modules = '"bosh", "disco"' + (', "http_health"' if health_acl is not None else "")
    health = f'plugin_paths = {{ "{PROSODY_MODULES}" }}\n{health_acl}\n' if health_acl is not None else ""
    conf.write_text(
        f'pidfile = "{workdir / "prosody.pid"}"\n'
        f'data_path = "{workdir / "data"}"\n'
        f'log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{log_path}" }} }}\n'
        'interfaces = { "127.0.0.1" }\n'
        f"c2s_ports = {{ {c2s_port} }}\n"
        'c2s_interfaces = { "127.0.0.1" }\n'
        "s2s_ports = { }\n"
        f"http_ports = {{ {http_port} }}\n"
        'http_interfaces = { "127.0.0.1" }\n'
        "https_ports = { }\n"
        f"modules_enabled = {{ {modules} }}\n"
        f"{health}"
        'modules_disabled = { "s2s", "posix" }\n'
        "consider_bosh_secure = true\n"
        "c2s_require_encryption = false\n"
        'authentication = "anonymous"\n'
        f'VirtualHost "{PROSODY_DOMAIN}"\n'
    )
    console = workdir / "prosody.out"
    with console.open("ab") as out:
        process = subprocess.Popen(["prosody", "--config", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_tcp(http_port, process, console, "prosody")
            yield Prosody(http_port, PROSODY_DOMAIN, log_path)
        finally:
            stop_process(process)


class _HealthHandler(BaseHTTPRequestHandler):
    """Answers 200 on `/` and `/about/health`, as Jitsi's web front, JVB and jicofo do when healthy."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/", "/about/health") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@contextlib.contextmanager
def running_health_server(handler: type[BaseHTTPRequestHandler] = _HealthHandler) -> Iterator[str]:
    """A plain HTTP server on a free loopback port (answering as `handler` does); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def wait_for_udp(
    port: int, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 10
) -> None:
    """Until a UDP socket is bound on 127.0.0.1:`port` (from /proc/net/udp); fails early if `process` exits."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while True:
        table = Path("/proc/net/udp").read_text()
        if any(line.split()[1] == wanted for line in table.splitlines()[1:]):
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not bind UDP {port} within {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def running_stund(workdir: Path) -> Iterator[int]:
    """Debian's stund 0.97 (RFC 3489 era) on loopback; yields its UDP port.

    It needs a second address: 127.0.0.2 is on the loopback interface like all of 127/8.
    """
    require("stund", "stun-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port_range(2)[0]
    log_path = workdir / "stund.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            ["stund", "-h", "127.0.0.1", "-a", "127.0.0.2", "-p", str(port), "-o", str(port + 1)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_udp(port, process, log_path, "stund")
            yield port
        finally:
            stop_process(process)


PION_REALM = "pion.probe.test"


def pion_binary() -> Path:
    """pion-turnserver from the cached Go build (tests/controlplane/build.sh), building it if needed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controlplane"))
    import localcluster

    if shutil.which("go") is None:
        pytest.skip("Go is not installed (needed to build pion/turn)")
    return localcluster.build_binaries() / "pion-turnserver"


@dataclass(frozen=True)
class Pion:
    port: int  # UDP and TCP
    tls_port: int
    tls: TlsFiles
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_pion(
    workdir: Path,
    mode: str = "static",
    *,
    users: dict[str, str] | None = None,
    realm: str = PION_REALM,
) -> Iterator[Pion]:
    """pion/turn (the second, independent TURN server) on loopback: UDP, TCP and TLS."""
    binary = pion_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port, tls_port = free_port(), free_port()
    tls = make_self_signed(workdir)
    if mode == "rest":
        (workdir / "secret").write_text(SHARED_SECRET)
        auth = ["-auth-secret-file", str(workdir / "secret")]
    else:
        entries = users or {STATIC_USER: STATIC_PASSWORD}
        (workdir / "users").write_text("".join(f"{name}={password}\n" for name, password in entries.items()))
        auth = ["-users-file", str(workdir / "users")]
    args = [str(binary), "-listen-ip", "127.0.0.1", "-udp-port", str(port), "-tcp-port", str(port),
            "-tls-port", str(tls_port), "-cert", str(tls.cert), "-key", str(tls.key), "-realm", realm, *auth]  # fmt: skip
    log_path = workdir / "pion.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_tcp(port, process, log_path, "pion-turnserver")
            wait_for_tcp(tls_port, process, log_path, "pion-turnserver (TLS)")
            yield Pion(port, tls_port, tls, log_path)
        finally:
            stop_process(process)
