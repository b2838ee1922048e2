"""A hung or unreachable API server fails the request with a KubeError, within the timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s_client

from callplatform.kube import DEFAULT_REQUEST_TIMEOUT, Kube, KubeError

SHORT_TIMEOUT = (0.5, 0.3)  # connect, read
# urllib3 retries an idempotent GET three times: four attempts of the read timeout, plus slack.
DEADLINE_SECONDS = 4 * sum(SHORT_TIMEOUT) + 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def _kube(port: int, errors: list[str]) -> Kube:
    configuration = k8s_client.Configuration(host=f"http://127.0.0.1:{port}")
    return Kube(k8s_client.ApiClient(configuration), on_error=errors.append, request_timeout=SHORT_TIMEOUT)


def test_the_production_default_bounds_every_request() -> None:
    api = k8s_client.ApiClient(k8s_client.Configuration(host="http://127.0.0.1:1"))
    assert Kube(api)._request_timeout == DEFAULT_REQUEST_TIMEOUT == (5.0, 30.0)


def test_a_server_that_never_answers_fails_a_get_within_the_timeout(silent_server: int) -> None:
    errors: list[str] = []
    kube = _kube(silent_server, errors)
    started = time.monotonic()
    with pytest.raises(KubeError) as caught:
        kube.get("v1", "ConfigMap", "default", "anything")
    assert time.monotonic() - started < DEADLINE_SECONDS
    assert caught.value.status == 0
    assert caught.value.operation == "get ConfigMap"
    assert "127.0.0.1" not in str(caught.value) and "/api/" not in str(caught.value)
    assert errors == ["get ConfigMap"]


def test_a_hung_apply_fails_without_quoting_the_url_or_body(silent_server: int) -> None:
    errors: list[str] = []
    kube = _kube(silent_server, errors)
    desired = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"},
        "data": {"key": "value-in-the-body"},
    }
    started = time.monotonic()
    with pytest.raises(KubeError) as caught:
        kube.apply(desired, None)
    assert time.monotonic() - started < DEADLINE_SECONDS
    message = str(caught.value)
    assert caught.value.status == 0
    assert "fieldManager" not in message and "value-in-the-body" not in message
    assert "Timeout" in message  # a bounded reason: exception type names
    assert errors == ["apply ConfigMap"]


def test_a_refused_port_is_a_kube_error() -> None:
    errors: list[str] = []
    kube = _kube(_free_port(), errors)
    started = time.monotonic()
    with pytest.raises(KubeError) as caught:
        kube.list("v1", "ConfigMap", "default")
    assert time.monotonic() - started < DEADLINE_SECONDS
    assert caught.value.status == 0
    assert "127.0.0.1" not in str(caught.value)
    assert errors == ["list ConfigMap"]
