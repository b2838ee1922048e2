"""Start the real coturn (Debian's turnserver) on loopback with a rendered config, and drive it
with turnutils_uclient."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def require_coturn() -> None:
    for binary in ("turnserver", "turnutils_uclient"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not installed (apt-get install coturn)")


@dataclass
class RunningCoturn:
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def relay_to(self, peer: str, *, user: str = "", password: str = "", rest_secret: str = "") -> str:
        """Allocate, then channel-bind and send to `peer`; returns uclient's output."""
        auth = ["-W", rest_secret] if rest_secret else ["-u", user, "-w", password]
        result = subprocess.run(
            ["turnutils_uclient", *auth, "-p", str(self.port), "-e", peer, "-r", str(free_port()), "-n", "1",
             "-X", "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
        return result.stdout + result.stderr


def wait_for_tcp(
    port: int, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 20
) -> None:
    """Until `process` accepts TCP on 127.0.0.1:`port`; fails early, with its log, if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {port} within {timeout}s")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_coturn(
    conf: str, port: int, workdir: Path, *extra_args: str, relay_ips: tuple[str, ...] = ("127.0.0.1",)
) -> Iterator[RunningCoturn]:
    conf_path = workdir / "turnserver.conf"
    conf_path.write_text(conf)
    log_path = workdir / "turnserver.log"
    relays = [arg for ip in relay_ips for arg in ("--relay-ip", ip)]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            ["turnserver", "-c", str(conf_path), "--listening-ip", "127.0.0.1", *relays,
             "--pidfile", str(workdir / "turnserver.pid"), *extra_args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_tcp(port, process, log_path, "turnserver")
            yield RunningCoturn(port, log_path)
        finally:
            stop_process(process)
