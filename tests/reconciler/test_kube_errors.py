"""API failures name the operation and the server's reason, never a Secret's content."""

from __future__ import annotations

import json

from callplatform.kube import KubeError, _failure_detail


def test_failure_detail_keeps_the_servers_explanation() -> None:
    body = json.dumps({"reason": "Invalid", "message": "spec.replicas: must be >= 0"}).encode()
    detail = _failure_detail("apply Deployment", body)
    assert detail == "Invalid: spec.replicas: must be >= 0"
    assert (
        str(KubeError("apply Deployment", 422, detail))
        == "apply Deployment: HTTP 422 Invalid: spec.replicas: must be >= 0"
    )


def test_failure_detail_for_secrets_is_only_the_reason() -> None:
    body = json.dumps(
        {"reason": "Invalid", "message": "data[TURN_PASSWORD]: value 'hunter2' is invalid"}
    ).encode()
    assert _failure_detail("apply Secret", body) == "Invalid"
    assert _failure_detail("get Secret", b"not json") == ""
