"""Acceptance against the real control plane (kube-apiserver, controllers, KWOK), with the
operator running as `callplatform run`, and real kubectl for what a platform team sees."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from reconciler_operator import (
    CALLPLATFORM,
    AuditLog,
    OperatorProcess,
    condition_is,
    conditions,
    deployment_image,
    events,
    get_json,
    wait_for,
)
from reconciler_operator import apply as kubectl_apply
from reconciler_platforms import STRONG_SECRETS, WEAK_JWT_SECRET, platform_manifest, secret_manifest

from callplatform.commands.render import redact_readable
from callplatform.kube import decode_secret_data, matches
from callplatform.model import parse_platform
from callplatform.render import render_platform

pytestmark = pytest.mark.cluster

NAME = "calls"
IMAGE = "registry.example.com/calls-backend:1.4.2"
FAILING_IMAGE = "registry.example.com/calls-backend:1.5.0-failing-migration"
FIXED_IMAGE = "registry.example.com/calls-backend:1.5.1"
RESYNC_SECONDS = "2"
READY_TIMEOUT = 180
OWNED = "deployments,services,configmaps,secrets,jobs"
RESTRICTED = "pod-security.kubernetes.io/enforce"
INSTANCE = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/managed-by=callplatform-operator"


@dataclass
class RunningPlatform:
    cluster: Any
    namespace: str
    operator: OperatorProcess
    manifest_path: Path

    def wait_condition(
        self, condition: str, status: str, reason: str = "", timeout: float = READY_TIMEOUT
    ) -> None:
        wait_for(
            lambda: condition_is(self.cluster, self.namespace, NAME, condition, status, reason),
            f"{self.namespace}/{NAME} {condition}={status} {reason}",
            timeout,
            self.operator,
        )

    def resyncs(self) -> int:
        return self.operator.log().count("resync: queued")

    def wait_resyncs(self, count: int) -> None:
        """Wait until `count` more resyncs have queued (so `count - 1` more passes have completed)."""
        target = self.resyncs() + count
        wait_for(lambda: self.resyncs() >= target, f"{count} resyncs", 60, self.operator)

    def owned(self) -> list[str]:
        listed = get_json(self.cluster, OWNED, "-n", self.namespace, "-l", INSTANCE) or {}
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in listed.get("items", []))


def _create_namespace(cluster: Any, prefix: str) -> str:
    """A namespace that enforces the `restricted` Pod Security profile: a pod the operator renders
    that breaks it is refused by the API server, and the Deployment or Job never completes."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl(
        "label", "namespace", namespace, f"{RESTRICTED}=restricted", f"{RESTRICTED}-version=latest"
    )
    cluster.wait_for_default_service_account(namespace)
    return namespace


