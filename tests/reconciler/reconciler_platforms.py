"""CallPlatform manifests and Secrets for the reconciler tests."""

from __future__ import annotations

import copy
from typing import Any

STRONG_SECRETS = {
    "DATABASE_URL": "postgresql://calls:Hf3Kd7Ls2QpW9xVb4Nm8@postgres.calls.svc:5432/calls?sslmode=require",
    "JITSI_JWT_SECRET": "jwt-7Kq2vN9xR4mT8wZ1bY6cH3fJ5pL0sD2gA8",
    "TURN_USERNAME": "calls",
    "TURN_PASSWORD": "turn-Xb7Qm2Rk9Vw4Ny6TzP3",
}
WEAK_JWT_SECRET = "changeme"

_BASE: dict[str, Any] = {
    "apiVersion": "callplatform.io/v1alpha1",
    "kind": "CallPlatform",
    "metadata": {"name": "calls"},
    "spec": {
        "environment": "production",
        "jitsi": {
            "domain": "meet.internal.example",
            "publicHost": "meet.example.com",
            "jwt": {"appId": "calls", "secretRef": {"name": "calls-secrets", "key": "JITSI_JWT_SECRET"}},
        },
        "turn": {
            "host": "turn.example.com",
            "credentials": {
                "mode": "static",
                "secretRef": {
                    "name": "calls-secrets",
                    "usernameKey": "TURN_USERNAME",
                    "passwordKey": "TURN_PASSWORD",
                },
            },
            "relay": {"allowedPeerCIDRs": [], "minPort": 49152, "maxPort": 65535},
        },
        "database": {
            "urlSecretRef": {"name": "calls-secrets", "key": "DATABASE_URL"},
            "metricsEnabled": False,
        },
        "calls": {"image": "registry.example.com/calls-backend:1.4.2", "replicas": 2},
        "demoSeed": {"enabled": False},
        "monitoring": {"enabled": False},
    },
}


def platform_manifest(
    *, name: str = "calls", namespace: str = "", environment: str = "production", image: str = ""
) -> dict[str, Any]:
    manifest = copy.deepcopy(_BASE)
    manifest["metadata"]["name"] = name
    if namespace:
        manifest["metadata"]["namespace"] = namespace
    manifest["spec"]["environment"] = environment
    if image:
        manifest["spec"]["calls"]["image"] = image
    return manifest


def secret_manifest(
    values: dict[str, str], *, name: str = "calls-secrets", namespace: str = ""
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": dict(values),
    }
