"""Pure pieces: condition lists, transitions, and the "does live already match" check."""

from __future__ import annotations

from callplatform.conditions import ConditionState, build_conditions, ready_condition, transitions
from callplatform.kube import APPLIED_HASH_ANNOTATION, matches, needs_apply, stamped

T0, T1 = "2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z"


def _states(secrets_status: str = "True") -> list[ConditionState]:
    return [
        ConditionState(
            "SecretsValid", secrets_status, "RulesPassed" if secrets_status == "True" else "RulesFailed", "m"
        ),
        ConditionState("TurnConfigured", "True", "TurnConfigApplied", "m"),
        ConditionState("JitsiHealthy", "Unknown", "MonitoringDisabled", "m", gates_ready=False),
    ]


def test_ready_is_the_conjunction_of_gating_conditions() -> None:
    assert ready_condition(_states()).status == "True"
    blocked = ready_condition(_states("False"))
    assert blocked.status == "False"
    assert blocked.reason == "RulesFailed"
    assert "SecretsValid=False" in blocked.message
    assert (
        ready_condition(
            [*_states(), ConditionState("CoturnHealthy", "Unknown", "AwaitingFirstProbe", "m")]
        ).status
        == "False"
    )


def test_transition_time_is_kept_unless_the_status_changes() -> None:
    first = build_conditions(_states(), [], generation=1, now=T0)
    assert {c["lastTransitionTime"] for c in first} == {T0}
    same = build_conditions(_states(), first, generation=2, now=T1)
    assert {c["lastTransitionTime"] for c in same} == {T0}
    assert {c["observedGeneration"] for c in same} == {2}
    changed = {c["type"]: c for c in build_conditions(_states("False"), first, generation=2, now=T1)}
    assert changed["SecretsValid"]["lastTransitionTime"] == T1
    assert changed["Ready"]["lastTransitionTime"] == T1
    assert changed["TurnConfigured"]["lastTransitionTime"] == T0


def test_ready_comes_first_and_every_condition_is_complete() -> None:
    conditions = build_conditions(_states(), [], generation=3, now=T0)
    assert conditions[0]["type"] == "Ready"
    for condition in conditions:
        assert set(condition) == {
            "type",
            "status",
            "reason",
            "message",
            "observedGeneration",
            "lastTransitionTime",
        }
        assert condition["reason"][0].isupper() and " " not in condition["reason"]


def test_transitions_only_report_changes() -> None:
    first = build_conditions(_states(), [], generation=1, now=T0)
    assert {t.type for t in transitions([], first)} == {c["type"] for c in first}
    assert transitions(first, build_conditions(_states(), first, generation=1, now=T1)) == []
    changed = transitions(first, build_conditions(_states("False"), first, generation=1, now=T1))
    assert {t.type for t in changed} == {"Ready", "SecretsValid"}


def test_matches_ignores_server_defaults_but_not_drift() -> None:
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    live = {
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}]}
            },
        },
        "status": {"replicas": 2},
    }
    assert matches(desired, live)
    live["spec"]["replicas"] = 3
    assert not matches(desired, live)
    live["spec"]["replicas"] = 2
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "y"
    assert not matches(desired, live)


def test_matches_lists() -> None:
    assert matches(
        {"env": [{"name": "A", "value": "1"}]},
        {"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
    )
    assert not matches({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A", "value": "2"}]})
    assert matches({"command": ["npm", "start"]}, {"command": ["npm", "start"]})
    assert not matches({"command": ["npm", "start"]}, {"command": ["npm", "start", "--x"]})
    assert not matches({"data": {"k": "v"}}, {})


def _deployment(**container: object) -> dict[str, object]:
    spec = {"containers": [{"name": "calls", "image": "calls:1", **container}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "calls"}, "spec": spec}


def test_a_removed_field_needs_an_apply_though_the_live_object_still_matches() -> None:
    before = stamped(_deployment(resources={"limits": {"cpu": "1"}}))
    after = stamped(_deployment())
    assert not needs_apply(before, before)
    assert matches(_deployment(), before), "the field comparison alone cannot see the removal"
    assert needs_apply(after, before)
    assert not needs_apply(after, after)


def test_a_secrets_applied_hash_covers_key_names_not_values() -> None:
    def secret(value: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": value}}

    one, other = stamped(secret("dmFsdWUx")), stamped(secret("dmFsdWUy"))
    annotation = one["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    assert annotation == other["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    assert needs_apply(other, one), "a changed value is still seen by the field comparison"
