"""Judging a managed coturn: whether it can run here, and whether it runs (TurnServerReady).

Pure functions over what the reconcile pass read; the pass applies the objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callplatform.conditions import FALSE, TRUE, TURN_SERVER_READY, ConditionState
from callplatform.model import Platform
from callplatform.render.coturn_server import TLS_CERT_KEY, TLS_KEY_KEY

POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
# Pod Security levels that refuse hostNetwork pods (only `privileged` admits them).
FORBIDS_HOST_NETWORK = ("baseline", "restricted")
PROGRESSING = "TurnServerProgressing"
AVAILABLE = "TurnServerAvailable"
FORBIDDEN_BY_POD_SECURITY = "PodSecurityForbidsHostNetwork"
TLS_SECRET_MISSING = "TlsSecretMissing"


def pod_security_state(platform: Platform, namespace: Mapping[str, Any] | None) -> ConditionState | None:
    """A failing TurnServerReady when the namespace's Pod Security level refuses hostNetwork pods.

    The DaemonSet would be accepted, but every pod it creates refused: the DaemonSet would sit at
    zero pods with the reason only in its Events. None when nothing stands in the way.
    """
    if not platform.turn.server.host_network or namespace is None:
        return None
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    level = str(labels.get(POD_SECURITY_ENFORCE, ""))
    if level not in FORBIDS_HOST_NETWORK:
        return None
    return ConditionState(
        TURN_SERVER_READY,
        FALSE,
        FORBIDDEN_BY_POD_SECURITY,
        f"Namespace {platform.namespace} enforces Pod Security level {level!r}, which refuses "
        "hostNetwork pods, so spec.turn.server.mode DaemonSet cannot start coturn there. Label the "
        f"namespace {POD_SECURITY_ENFORCE}=privileged, or use mode Deployment.",
    )


def tls_secret_state(platform: Platform, tls: Mapping[str, str] | None) -> ConditionState | None:
    """A failing TurnServerReady when the TLS Secret the pods would mount is absent or incomplete
    (the pods would wait in ContainerCreating). Names the Secret and keys, never their values."""
    name = platform.turn.tls_secret_name
    if not name:
        return None
    if tls is None:
        problem = f"Secret {name!r} (spec.turn.tls.secretRef) does not exist"
    else:
        missing = [key for key in (TLS_CERT_KEY, TLS_KEY_KEY) if not tls.get(key)]
        if not missing:
            return None
        problem = f"Secret {name!r} (spec.turn.tls.secretRef) has no {' or '.join(missing)}"
    return ConditionState(
        TURN_SERVER_READY,
        FALSE,
        TLS_SECRET_MISSING,
        f"{problem}; coturn is not started until it has both {TLS_CERT_KEY} and {TLS_KEY_KEY}.",
    )


def _count(status: Mapping[str, Any], key: str) -> int:
    return int(status.get(key) or 0)


def workload_state(workload: Mapping[str, Any] | None) -> ConditionState:
    """TurnServerReady from the coturn Deployment's or DaemonSet's own status."""
    if workload is None:
        return ConditionState(
            TURN_SERVER_READY, FALSE, PROGRESSING, "The coturn workload is not created yet."
        )
    meta = workload.get("metadata") or {}
    kind, name = str(workload.get("kind", "")), str(meta.get("name", ""))
    status = workload.get("status") or {}
    observed = _count(status, "observedGeneration") >= int(meta.get("generation") or 0)
    if kind == "DaemonSet":
        wanted = _count(status, "desiredNumberScheduled")
        ready = _count(status, "numberAvailable")
        updated = _count(status, "updatedNumberScheduled")
        done = observed and wanted > 0 and ready >= wanted and updated >= wanted
        counts = f"{ready}/{wanted} node(s) available, {updated} updated"
    else:
        wanted = int((workload.get("spec") or {}).get("replicas", 1))
        ready = _count(status, "availableReplicas")
        updated = _count(status, "updatedReplicas")
        old = _count(status, "replicas") > wanted
        done = observed and ready >= wanted and updated >= wanted and not old
        counts = f"{ready}/{wanted} available, {updated} updated"
    if done:
        return ConditionState(TURN_SERVER_READY, TRUE, AVAILABLE, f"coturn {kind} {name}: {counts}.")
    return ConditionState(TURN_SERVER_READY, FALSE, PROGRESSING, f"coturn {kind} {name}: {counts}.")
