"""Real local services for `make demo`: coturn, PostgreSQL with a call history, prosody (BOSH).

Jitsi's web front, videobridge and jicofo are not packaged for Debian; a small
HTTP server answers their health endpoints in the demo and says so. The tests
never use it: they probe real prosody and HTTP(S) servers built for each case.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "probes"), str(ROOT / "tests" / "metrics")]

from callmetrics_db import CallDatabase, create_call_database  # noqa: E402
from callmetrics_pg import running_postgres  # noqa: E402
from servers import (  # noqa: E402
    Prosody,
    TlsFiles,
    _stop,
    _wait_tcp,
    free_port,
    free_port_range,
    make_self_signed,
    running_prosody,
)


@dataclass(frozen=True)
class DemoCoturn:
    port: int
    tls_port: int
    ca_file: Path


def render_demo_coturn_conf(
    *,
    username: str,
    password: str,
    realm: str,
    port: int,
    tls_port: int,
    relay: tuple[int, int],
    tls: TlsFiles,
) -> str:
    return (
        "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n"
        f"listening-port={port}\ntls-listening-port={tls_port}\n"
        f"min-port={relay[0]}\nmax-port={relay[1]}\n"
        f"realm={realm}\nfingerprint\nlt-cred-mech\nuser={username}:{password}\n"
        f"cert={tls.cert}\npkey={tls.key}\n"
        "no-dtls\nno-cli\nno-multicast-peers\nsimple-log\n"
    )


@contextlib.contextmanager
def running_demo_coturn(workdir: Path, *, username: str, password: str, realm: str) -> Iterator[DemoCoturn]:
    workdir.mkdir(parents=True, exist_ok=True)
    tls = make_self_signed(workdir, realm, days=90)
    port, tls_port = free_port(), free_port()
    conf = workdir / "turnserver.conf"
    conf.write_text(
        render_demo_coturn_conf(
            username=username,
            password=password,
            realm=realm,
            port=port,
            tls_port=tls_port,
            relay=free_port_range(20),
            tls=tls,
        )
    )
    conf.chmod(0o600)
    log = workdir / "turnserver.log"
    with log.open("ab") as out:
        process = subprocess.Popen(["turnserver", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_tcp(port, process, log, "turnserver")
            _wait_tcp(tls_port, process, log, "turnserver (TLS)")
            yield DemoCoturn(port, tls_port, tls.cert)
        finally:
            _stop(process)


class _JitsiStandIn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}' if self.path.startswith("/about/health") else b"<html>Jitsi stand-in</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@contextlib.contextmanager
def running_jitsi_stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JitsiStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class DemoServices:
    coturn: DemoCoturn
    calls_db: CallDatabase
    prosody: Prosody
    jitsi_url: str


@contextlib.contextmanager
def running_demo_services(
    workdir: Path, *, turn_username: str, turn_password: str, turn_realm: str
) -> Iterator[DemoServices]:
    with (
        running_demo_coturn(
            workdir / "coturn", username=turn_username, password=turn_password, realm=turn_realm
        ) as coturn,
        running_postgres() as postgres,
        running_prosody(workdir / "prosody") as prosody,
        running_jitsi_stand_in() as jitsi_url,
    ):
        calls_db = create_call_database(postgres, calls=5000, active=12)
        yield DemoServices(coturn, calls_db, prosody, jitsi_url)
