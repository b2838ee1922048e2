"""A loopback HTTP server standing in for jicofo's and a videobridge's private HTTP APIs.

It serves the fixture files in fixtures/jitsi/ (written from Jitsi's documented metric
names; not a live Jitsi). A test switches what a path answers with `serve()`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jitsi"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class JitsiStub:
    base_url: str = ""
    routes: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, path: str, fixture_name: str = "", *, status: int = 200) -> None:
        body = fixture(fixture_name) if fixture_name else ""
        with self.lock:
            self.routes[path] = (status, body)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _handler(stub: JitsiStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with stub.lock:
                status, body = stub.routes.get(self.path, (404, ""))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", EXPOSITION)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    return Handler


@contextlib.contextmanager
def running_jitsi_stub() -> Iterator[JitsiStub]:
    """Healthy jicofo (/jicofo/metrics) and videobridge (/jvb/metrics) on a free loopback port;
    /about/health answers 200, /colibri/stats 404 (COLIBRI REST API off, Jitsi's default)."""
    stub = JitsiStub()
    stub.serve("/jicofo/metrics", "jicofo-healthy.prom")
    stub.serve("/jvb/metrics", "jvb-idle.prom")
    stub.serve("/about/health")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
