"""`make demo`: a local control plane with the operator reconciling examples/production.yaml.

Real local services stand behind the platform: coturn (probed with STUN and an
authenticated TURN Allocate), PostgreSQL with a call history (call metrics),
prosody (BOSH). Runs until Ctrl-C, then stops everything and deletes the cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "controlplane"))

from demo_services import DemoServices, running_demo_services  # noqa: E402

import localcluster  # noqa: E402

NAMESPACE = "calls-demo"
EXAMPLE = ROOT / "examples" / "production.yaml"
CRD = ROOT / "crds" / "callplatform.io_callplatforms.yaml"
HTTP_PORT = int(os.environ.get("DEMO_HTTP_PORT", "8080"))
CLUSTER_NAME = os.environ.get("DEMO_CLUSTER_NAME", "cp-demo")
READY_TIMEOUT = 180.0


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def load_example() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc]
    secret = next(doc for doc in docs if doc["kind"] == "Secret")
    platform = next(doc for doc in docs if doc["kind"] == "CallPlatform")
    return secret, platform


def point_at_local_services(secret: dict[str, Any], platform: dict[str, Any], services: DemoServices) -> None:
    """The example names public hosts; the demo probes the local services instead."""
    secret["stringData"]["DATABASE_URL"] = services.calls_db.reader_url
    spec = platform["spec"]
    spec["turn"].update(probeHost="127.0.0.1", port=services.coturn.port, tlsPort=services.coturn.tls_port)
    spec["jitsi"]["domain"] = services.prosody.domain
    spec["jitsi"]["probes"] = {
        "webURL": f"{services.jitsi_url}/",
        "boshURL": services.prosody.bosh_url,
        "jvbHealthURL": f"{services.jitsi_url}/about/health",
        "jicofoHealthURL": f"{services.jitsi_url}/about/health",
    }
    spec["database"]["callLog"] = {"participantsTable": "callParticipant"}
    spec["monitoring"]["probeIntervalSeconds"] = 10
    # The local coturn relays from 127.0.0.1, which the rendered deny list refuses as it should, so
    # the relay data-path probe could only report TurnRelayForbidden here (docs/health.md).
    spec["monitoring"]["turnRelayProbe"] = False


def wait_for_ready(cluster: localcluster.LocalCluster, name: str, operator: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            return False
        out = cluster.kubectl("get", "cp", name, "-n", NAMESPACE, "-o", "json", check=False)
        if out.returncode == 0:
            conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return True
        time.sleep(1)
    return False


def start_operator(
    cluster: localcluster.LocalCluster, ca_file: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), CALLPLATFORM_PROBE_CA_FILE=str(ca_file))
    command = [str(Path(sys.executable).parent / "callplatform"), "run", "--namespace", NAMESPACE]
    command += ["--http-port", str(HTTP_PORT)]
    return subprocess.Popen(command, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)


def show(cluster: localcluster.LocalCluster, name: str, log_path: Path) -> None:
    print(cluster.kubectl("get", "cp", "-n", NAMESPACE, "-o", "wide").stdout, flush=True)
    print(cluster.kubectl("get", "deploy,job,svc,cm,secret", "-n", NAMESPACE).stdout, flush=True)
    say("try, in another terminal:")
    print(f"  export KUBECONFIG={cluster.kubeconfig}")
    print(f"  kubectl get callplatforms -n {NAMESPACE}")
    print(f"  kubectl describe cp {name} -n {NAMESPACE}")
    print(f"  curl -s localhost:{HTTP_PORT}/metrics | grep -E '^callplatform_(calls|probe_success|platform)'")
    print(f"  curl -s localhost:{HTTP_PORT}/api/calls/health/coturn")
    print(f"  operator log: {log_path}")


def main() -> int:
    bin_dir = localcluster.build_binaries()
    localcluster.reap_stale_clusters(bin_dir)
    cluster = localcluster.LocalCluster(CLUSTER_NAME, bin_dir)
    log_dir = ROOT / ".demo"
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / "operator.log"
    secret, platform = load_example()
    name = platform["metadata"]["name"]
    operator: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with tempfile.TemporaryDirectory(prefix="callplatform-demo-") as workdir:
            turn = secret["stringData"]
            with running_demo_services(
                Path(workdir),
                turn_username=turn["TURN_USERNAME"],
                turn_password=turn["TURN_PASSWORD"],
                turn_realm=platform["spec"]["turn"]["host"],
            ) as services:
                say(
                    f"coturn on 127.0.0.1:{services.coturn.port} (TLS {services.coturn.tls_port}), "
                    f"PostgreSQL with a call history, prosody BOSH at {services.prosody.bosh_url}, "
                    f"a stand-in for Jitsi web/JVB/jicofo health at {services.jitsi_url}"
                )
                point_at_local_services(secret, platform, services)
                cluster.start()
                cluster.kubectl("apply", "--server-side", "-f", str(CRD))
                cluster.kubectl(
                    "wait",
                    "--for=condition=Established",
                    "crd/callplatforms.callplatform.io",
                    "--timeout=60s",
                )
                cluster.kubectl("create", "namespace", NAMESPACE)
                cluster.wait_for_default_service_account(NAMESPACE)
                operator = start_operator(cluster, services.coturn.ca_file, log_path)
                manifest = yaml.safe_dump_all([secret, platform])
                cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=manifest)
                say(
                    f"applied {EXAMPLE.relative_to(ROOT)} (pointed at the local services); waiting for Ready..."
                )
                if wait_for_ready(cluster, name, operator):
                    say(f"CallPlatform {name} is Ready")
                elif operator.poll() is not None:
                    say(f"the operator exited with code {operator.returncode}; see {log_path}")
                    return 1
                else:
                    say(f"not Ready after {READY_TIMEOUT:.0f}s; `kubectl describe cp {name}` says why")
                show(cluster, name, log_path)
                say("running; press Ctrl-C to stop and clean up")
                while operator.poll() is None:
                    time.sleep(1)
                say(f"the operator exited with code {operator.returncode}; see {log_path}")
                return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        if operator is not None and operator.poll() is None:
            operator.terminate()
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                operator.kill()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
