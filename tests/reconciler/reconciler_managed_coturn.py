"""A managed-coturn CallPlatform (spec.turn.server) and its TLS Secret, for the coturn tests."""

from __future__ import annotations

from typing import Any

from reconciler_platforms import platform_manifest, secret_manifest

TLS_SECRET = "turn-tls"


def managed_manifest(
    *,
    name: str = "calls",
    namespace: str = "",
    mode: str = "Deployment",
    tls: bool = True,
    environment: str = "production",
    **server: Any,
) -> dict[str, Any]:
    manifest = platform_manifest(name=name, namespace=namespace, environment=environment)
    turn = manifest["spec"]["turn"]
    turn["server"] = {"managed": True, "mode": mode, **server}
    if mode == "Deployment":
        turn["server"].setdefault("replicas", 2)
    if tls:
        turn["tls"] = {"secretRef": {"name": TLS_SECRET}}
    return manifest


def tls_secret_manifest(cert: str, key: str, *, namespace: str = "") -> dict[str, Any]:
    secret = secret_manifest({"tls.crt": cert, "tls.key": key}, name=TLS_SECRET, namespace=namespace)
    return {**secret, "type": "kubernetes.io/tls"}
