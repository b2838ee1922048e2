"""The health registry: first failing probe decides the CamelCase reason; changes are detected."""

from __future__ import annotations

from callplatform.probes.health import HEALTHY_REASON, HealthRegistry, condition_reason, summarise
from callplatform.probes.result import ProbeResult, failure


def ok(component: str, probe: str) -> ProbeResult:
    return ProbeResult(component, probe, True, message=f"{probe} fine {id(object())}")


def test_healthy_summary_is_stable_across_rounds() -> None:
    registry = HealthRegistry()
    first = [ok("coturn", "udp"), ok("coturn", "allocate")]
    assert registry.update("ns", "p", "coturn", first, 1.0) is True
    assert registry.update("ns", "p", "coturn", [ok("coturn", "udp"), ok("coturn", "allocate")], 2.0) is False
    health = registry.component_health("ns", "p", "coturn")
    assert health is not None
    assert (health.healthy, health.reason, health.message, health.checked_at) == (
        True, HEALTHY_REASON, "2 probes succeeded", 2.0,
    )  # fmt: skip


def test_first_failing_probe_in_probe_order_decides() -> None:
    results = [
        failure("coturn", "allocate", "auth_failed", "Allocate rejected: 401 Unauthorized"),
        ok("coturn", "udp"),
        failure("coturn", "tls", "cert_expiring", "TLS certificate expires in 3.0 days"),
    ]
    health = summarise("coturn", results, 5.0)
    assert not health.healthy
    assert health.reason == "TurnTlsCertExpiring"
    assert health.message == "tls: TLS certificate expires in 3.0 days (and 1 more failing)"
    assert [r.probe for r in health.probes] == ["udp", "tls", "allocate"]


def test_condition_reasons() -> None:
    assert condition_reason(failure("coturn", "allocate", "auth_failed", "x")) == "TurnAllocateAuthFailed"
    assert condition_reason(failure("jitsi", "jvb", "timeout", "x")) == "JitsiJvbTimeout"
    assert condition_reason(failure("jitsi", "jwt", "weak_secret", "x")) == "JitsiJwtWeakSecret"


def test_transitions_are_changes_and_removal_forgets() -> None:
    registry = HealthRegistry()
    registry.update("ns", "p", "coturn", [ok("coturn", "udp")], 1.0)
    assert registry.update("ns", "p", "coturn", [failure("coturn", "udp", "timeout", "no answer")], 2.0)
    assert not registry.update("ns", "p", "coturn", [failure("coturn", "udp", "timeout", "no answer")], 3.0)
    assert registry.update(
        "ns", "p", "coturn", [failure("coturn", "udp", "refused", "connection refused")], 4.0
    )
    assert registry.update("ns", "p", "coturn", [ok("coturn", "udp")], 5.0)
    assert registry.platforms() == [("ns", "p")]
    registry.remove("ns", "p")
    assert registry.component_health("ns", "p", "coturn") is None
    assert registry.platforms() == []
