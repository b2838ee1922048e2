"""The reconcile pass against an in-memory API: gate, migrations, idle passes, events, generated secrets."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from reconciler_fake_kube import Clock, FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, WEAK_JWT_SECRET, platform_manifest, secret_manifest

from callplatform.reconcile import Reconciler

NS = "calls-ns"
IMAGE_1 = "registry.example.com/calls-backend:1.4.2"
IMAGE_2 = "registry.example.com/calls-backend:1.5.0"
IMAGE_3 = "registry.example.com/calls-backend:1.5.1"


def _conditions(kube: FakeKube, name: str = "calls") -> dict[str, dict[str, Any]]:
    platform = kube.obj("CallPlatform", NS, name)
    assert platform is not None
    return {c["type"]: c for c in platform["status"]["conditions"]}


def _deployment_image(kube: FakeKube) -> str | None:
    deployment = kube.obj("Deployment", NS, "calls-calls")
    return None if deployment is None else deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def _set_image(kube: FakeKube, image: str) -> None:
    platform = kube.obj("CallPlatform", NS, "calls")
    assert platform is not None
    platform["spec"]["calls"]["image"] = image
    platform["metadata"]["generation"] += 1


def _bring_up(kube: FakeKube, reconciler: Reconciler) -> None:
    bring_up(
        kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), platform_manifest(namespace=NS)
    )


def test_first_pass_runs_the_migration_and_holds_back_the_deployment(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    reconciler.reconcile(NS, "calls")
    assert len(kube.of_kind("Job")) == 1
    assert _deployment_image(kube) is None
    conditions = _conditions(kube)
    assert conditions["MigrationsComplete"]["reason"] == "MigrationRunning"
    assert conditions["SecretsValid"]["status"] == "True"
    assert conditions["TurnConfigured"]["status"] == "True"
    assert conditions["Ready"]["status"] == "False"


def test_valid_platform_becomes_ready(kube: FakeKube, reconciler: Reconciler) -> None:
    _bring_up(kube, reconciler)
    conditions = _conditions(kube)
    assert conditions["Ready"]["status"] == "True", conditions["Ready"]
    assert _deployment_image(kube) == IMAGE_1
    status = kube.obj("CallPlatform", NS, "calls")["status"]  # type: ignore[index]
    assert status["migratedImage"] == IMAGE_1
    assert status["appliedImage"] == IMAGE_1
    assert status["observedGeneration"] == 1
    assert conditions["JitsiHealthy"]["reason"] == "MonitoringDisabled"
    assert "Ready" in [e["reason"] for e in kube.events if e["type"] == "Normal"]


def test_idle_pass_writes_nothing_and_posts_no_event(kube: FakeKube, reconciler: Reconciler) -> None:
    _bring_up(kube, reconciler)
    kube.writes.clear()
    kube.events.clear()
    for _ in range(3):
        result = reconciler.reconcile(NS, "calls")
        assert result.ready
        assert result.writes == []
    assert kube.writes == []
    assert kube.events == []


def test_last_transition_time_only_moves_on_a_transition(kube: FakeKube, reconciler: Reconciler) -> None:
    _bring_up(kube, reconciler)
    before = _conditions(kube)
    _set_image(kube, IMAGE_2)
    reconciler.reconcile(NS, "calls")
    after = _conditions(kube)
    assert after["SecretsValid"]["lastTransitionTime"] == before["SecretsValid"]["lastTransitionTime"]
    assert after["SecretsValid"]["observedGeneration"] == 2
    assert (
        after["MigrationsComplete"]["lastTransitionTime"]
        != before["MigrationsComplete"]["lastTransitionTime"]
    )


def test_weak_secret_blocks_everything_and_never_leaks(kube: FakeKube, reconciler: Reconciler) -> None:
    kube.put(secret_manifest({**STRONG_SECRETS, "JITSI_JWT_SECRET": WEAK_JWT_SECRET}, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    result = reconciler.reconcile(NS, "calls")
    assert result.blocked
    assert kube.of_kind("Deployment") == [] and kube.of_kind("Job") == []
    conditions = _conditions(kube)
    assert conditions["SecretsValid"]["status"] == "False"
    assert conditions["SecretsValid"]["reason"] == "RulesFailed"
    assert "spec.jitsi.jwt.secretRef" in conditions["SecretsValid"]["message"]
    warning = [e for e in kube.events if e["type"] == "Warning"]
    assert warning and warning[0]["reason"] == "RulesFailed"
    assert "spec.jitsi.jwt" in warning[0]["message"]
    status_text = json.dumps(kube.obj("CallPlatform", NS, "calls")["status"])  # type: ignore[index]
    assert WEAK_JWT_SECRET not in status_text
    assert all(WEAK_JWT_SECRET not in e["message"] for e in kube.events)


def test_fixing_the_secret_unblocks_without_touching_the_platform(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    kube.put(secret_manifest({**STRONG_SECRETS, "JITSI_JWT_SECRET": WEAK_JWT_SECRET}, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    reconciler.reconcile(NS, "calls")
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    reconciler.reconcile(NS, "calls")
    kube.finish_job("calls-migrate-", NS, succeeded=True)
    reconciler.reconcile(NS, "calls")
    kube.make_deployment_available(NS, "calls-calls")
    reconciler.reconcile(NS, "calls")
    assert _conditions(kube)["Ready"]["status"] == "True"


def test_failed_migration_keeps_the_old_image_then_a_fixed_image_rolls_out(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    _bring_up(kube, reconciler)
    _set_image(kube, IMAGE_2)
    reconciler.reconcile(NS, "calls")
    failed_job = kube.finish_job("calls-migrate-", NS, succeeded=False)
    kube.events.clear()
    reconciler.reconcile(NS, "calls")
    conditions = _conditions(kube)
    assert conditions["MigrationsComplete"]["status"] == "False"
    assert conditions["MigrationsComplete"]["reason"] == "MigrationFailed"
    assert failed_job in conditions["MigrationsComplete"]["message"]
    assert _deployment_image(kube) == IMAGE_1
    assert any(e["type"] == "Warning" and e["reason"] == "MigrationFailed" for e in kube.events)

    # The failed Job is cleaned up (ttlSecondsAfterFinished): the same image is not migrated again.
    del kube.objects[("Job", NS, failed_job)]
    jobs_before = len(kube.of_kind("Job"))
    reconciler.reconcile(NS, "calls")
    assert len(kube.of_kind("Job")) == jobs_before
    assert _conditions(kube)["MigrationsComplete"]["reason"] == "MigrationFailed"

    _set_image(kube, IMAGE_3)
    reconciler.reconcile(NS, "calls")
    assert _deployment_image(kube) == IMAGE_1
    kube.finish_job("calls-migrate-", NS, succeeded=True)
    reconciler.reconcile(NS, "calls")
    assert _deployment_image(kube) == IMAGE_3


def test_repeated_passes_never_duplicate_the_migration_job(kube: FakeKube, reconciler: Reconciler) -> None:
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    for _ in range(4):
        reconciler.reconcile(NS, "calls")
    assert len(kube.of_kind("Job")) == 1
    assert [w for w in kube.writes if w.startswith("apply Job")] == [w for w in kube.writes if "Job" in w][:1]


def test_secret_change_rolls_the_pods_through_the_checksum(kube: FakeKube, reconciler: Reconciler) -> None:
    _bring_up(kube, reconciler)
    deployment = kube.obj("Deployment", NS, "calls-calls")
    before = deployment["spec"]["template"]["metadata"]["annotations"]  # type: ignore[index]
    kube.put(secret_manifest({**STRONG_SECRETS, "TURN_PASSWORD": "turn-Another9Strong4Pass7"}, namespace=NS))
    reconciler.reconcile(NS, "calls")
    deployment = kube.obj("Deployment", NS, "calls-calls")
    after = deployment["spec"]["template"]["metadata"]["annotations"]  # type: ignore[index]
    assert before != after


def test_generated_secrets_are_created_once(kube: FakeKube, reconciler: Reconciler) -> None:
    values = {k: v for k, v in STRONG_SECRETS.items() if k != "JITSI_JWT_SECRET"}
    kube.put(secret_manifest(values, namespace=NS))
    manifest = platform_manifest(namespace=NS)
    manifest["spec"]["jitsi"]["jwt"]["generate"] = True
    kube.put(manifest)
    reconciler.reconcile(NS, "calls")
    first = kube.read_secret(NS, "calls-generated")
    assert first is not None and len(first["JITSI_JWT_SECRET"]) >= 64
    assert _conditions(kube)["SecretsValid"]["status"] == "True"
    reconciler.reconcile(NS, "calls")
    reconciler.reconcile(NS, "calls")
    assert kube.read_secret(NS, "calls-generated") == first
    kube.finish_job("calls-migrate-", NS, succeeded=True)
    reconciler.reconcile(NS, "calls")
    deployment = kube.obj("Deployment", NS, "calls-calls")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}  # type: ignore[index]
    assert env["JITSI_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "calls-generated"


def test_drift_is_repaired(kube: FakeKube, reconciler: Reconciler) -> None:
    _bring_up(kube, reconciler)
    del kube.objects[("ConfigMap", NS, "calls-security-headers")]
    kube.objects[("Deployment", NS, "calls-calls")]["spec"]["replicas"] = 7
    reconciler.reconcile(NS, "calls")
    assert kube.obj("ConfigMap", NS, "calls-security-headers") is not None
    assert kube.obj("Deployment", NS, "calls-calls")["spec"]["replicas"] == 2  # type: ignore[index]


def test_deleted_platform_is_forgotten(kube: FakeKube) -> None:
    gone: list[tuple[str, str]] = []
    from callplatform.reconcile import Hooks

    reconciler = Reconciler(kube, hooks=Hooks(on_gone=lambda ns, name: gone.append((ns, name))))  # type: ignore[arg-type]
    result = reconciler.reconcile(NS, "missing")
    assert not result.found
    assert gone == [(NS, "missing")]


@dataclass(frozen=True)
class _Health:
    healthy: bool
    reason: str
    message: str
    checked_at: float = 0.0


def _monitored(kube: FakeKube, health: dict[str, _Health | None]) -> Reconciler:
    reconciler = Reconciler(
        kube,  # type: ignore[arg-type]
        health=lambda namespace, name, component: health.get(component),
        clock=Clock(),
    )
    manifest = platform_manifest(namespace=NS)
    manifest["spec"]["monitoring"]["enabled"] = True
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), manifest)
    return reconciler


def test_health_awaiting_first_probe_keeps_the_platform_not_ready(kube: FakeKube) -> None:
    _monitored(kube, {})
    conditions = _conditions(kube)
    assert conditions["JitsiHealthy"]["status"] == "Unknown"
    assert conditions["JitsiHealthy"]["reason"] == "AwaitingFirstProbe"
    assert conditions["Ready"]["status"] == "False"


def test_the_acl_verdict_is_coturn_secure_and_does_not_gate_ready(kube: FakeKube) -> None:
    health: dict[str, _Health | None] = {
        "jitsi": _Health(True, "ProbesSucceeded", "All Jitsi probes passed."),
        "coturn": _Health(True, "ProbesSucceeded", "All coturn probes passed."),
        "coturn_acl": _Health(False, "TurnAclInternalPeerAllowed", "acl: relays to internal peers: 10.0.0.1"),
    }
    _monitored(kube, health)
    conditions = _conditions(kube)
    assert conditions["CoturnSecure"]["status"] == "False"
    assert conditions["CoturnSecure"]["reason"] == "TurnAclInternalPeerAllowed"
    assert "10.0.0.1" in conditions["CoturnSecure"]["message"]
    assert conditions["Ready"]["status"] == "True"


def test_health_verdicts_become_conditions_and_gate_ready(kube: FakeKube) -> None:
    health: dict[str, _Health | None] = {
        "jitsi": _Health(True, "ProbesSucceeded", "All Jitsi probes passed."),
        "coturn": _Health(True, "ProbesSucceeded", "All coturn probes passed."),
    }
    reconciler = _monitored(kube, health)
    assert _conditions(kube)["Ready"]["status"] == "True"
    kube.events.clear()
    health["coturn"] = _Health(False, "TurnAllocateFailed", "Allocate was refused.")
    reconciler.reconcile(NS, "calls")
    conditions = _conditions(kube)
    assert conditions["CoturnHealthy"]["status"] == "False"
    assert conditions["CoturnHealthy"]["reason"] == "TurnAllocateFailed"
    assert conditions["Ready"]["status"] == "False"
    status = kube.obj("CallPlatform", NS, "calls")["status"]  # type: ignore[index]
    assert status["health"]["coturn"]["status"] == "False"
    reasons = {(e["type"], e["reason"]) for e in kube.events}
    assert ("Warning", "TurnAllocateFailed") in reasons
    assert ("Warning", "NotReady") in reasons


def test_only_a_platform_in_progress_asks_to_be_looked_at_again(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    kube.put(secret_manifest({**STRONG_SECRETS, "JITSI_JWT_SECRET": WEAK_JWT_SECRET}, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    assert not reconciler.reconcile(NS, "calls").converging  # blocked: waits for a Secret change
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    assert reconciler.reconcile(NS, "calls").converging  # migration running
    kube.finish_job("calls-migrate-", NS, succeeded=True)
    assert reconciler.reconcile(NS, "calls").converging  # rollout in progress
    kube.make_deployment_available(NS, "calls-calls")
    assert not reconciler.reconcile(NS, "calls").converging
    _set_image(kube, IMAGE_2)
    reconciler.reconcile(NS, "calls")
    kube.finish_job("calls-migrate-", NS, succeeded=False)
    assert not reconciler.reconcile(NS, "calls").converging  # failed: waits for a new image


def test_turn_password_with_a_line_break_blocks_the_pass_and_is_never_written(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    injected = STRONG_SECRETS["TURN_PASSWORD"] + "\nallowed-peer-ip=10.0.0.0-10.255.255.255"
    kube.put(secret_manifest({**STRONG_SECRETS, "TURN_PASSWORD": injected}, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    result = reconciler.reconcile(NS, "calls")
    assert result.blocked
    assert kube.obj("Secret", NS, "calls-turn") is None
    conditions = _conditions(kube)
    assert conditions["SecretsValid"]["status"] == "False"
    assert "CP017" in json.dumps(kube.obj("CallPlatform", NS, "calls")["status"])  # type: ignore[index]
    status_text = json.dumps(kube.obj("CallPlatform", NS, "calls")["status"])  # type: ignore[index]
    assert STRONG_SECRETS["TURN_PASSWORD"] not in status_text and "allowed-peer-ip" not in status_text
    assert all(STRONG_SECRETS["TURN_PASSWORD"] not in e["message"] for e in kube.events)


def test_status_publishes_no_hash_of_the_turn_config(kube: FakeKube, reconciler: Reconciler) -> None:
    # Everything in turnserver.conf but the TURN secret follows from the spec, so a hash of it
    # in the status (readable by anyone who can read the CallPlatform) allows offline guessing.
    _bring_up(kube, reconciler)
    status = kube.obj("CallPlatform", NS, "calls")["status"]  # type: ignore[index]
    assert status["appliedImage"] == IMAGE_1

    def keys(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [k for key, child in value.items() for k in [str(key), *keys(child)]]
        if isinstance(value, list):
            return [k for child in value for k in keys(child)]
        return []

    assert not [key for key in keys(status) if "checksum" in key.lower() or "hash" in key.lower()]
    turn_secret = kube.obj("Secret", NS, "calls-turn")
    assert turn_secret is not None
    conf = (
        turn_secret.get("stringData", {}).get("turnserver.conf")
        or base64.b64decode(turn_secret["data"]["turnserver.conf"]).decode()
    )
    status_text = json.dumps(status)
    assert hashlib.sha256(conf.encode()).hexdigest() not in status_text
