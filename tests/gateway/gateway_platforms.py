"""A CallPlatform manifest with spec.gateway, for the HTTPRoute and headers-probe tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from callplatform.model import Platform, parse_platform

BASE: dict[str, Any] = {
    "apiVersion": "callplatform.io/v1alpha1",
    "kind": "CallPlatform",
    "metadata": {"name": "prod", "namespace": "calls"},
    "spec": {
        "environment": "production",
        "jitsi": {
            "domain": "meet.internal.test",
            "publicHost": "meet.calls.test",
            "jwt": {"appId": "calls", "secretRef": {"name": "calls-secrets", "key": "JITSI_JWT_SECRET"}},
        },
        "turn": {
            "host": "turn.calls.test",
            "credentials": {"mode": "static", "secretRef": {"name": "calls-secrets"}},
        },
        "database": {"urlSecretRef": {"name": "calls-secrets", "key": "DATABASE_URL"}},
        "calls": {"image": "registry.test/calls:1.0.0"},
        "gateway": {
            "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
            "hostname": "app.calls.test",
        },
    },
}


def gateway_manifest(
    *, namespace: str = "calls", environment: str = "production", gateway: dict[str, Any] | None = None
) -> dict[str, Any]:
    manifest = copy.deepcopy(BASE)
    manifest["metadata"]["namespace"] = namespace
    manifest["spec"]["environment"] = environment
    if gateway is not None:
        manifest["spec"]["gateway"] = gateway
    return manifest


def gateway_platform(**kwargs: Any) -> Platform:
    return parse_platform(gateway_manifest(**kwargs))


def manifest_file(tmp_path: Any, manifest: dict[str, Any]) -> str:
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return str(path)
