"""`make demo`: a local control plane with the operator reconciling examples/production.yaml.

Runs until Ctrl-C, then stops the operator and deletes the cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "controlplane"))

import yaml  # noqa: E402

import localcluster  # noqa: E402

NAMESPACE = "calls-demo"
EXAMPLE = ROOT / "examples" / "production.yaml"
CRD = ROOT / "crds" / "callplatform.io_callplatforms.yaml"
HTTP_PORT = int(os.environ.get("DEMO_HTTP_PORT", "8080"))
READY_TIMEOUT = 180.0


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def wait_for_ready(cluster: localcluster.LocalCluster, name: str, operator: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            say(f"the operator exited with code {operator.returncode}; see .demo/operator.log")
            return False
        out = cluster.kubectl("get", "cp", name, "-n", NAMESPACE, "-o", "json", check=False)
        if out.returncode == 0:
            conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return True
        time.sleep(1)
    return False


def main() -> int:
    bin_dir = localcluster.build_binaries()
    localcluster.reap_stale_clusters(bin_dir)
    cluster = localcluster.LocalCluster("cp-demo", bin_dir)
    log_dir = ROOT / ".demo"
    log_dir.mkdir(exist_ok=True)
    operator: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        cluster.start()
        cluster.kubectl("apply", "--server-side", "-f", str(CRD))
        cluster.kubectl(
            "wait", "--for=condition=Established", "crd/callplatforms.callplatform.io", "--timeout=60s"
        )
        cluster.kubectl("create", "namespace", NAMESPACE)
        cluster.wait_for_default_service_account(NAMESPACE)
        env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))
        operator_log = (log_dir / "operator.log").open("wb")
        operator = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "callplatform"),
                "run",
                "--namespace",
                NAMESPACE,
                "--http-port",
                str(HTTP_PORT),
            ],
            env=env,
            stdout=operator_log,
            stderr=subprocess.STDOUT,
        )
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLE))
        name = next(
            doc["metadata"]["name"]
            for doc in yaml.safe_load_all(EXAMPLE.read_text())
            if doc and doc.get("kind") == "CallPlatform"
        )
        say(f"applied {EXAMPLE.relative_to(ROOT)}; waiting for CallPlatform {name} to become Ready...")
        ready = wait_for_ready(cluster, name, operator)
        say("Ready=True" if ready else "not Ready yet; `kubectl describe cp` says why")
        print(cluster.kubectl("get", "cp", "-n", NAMESPACE).stdout, flush=True)
        print(cluster.kubectl("get", "deploy,job,svc,cm,secret", "-n", NAMESPACE).stdout, flush=True)
        say("try:")
        print(f"  export KUBECONFIG={cluster.kubeconfig}")
        print(f"  kubectl get callplatforms -n {NAMESPACE}")
        print(f"  kubectl describe cp {name} -n {NAMESPACE}")
        print(f"  curl -s localhost:{HTTP_PORT}/metrics | grep ^callplatform_")
        print(f"  curl -s localhost:{HTTP_PORT}/api/calls/health/coturn")
        print(f"  operator log: {log_dir / 'operator.log'}")
        say("running; press Ctrl-C to stop and clean up")
        while operator.poll() is None:
            time.sleep(1)
        say(f"the operator exited with code {operator.returncode}; see .demo/operator.log")
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
