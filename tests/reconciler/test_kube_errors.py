"""API failures name the operation, the object, the HTTP code and the Status reason; the server's
message only in the exception's text, and never for a Secret (its messages might quote a value)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from kubernetes import client as k8s_client

from callplatform.kube import Kube, KubeError, ObjectRef, _status_fields
from probes.servers import running_health_server  # tests/ is on sys.path (its conftest)

SECRET_VALUE = "hunter2-in-a-validation-message"


def test_status_fields_are_the_reason_and_the_message() -> None:
    body = json.dumps({"kind": "Status", "reason": "Invalid", "message": "spec.replicas: must be >= 0"})
    assert _status_fields(body.encode()) == ("Invalid", "spec.replicas: must be >= 0")
    assert _status_fields(b"not json") == ("", "")
    assert _status_fields(b"[1, 2]") == ("", "")


def test_summary_names_operation_object_code_and_reason_only() -> None:
    error = KubeError(
        "apply Service",
        500,
        "InternalError",
        target=ObjectRef("Service", "calls", "p0-calls"),
        detail="Internal error occurred: failed to allocate a serviceIP: range is full",
    )
    assert error.summary() == "apply Service calls/p0-calls: HTTP 500 InternalError"
    assert (
        str(error)
        == f"{error.summary()}: Internal error occurred: failed to allocate a serviceIP: range is full"
    )
    status = KubeError(
        "patch CallPlatform status", 403, "Forbidden", target=ObjectRef("CallPlatform", "ns", "p", "status")
    )
    assert status.summary() == "patch CallPlatform ns/p status: HTTP 403 Forbidden"
    assert KubeError("discover v1", 0, "ProtocolError").summary() == "discover v1: HTTP 0 ProtocolError"
    assert str(ObjectRef("Job", "ns")) == "Job in ns"


class _StatusServer(BaseHTTPRequestHandler):
    """Answers every request like an API server refusing it: a Status with a code, reason and message."""

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        code, reason = (422, "Invalid") if "/secrets" in self.path else (500, "InternalError")
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": code,
                "reason": reason,
                "message": f"refused: value {SECRET_VALUE!r} is not allowed",
            }
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = do_POST = _refuse

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def refusing_kube() -> Iterator[Kube]:
    with running_health_server(_StatusServer) as base:
        yield Kube(k8s_client.ApiClient(k8s_client.Configuration(host=base)))


def test_a_refused_apply_carries_the_object_and_the_status_reason(refusing_kube: Kube) -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p0-calls", "namespace": "calls"}}
    with pytest.raises(KubeError) as caught:
        refusing_kube.apply(service, None)
    error = caught.value
    assert (error.status, error.reason, error.target) == (
        500,
        "InternalError",
        ObjectRef("Service", "calls", "p0-calls"),
    )
    assert error.summary() == "apply Service calls/p0-calls: HTTP 500 InternalError"
    assert "refused: value" in str(error)  # the server's explanation, for the log
    assert SECRET_VALUE not in error.summary()


def test_a_refused_secret_never_carries_the_servers_message(refusing_kube: Kube) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "calls-turn", "namespace": "calls"},
              "stringData": {"turnserver.conf": "user=calls:" + SECRET_VALUE}}  # fmt: skip
    with pytest.raises(KubeError) as caught:
        refusing_kube.apply(secret, None)
    assert (caught.value.status, caught.value.reason) == (422, "Invalid")
    assert str(caught.value) == "apply Secret calls/calls-turn: HTTP 422 Invalid"
    assert SECRET_VALUE not in repr(caught.value.args)
