"""Generated secrets and the Secret values a platform reads.

A generated value is created once, stored in the platform's own `<name>-generated`
Secret, and read back on every later pass: a key the user already provides always wins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as random_source
from collections.abc import Mapping
from typing import Any

from callplatform.model import Platform, SecretKeyRef
from callplatform.render.labels import metadata, object_name

SecretValues = Mapping[str, Mapping[str, str]]  # Secret name -> key -> decoded value

# 48 random bytes, 64 URL-safe characters: far above any minimum the rules ask for.
GENERATED_SECRET_BYTES = 48


def generated_secret_name(platform: Platform) -> str:
    return object_name(platform, "generated")


def generatable_refs(platform: Platform) -> list[SecretKeyRef]:
    """References the spec allows the operator to fill in when the user left them empty."""
    refs: list[SecretKeyRef] = []
    if platform.jitsi.jwt.generate:
        refs.append(platform.jitsi.jwt.secret_ref)
    creds = platform.turn.credentials
    if creds.generate and creds.mode == "rest":
        refs.append(creds.shared_secret_ref)
    return refs


def _provided(secrets: SecretValues, ref: SecretKeyRef) -> bool:
    return bool(secrets.get(ref.name, {}).get(ref.key))


def missing_generated_keys(
    platform: Platform, secrets: SecretValues, generated: Mapping[str, str]
) -> list[str]:
    """Keys of the generated Secret that must be created now (neither the user nor a past pass has them)."""
    return [
        ref.key
        for ref in generatable_refs(platform)
        if not _provided(secrets, ref) and not generated.get(ref.key)
    ]


def new_secret_value() -> str:
    return random_source.token_urlsafe(GENERATED_SECRET_BYTES)


def effective_ref(platform: Platform, ref: SecretKeyRef, secrets: SecretValues) -> SecretKeyRef:
    """Where a value really lives: the user's Secret, or the generated one when the user's key is empty."""
    if ref in generatable_refs(platform) and not _provided(secrets, ref):
        return SecretKeyRef(generated_secret_name(platform), ref.key)
    return ref


def effective_secrets(
    platform: Platform, secrets: SecretValues, generated: Mapping[str, str]
) -> SecretValues:
    """The user's Secret values with generated values filled in where the user's are missing.

    The rules engine and the renderers read this, so a generated secret is checked like any other.
    """
    merged: dict[str, dict[str, str]] = {name: dict(data) for name, data in secrets.items()}
    for ref in generatable_refs(platform):
        value = generated.get(ref.key)
        if value and not _provided(secrets, ref):
            merged.setdefault(ref.name, {})[ref.key] = value
    return merged


def render_generated_secret(platform: Platform, generated: Mapping[str, str]) -> dict[str, Any] | None:
    if not generatable_refs(platform):
        return None
    return secret_manifest(platform, generated_secret_name(platform), "generated-secrets", generated)


def secret_manifest(platform: Platform, name: str, component: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(platform, name, component),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in sorted(data.items())},
    }


def secrets_checksum(platform: Platform, secrets: SecretValues) -> str:
    """A digest of every value the app reads from Secrets: it changes when any of them changes."""
    values = {
        f"{ref.name}/{ref.key}": secrets.get(ref.name, {}).get(ref.key, "")
        for _, ref in platform.secret_refs()
    }
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
