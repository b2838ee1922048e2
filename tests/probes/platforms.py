"""CallPlatform manifests for probe tests, pointing at local servers."""

from __future__ import annotations

from typing import Any


def platform_manifest(
    *,
    name: str = "probed",
    namespace: str = "calls",
    environment: str = "staging",
    turn_host: str = "127.0.0.1",
    turn_port: int = 3478,
    tls_port: int = 5349,
    turn_name: str = "localhost",
    mode: str = "static",
    public_host: str = "meet.example.org",
    probes: dict[str, str] | None = None,
    interval: int = 30,
    jwt_ref_name: str = "calls-secrets",
) -> dict[str, Any]:
    return {
        "apiVersion": "callplatform.io/v1alpha1",
        "kind": "CallPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "environment": environment,
            "jitsi": {
                "domain": "meet.probe.test",
                "publicHost": public_host,
                "jwt": {"appId": "calls", "secretRef": {"name": jwt_ref_name, "key": "JITSI_JWT_SECRET"}},
                "probes": probes or {},
            },
            "turn": {
                "host": turn_name,
                "probeHost": turn_host,
                "port": turn_port,
                "tlsPort": tls_port,
                "credentials": {"mode": mode, "secretRef": {"name": "calls-secrets"}},
            },
            "database": {"urlSecretRef": {"name": "calls-secrets", "key": "DATABASE_URL"}},
            "calls": {"image": "registry.example.org/calls:1.0.0"},
            "monitoring": {"probeIntervalSeconds": interval},
        },
    }
