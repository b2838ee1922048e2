"""A valid platform, its Secret and env file, for the rules tests to break one field at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CRD_FILE = ROOT / "crds" / "callplatform.io_callplatforms.yaml"

# Realistic secret values that pass every rule; tests look for them in every output.
GOOD_SECRETS: dict[str, str] = {
    "DATABASE_URL": "postgresql://calls:Zr8pQ2vLx7Nd4KwT@db.calls.svc:5432/calls?sslmode=require",
    "JITSI_JWT_SECRET": "S3cr3t-JWT-value-Wq9Xe4Rt7Yu2Io5Pa8Sd1Fg6Hj",
    "TURN_USERNAME": "calls-turn-user",
    "TURN_PASSWORD": "Tp9Lk3Mn7Bv2Cx5Zq8W",
    "TURN_SHARED_SECRET": "Ts4Gh8Jk2Lq6Wp9Er3Ty7Ui1Op5As0Df",
    "DEMO_USER_PASSWORD": "$2b$12$hVVaKfWbHsIlyLtR6iowbeGsclHAcuiqtf36hr7Y7C3KnpQbshypu",
}


def valid_manifest(environment: str = "production") -> dict[str, Any]:
    return {
        "apiVersion": "callplatform.io/v1alpha1",
        "kind": "CallPlatform",
        "metadata": {"name": "calls", "namespace": "team-a"},
        "spec": {
            "environment": environment,
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
                        "sharedSecretKey": "TURN_SHARED_SECRET",
                    },
                },
                "relay": {"allowedPeerCIDRs": []},
            },
            "database": {"urlSecretRef": {"name": "calls-secrets", "key": "DATABASE_URL"}},
            "calls": {
                "image": "registry.example.com/calls-backend:1.4.2",
                "replicas": 2,
                "allowUnsafeInlineStyles": False,
            },
            "demoSeed": {
                "enabled": False,
                "passwordSecretRef": {"name": "calls-secrets", "key": "DEMO_USER_PASSWORD"},
            },
        },
    }


def good_env() -> dict[str, str]:
    return {
        "DATABASE_URL": GOOD_SECRETS["DATABASE_URL"],
        "JITSI_JWT_SECRET": GOOD_SECRETS["JITSI_JWT_SECRET"],
        "JITSI_DOMAIN": "meet.internal.example",
        "JITSI_PUBLIC_HOST": "meet.example.com",
        "TURN_HOST": "turn.example.com",
        "TURN_USERNAME": GOOD_SECRETS["TURN_USERNAME"],
        "TURN_PASSWORD": GOOD_SECRETS["TURN_PASSWORD"],
        "DEMO_USER_PASSWORD": GOOD_SECRETS["DEMO_USER_PASSWORD"],
        "ALLOW_DEMO_SEED": "false",
    }


def set_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with the dotted `path` set to `value` (creating objects on the way)."""
    result = copy.deepcopy(obj)
    node = result
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return result
