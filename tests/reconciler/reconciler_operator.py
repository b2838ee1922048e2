"""`callplatform run` as a real process against the test cluster, and helpers to watch the result."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

CALLPLATFORM = Path(sys.executable).parent / "callplatform"
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
# Audit records of requests made by the operator (our client's and kopf's user agents).
OPERATOR_USER_AGENTS = ("callplatform-operator", "kopf/")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    def __init__(
        self, kubeconfig: Path, log_path: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        self.log_path = log_path
        self.args = args
        self.kubeconfig = kubeconfig
        self.extra_env = dict(env or {})
        self.http_port = 0  # the operator's HTTP server (/metrics, health API), set by start()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(self.extra_env)
        self.http_port = free_tcp_port()
        with self.log_path.open("a") as log_file:
            self.process = subprocess.Popen(
                [str(CALLPLATFORM), "run", "--http-host", "127.0.0.1", "--http-port", str(self.http_port),
                 *self.args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def http_status(port: int, path: str) -> int:
    """The status of the operator's HTTP endpoint `path`; 0 when it does not answer within 5 s."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def wait_for(
    check: Callable[[], T | None], what: str, timeout: float = 120, operator: OperatorProcess | None = None
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if operator is not None and not operator.alive():
            raise AssertionError(f"operator exited while waiting for {what}:\n{operator.log()[-4000:]}")
        if time.monotonic() > deadline:
            tail = operator.log()[-4000:] if operator else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{tail}")
        time.sleep(0.3)


def get_json(cluster: Any, *args: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def conditions(cluster: Any, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    platform = get_json(cluster, "callplatform", name, "-n", namespace) or {}
    return {c["type"]: c for c in (platform.get("status") or {}).get("conditions") or []}


def condition_is(
    cluster: Any, namespace: str, name: str, condition: str, status: str, reason: str = ""
) -> bool:
    current = conditions(cluster, namespace, name).get(condition)
    if current is None or current["status"] != status:
        return False
    return not reason or current["reason"] == reason


def apply(cluster: Any, namespace: str, *documents: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))


def events(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (get_json(cluster, "events", "-n", namespace) or {}).get("items", [])
    return items


def deployment_image(cluster: Any, namespace: str, name: str) -> str | None:
    deployment = get_json(cluster, "deployment", name, "-n", namespace)
    if deployment is None:
        return None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


class AuditLog:
    """Write requests the API server recorded (the cluster's audit policy logs every request;
    reads are left out here)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def operator_writes_since_mark(self, namespace: str) -> list[str]:
        writes = []
        with self.path.open() as audit:
            audit.seek(self.offset)
            for line in audit:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("stage") != "ResponseComplete" or record.get("verb") not in WRITE_VERBS:
                    continue
                agent = str(record.get("userAgent", ""))
                ref = record.get("objectRef") or {}
                if agent.startswith(OPERATOR_USER_AGENTS) and ref.get("namespace") == namespace:
                    writes.append(f"{record.get('verb')} {ref.get('resource')}/{ref.get('name')}")
        return writes

    def all_operator_writes(self, namespace: str) -> list[str]:
        offset, self.offset = self.offset, 0
        try:
            return self.operator_writes_since_mark(namespace)
        finally:
            self.offset = offset
