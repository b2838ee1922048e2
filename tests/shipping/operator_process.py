"""`callplatform run` as a real process, authenticated as the chart's ServiceAccount."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CALLPLATFORM = Path(sys.executable).parent / "callplatform"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.5) -> float:
    """Poll `check` until it is true; return the seconds it took, or fail after `timeout`."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def service_account_kubeconfig(cluster: Any, namespace: str, service_account: str, path: Path) -> Path:
    """A self-contained kubeconfig for `service_account`, with a token from the TokenRequest API."""
    token = cluster.kubectl(
        "create", "token", service_account, "-n", namespace, "--duration", "2h"
    ).stdout.strip()
    # --flatten embeds the CA, so the file also works inside a container that cannot see the cluster's files.
    admin = yaml.safe_load(cluster.kubectl("config", "view", "--minify", "--flatten", "-o", "yaml").stdout)
    server = dict(admin["clusters"][0]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": service_account}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class OperatorProcess:
    """One `callplatform run`; its combined output goes to a log file the test can read."""

    def __init__(self, kubeconfig: Path, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self.http_port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("KUBERNETES_")}
        env["KUBECONFIG"] = str(kubeconfig)
        env.pop("POD_NAME", None)
        env.pop("POD_NAMESPACE", None)
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [str(CALLPLATFORM), "run", "--http-host", "127.0.0.1", "--http-port", str(self.http_port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM (a clean exit), then SIGKILL if it does not stop in time."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return int(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL: no clean exit, no Lease release."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """GET from an operator's HTTP server on loopback: (status, body); (0, b"") when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except OSError:  # refused or reset: no server on the port at this moment
        return 0, b""


def platform_condition(cluster: Any, namespace: str, name: str, condition: str) -> str:
    result = cluster.kubectl("get", "callplatform", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return ""
    status = json.loads(result.stdout).get("status") or {}
    for item in status.get("conditions") or []:
        if item.get("type") == condition:
            return str(item.get("status"))
    return ""


def production_example(namespace: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """examples/production.yaml for `namespace`, and its secret values (to look for in logs).

    The health monitor and the call-metrics collector are switched off: they would reach out to
    meet.example.com, turn.example.com and the platform's database, and tests only talk to
    loopback. Everything the reconciler does is unchanged.
    """
    documents = [
        doc for doc in yaml.safe_load_all((REPO / "examples" / "production.yaml").read_text()) if doc
    ]
    secrets: dict[str, str] = {}
    for document in documents:
        document.setdefault("metadata", {})["namespace"] = namespace
        if document["kind"] == "Secret":
            # The TURN user name ("calls") is not a secret, and names objects too.
            values = document.get("stringData") or {}
            secrets.update({key: value for key, value in values.items() if key != "TURN_USERNAME"})
        if document["kind"] == "CallPlatform":
            document["spec"].setdefault("monitoring", {})["enabled"] = False
            document["spec"].setdefault("database", {})["metricsEnabled"] = False
    return documents, secrets


def start_leader_elected(
    cluster: Any, release_namespace: str, service_account: str, workdir: Path, identity: str, *flags: str
) -> OperatorProcess:
    """`callplatform run --leader-elect` as the chart's ServiceAccount, on the chart's Lease."""
    kubeconfig = workdir / f"{service_account}.kubeconfig"
    if not kubeconfig.exists():
        service_account_kubeconfig(cluster, release_namespace, service_account, kubeconfig)
    return OperatorProcess(
        kubeconfig,
        workdir / f"{identity}.log",
        *flags,
        "--standalone",
        "--leader-elect",
        f"--lease-namespace={release_namespace}",
        f"--identity={identity}",
    )