@contextlib.contextmanager
def _platform(
    cluster: Any,
    tmp_path: Path,
    prefix: str,
    secrets: dict[str, str],
    image: str = IMAGE,
    platform: dict[str, Any] | None = None,
) -> Iterator[RunningPlatform]:
    namespace = _create_namespace(cluster, prefix)
    documents = [secret_manifest(secrets), platform or platform_manifest(name=NAME, image=image)]
    manifest_path = tmp_path / f"{prefix}.yaml"
    manifest_path.write_text(yaml.safe_dump_all(documents))
    operator = OperatorProcess(
        cluster.kubeconfig, tmp_path / f"{prefix}-operator.log", "--namespace", namespace,
        "--resync-seconds", RESYNC_SECONDS, "--standalone",
    )  # fmt: skip
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", str(manifest_path))
        yield RunningPlatform(cluster, namespace, operator, manifest_path)
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def ready(
    kube_cluster: Any, crd_installed: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    """One production platform brought to Ready, shared by the tests that only look at it."""
    with _platform(kube_cluster, tmp_path_factory.mktemp("ready"), "ready", STRONG_SECRETS) as platform:
        platform.wait_condition("Ready", "True")
        yield platform


def test_valid_production_platform_is_ready_and_describe_shows_it(ready: RunningPlatform) -> None:
    cluster, ns = ready.cluster, ready.namespace
    deployment = get_json(cluster, "deployment", f"{NAME}-calls", "-n", ns)
    assert deployment is not None
    available = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
    assert available["Available"] == "True"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    jobs = (get_json(cluster, "jobs", "-n", ns, "-l", "app.kubernetes.io/component=migration") or {})["items"]
    assert len(jobs) == 1
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in jobs[0]["status"]["conditions"])
    status = (get_json(cluster, "callplatform", NAME, "-n", ns) or {})["status"]
    assert status["migratedImage"] == IMAGE and status["appliedImage"] == IMAGE
    assert status["migrationJob"] == jobs[0]["metadata"]["name"]

    pods = (get_json(cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=calls") or {})["items"]
    assert len(pods) == 2  # admitted by the namespace's `restricted` Pod Security enforcement
    described = cluster.kubectl("describe", "cp", NAME, "-n", ns).stdout
    for text in ("Ready", "SecretsValid", "TurnConfigured", "MigrationsComplete", "DeploymentAvailable",
                 "AllConditionsMet", "MigrationSucceeded", "Events:"):  # fmt: skip
        assert text in described, text
    assert "callplatform-operator" in described  # events from the operator are listed
    listed = cluster.kubectl("get", "cp", "-n", ns).stdout
    assert "True" in listed.splitlines()[1]


def test_idle_resync_makes_zero_write_requests(ready: RunningPlatform, kube_cluster: Any) -> None:
    audit = AuditLog(kube_cluster.audit_log)
    assert audit.all_operator_writes(ready.namespace), "the audit log sees the operator's writes at all"
    ready.wait_resyncs(2)  # let anything still settling finish
    audit.mark()
    ready.wait_resyncs(4)  # at least three complete passes
    assert audit.operator_writes_since_mark(ready.namespace) == []
    assert condition_is(kube_cluster, ready.namespace, NAME, "Ready", "True")


def test_render_equals_what_the_operator_applied(ready: RunningPlatform) -> None:
    cluster, ns = ready.cluster, ready.namespace
    output = subprocess.run(
        [str(CALLPLATFORM), "render", "--namespace", ns, str(ready.manifest_path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rendered = list(yaml.safe_load_all(output))
    assert sorted(f"{o['kind']}/{o['metadata']['name']}" for o in rendered) == ready.owned()
    for manifest in rendered:
        live = get_json(cluster, manifest["kind"].lower(), manifest["metadata"]["name"], "-n", ns)
        assert live is not None
        if manifest["kind"] == "Secret":
            shown = manifest.get("data") or manifest["stringData"]
            assert sorted(live["data"]) == sorted(shown)  # the CLI never prints credential values
            for key, text in (manifest.get("stringData") or {}).items():  # turnserver.conf, iceServers.json
                assert text == redact_readable(key, base64.b64decode(live["data"][key]).decode())
            continue
        assert matches(manifest, live), manifest["metadata"]["name"]
    # The values too, through the same render function the CLI uses.
    live_platform = parse_platform(get_json(cluster, "callplatform", NAME, "-n", ns) or {})
    desired = render_platform(live_platform, {"calls-secrets": dict(STRONG_SECRETS)})
    for secret in (desired.turn_config_secret, desired.ice_servers_secret):
        live = get_json(cluster, "secret", secret["metadata"]["name"], "-n", ns) or {}
        assert live.get("data") == secret["data"]


def test_drift_is_repaired(ready: RunningPlatform) -> None:
    cluster, ns = ready.cluster, ready.namespace
    cluster.kubectl("delete", "configmap", f"{NAME}-security-headers", "-n", ns)
    cluster.kubectl("scale", "deployment", f"{NAME}-calls", "-n", ns, "--replicas=5")
    cluster.kubectl("delete", "secret", f"{NAME}-turn", "-n", ns)
    wait_for(
        lambda: get_json(cluster, "configmap", f"{NAME}-security-headers", "-n", ns),
        "the ConfigMap to come back", 60, ready.operator,
    )  # fmt: skip
    wait_for(
        lambda: get_json(cluster, "secret", f"{NAME}-turn", "-n", ns), "the TURN Secret", 60, ready.operator
    )
    wait_for(
        lambda: (get_json(cluster, "deployment", f"{NAME}-calls", "-n", ns) or {}).get("spec", {}).get("replicas") == 2,
        "replicas back to 2", 60, ready.operator,
    )  # fmt: skip
    ready.wait_condition("Ready", "True")


def test_deleting_the_platform_while_the_operator_is_down_removes_everything(ready: RunningPlatform) -> None:
    cluster, ns = ready.cluster, ready.namespace
    assert len(ready.owned()) >= 6
    platform = get_json(cluster, "callplatform", NAME, "-n", ns) or {}
    assert not platform["metadata"].get("finalizers"), "no finalizer may block deletion"
    ready.operator.stop()
    cluster.kubectl("delete", "callplatform", NAME, "-n", ns, "--timeout=30s")
    wait_for(lambda: ready.owned() == [] or None, "garbage collection of owned objects", 120)


def test_weak_jwt_secret_blocks_rollout_and_fixing_it_needs_no_platform_change(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    weak = {**STRONG_SECRETS, "JITSI_JWT_SECRET": WEAK_JWT_SECRET}
    with _platform(kube_cluster, tmp_path, "weak", weak) as platform:
        cluster, ns = platform.cluster, platform.namespace
        platform.wait_condition("SecretsValid", "False", "RulesFailed")
        current = conditions(cluster, ns, NAME)
        assert "spec.jitsi.jwt.secretRef" in current["SecretsValid"]["message"]
        assert current["Ready"]["status"] == "False"
        assert get_json(cluster, "deployment", f"{NAME}-calls", "-n", ns) is None
        assert (get_json(cluster, "jobs", "-n", ns) or {})["items"] == []
        warnings = [e for e in events(cluster, ns) if e["type"] == "Warning" and e["reason"] == "RulesFailed"]
        assert warnings and "spec.jitsi.jwt.secretRef" in warnings[0]["message"]
        status_text = json.dumps(get_json(cluster, "callplatform", NAME, "-n", ns))
        described = cluster.kubectl("describe", "cp", NAME, "-n", ns).stdout
        for place, text in (("status", status_text), ("events", json.dumps(events(cluster, ns))),
                            ("describe", described), ("operator log", platform.operator.log())):  # fmt: skip
            assert WEAK_JWT_SECRET not in text, place
        generation = (get_json(cluster, "callplatform", NAME, "-n", ns) or {})["metadata"]["generation"]

        kubectl_apply(cluster, ns, secret_manifest(STRONG_SECRETS))
        platform.wait_condition("Ready", "True")
        after = get_json(cluster, "callplatform", NAME, "-n", ns) or {}
        assert after["metadata"]["generation"] == generation
        assert STRONG_SECRETS["JITSI_JWT_SECRET"] not in platform.operator.log()


def test_failing_migration_keeps_the_old_image_and_a_fixed_image_rolls_out(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    with _platform(kube_cluster, tmp_path, "migrate", STRONG_SECRETS) as platform:
        cluster, ns = platform.cluster, platform.namespace
        platform.wait_condition("Ready", "True")
        patch = json.dumps({"spec": {"calls": {"image": FAILING_IMAGE}}})
        cluster.kubectl("patch", "cp", NAME, "-n", ns, "--type=merge", "-p", patch)
        platform.wait_condition("MigrationsComplete", "False", "MigrationFailed")
        message = conditions(cluster, ns, NAME)["MigrationsComplete"]["message"]
        assert f"{NAME}-migrate-" in message
        assert deployment_image(cluster, ns, f"{NAME}-calls") == IMAGE
        assert any(e["type"] == "Warning" and e["reason"] == "MigrationFailed" for e in events(cluster, ns))
        platform.wait_resyncs(2)
        assert deployment_image(cluster, ns, f"{NAME}-calls") == IMAGE

        patch = json.dumps({"spec": {"calls": {"image": FIXED_IMAGE}}})
        cluster.kubectl("patch", "cp", NAME, "-n", ns, "--type=merge", "-p", patch)
        wait_for(
            lambda: deployment_image(cluster, ns, f"{NAME}-calls") == FIXED_IMAGE,
            "the Deployment on the fixed image", READY_TIMEOUT, platform.operator,
        )  # fmt: skip
        platform.wait_condition("Ready", "True")


def test_operator_restart_mid_rollout_converges_without_duplicate_jobs(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    with _platform(kube_cluster, tmp_path, "restart", STRONG_SECRETS) as platform:
        cluster, ns = platform.cluster, platform.namespace

        def migration_jobs() -> list[str]:
            listed = get_json(cluster, "jobs", "-n", ns, "-l", "app.kubernetes.io/component=migration") or {}
            return [job["metadata"]["name"] for job in listed.get("items", [])]

        # Kill the operator (no clean exit) the moment it has created the migration Job,
        # before it can see the Job finish, record it, or create the Deployment.
        deadline = time.monotonic() + 60
        while "applied Job" not in platform.operator.log():
            assert time.monotonic() < deadline, platform.operator.log()[-3000:]
            time.sleep(0.005)
        platform.operator.stop(kill=True)
        status = (get_json(cluster, "callplatform", NAME, "-n", ns) or {}).get("status") or {}
        assert not status.get("migratedImage"), "killed after the migration was recorded: not mid-rollout"
        assert get_json(cluster, "deployment", f"{NAME}-calls", "-n", ns) is None

        platform.operator.start()
        platform.wait_condition("Ready", "True")
        platform.wait_resyncs(2)
        assert len(migration_jobs()) == 1
        job_writes = [w for w in AuditLog(kube_cluster.audit_log).all_operator_writes(ns) if "jobs/" in w]
        assert job_writes == [f"patch jobs/{migration_jobs()[0]}"], job_writes


def test_staging_generates_the_jwt_secret_once_and_seeds_the_demo_once(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    values = {k: v for k, v in STRONG_SECRETS.items() if k != "JITSI_JWT_SECRET"}
    values["DEMO_USER_PASSWORD"] = bcrypt.hashpw(b"demo-Password-7xQ2", bcrypt.gensalt(10)).decode()
    manifest = platform_manifest(name=NAME, environment="staging")
    manifest["spec"]["jitsi"]["jwt"]["generate"] = True
    manifest["spec"]["demoSeed"] = {
        "enabled": True,
        "passwordSecretRef": {"name": "calls-secrets", "key": "DEMO_USER_PASSWORD"},
    }
    with _platform(kube_cluster, tmp_path, "staging", values, platform=manifest) as platform:
        cluster, ns = platform.cluster, platform.namespace
        platform.wait_condition("Ready", "True")
        wait_for(
            lambda: (get_json(cluster, "callplatform", NAME, "-n", ns) or {})["status"].get("seededImage") == IMAGE,
            "the demo seed to complete", 60, platform.operator,
        )  # fmt: skip
        seeds = (get_json(cluster, "jobs", "-n", ns, "-l", "app.kubernetes.io/component=demo-seed") or {})[
            "items"
        ]
        assert len(seeds) == 1
        generated = decode_secret_data(get_json(cluster, "secret", f"{NAME}-generated", "-n", ns) or {})
        assert len(generated["JITSI_JWT_SECRET"]) >= 64
        env = (get_json(cluster, "deployment", f"{NAME}-calls", "-n", ns) or {})["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
        jwt = next(e for e in env if e["name"] == "JITSI_JWT_SECRET")
        assert jwt["valueFrom"]["secretKeyRef"]["name"] == f"{NAME}-generated"
        assert {"name": "ALLOW_DEMO_SEED", "value": "true"} in env
        platform.wait_resyncs(3)
        again = decode_secret_data(get_json(cluster, "secret", f"{NAME}-generated", "-n", ns) or {})
        assert again == generated
        seeds = (get_json(cluster, "jobs", "-n", ns, "-l", "app.kubernetes.io/component=demo-seed") or {})[
            "items"
        ]
        assert len(seeds) == 1
        assert generated["JITSI_JWT_SECRET"] not in platform.operator.log()


def test_finished_migration_jobs_are_cleaned_up_and_never_rerun(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    manifest = platform_manifest(name=NAME)
    manifest["spec"]["calls"]["migration"] = {"ttlSecondsAfterFinished": 1}
    with _platform(kube_cluster, tmp_path, "ttl", STRONG_SECRETS, platform=manifest) as platform:
        cluster, ns = platform.cluster, platform.namespace
        platform.wait_condition("Ready", "True")

        def migration_jobs() -> list[str]:
            listed = get_json(cluster, "jobs", "-n", ns, "-l", "app.kubernetes.io/component=migration") or {}
            return [job["metadata"]["name"] for job in listed.get("items", [])]

        wait_for(lambda: migration_jobs() == [], "the TTL controller to remove the finished Job", 60)
        audit = AuditLog(kube_cluster.audit_log)
        audit.mark()
        platform.wait_resyncs(4)
        assert migration_jobs() == []
        assert [w for w in audit.operator_writes_since_mark(ns) if "jobs/" in w] == []
        assert condition_is(cluster, ns, NAME, "Ready", "True")
