"""The rendered Deployment is what the real API server stores, so an idle pass finds nothing to write.

`callplatform.kube.matches` compares desired and live field by field. The API server normalises
what it stores (quantities to canonical form, `value: ""` and `command: []` dropped), so the
renderer must write those fields the way they come back, or every pass patches the Deployment.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from reconciler_platforms import STRONG_SECRETS, platform_manifest

from callplatform.kube import matches
from callplatform.model import parse_platform
from callplatform.render import render_platform
from callplatform.render.workloads import canonical_quantity

pytestmark = pytest.mark.cluster

# The brief's `requests.cpu: 1` with `limits.cpu: "0.5"` is refused by the API server (a request
# above its limit), so the same spellings are spread over requests and limits the other way round.
RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "0.5", "memory": "512Mi", "ephemeral-storage": "1G"},
    "limits": {"cpu": 1, "memory": "1024Mi", "ephemeral-storage": "2000Mi"},
}


def test_server_side_applied_deployment_reads_back_as_rendered(kube_cluster: Any, namespace: str) -> None:
    manifest = platform_manifest(namespace=namespace, environment="development")
    manifest["metadata"]["uid"] = "0b4c7e2a-1111-2222-3333-444455556666"
    manifest["spec"]["jitsi"]["jwt"]["appId"] = ""
    manifest["spec"]["calls"]["resources"] = RESOURCES
    manifest["spec"]["calls"]["command"] = []
    desired = render_platform(parse_platform(manifest), {"calls-secrets": dict(STRONG_SECRETS)}).deployment
    assert desired is not None
    desired["metadata"].pop("ownerReferences", None)  # no CallPlatform object owns it here
    name = desired["metadata"]["name"]

    kube_cluster.kubectl(
        "-n", namespace, "apply", "--server-side", "--field-manager=roundtrip-test", "-f", "-",
        input=json.dumps(desired),
    )  # fmt: skip
    live = json.loads(kube_cluster.kubectl("-n", namespace, "get", "deployment", name, "-o", "json").stdout)

    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1G"},
        "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2000Mi"},
    }
    assert {"name": "JITSI_APP_ID"} in container["env"]
    assert "command" not in container
    assert matches(desired, live), "the API server normalised a field the renderer writes differently"


# Spellings a spec may use, each as memory and as cpu requests; the API server's answer is the oracle.
QUANTITIES: list[Any] = [
    1, 0.5, 2.5, 1000, "1", "0.5", "0.1", "1500m", "1000m", "1024Mi", "1G", "1.5G", "512Mi", "1.5Gi",
    "2000Mi", "0.5Ki", "1Ki", "1536", "1e3", "1.5e3", "100u", "1.0001", "0.0001Ki", "0", "3E3", "1k", "1M",
]  # fmt: skip


def test_canonical_quantity_is_what_the_api_server_stores(kube_cluster: Any, namespace: str) -> None:
    containers = [
        {
            "name": f"c{index}",
            "image": "registry.example.com/pause:1",
            "resources": {"requests": {"cpu": quantity, "memory": quantity}},
        }
        for index, quantity in enumerate(QUANTITIES)
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "quantities"},
        "spec": {"containers": containers},
    }
    stored = json.loads(
        kube_cluster.kubectl(
            "-n", namespace, "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod)
        ).stdout
    )
    wrong = [
        (quantity, resource, canonical_quantity(quantity), stored_value)
        for quantity, container in zip(QUANTITIES, stored["spec"]["containers"], strict=True)
        for resource, stored_value in container["resources"]["requests"].items()
        if canonical_quantity(quantity) != stored_value
    ]
    assert wrong == [], json.dumps(wrong)
