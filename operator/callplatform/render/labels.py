"""Names, labels and owner references shared by every object a platform owns."""

from __future__ import annotations

import hashlib
from typing import Any

from callplatform.model import Platform

MANAGED_BY = "callplatform-operator"
PART_OF = "callplatform"
API_VERSION = "callplatform.io/v1alpha1"
KIND = "CallPlatform"

INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"

# Kubernetes object names that become label values (Job names do) must stay within 63 characters.
MAX_NAME_LENGTH = 63


def object_name(platform: Platform, suffix: str) -> str:
    """`<platform>-<suffix>`, shortened with a hash of the full name when it would not fit."""
    full = f"{platform.name}-{suffix}"
    if len(full) <= MAX_NAME_LENGTH:
        return full
    digest = short_hash(full, 8)
    keep = MAX_NAME_LENGTH - len(suffix) - len(digest) - 2
    return f"{platform.name[:keep].rstrip('-')}-{digest}-{suffix}"


def short_hash(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def selector_labels(platform: Platform, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "calls" if component == "calls" else f"calls-{component}",
        INSTANCE_LABEL: platform.name,
        COMPONENT_LABEL: component,
    }


def common_labels(platform: Platform, component: str) -> dict[str, str]:
    return {
        **selector_labels(platform, component),
        "app.kubernetes.io/part-of": PART_OF,
        MANAGED_BY_LABEL: MANAGED_BY,
    }


def owner_reference(platform: Platform) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": platform.name,
        "uid": platform.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(platform: Platform, name: str, component: str) -> dict[str, Any]:
    """Metadata of an owned object. The owner reference is left out when the uid is unknown (offline)."""
    meta: dict[str, Any] = {"name": name, "labels": common_labels(platform, component)}
    if platform.namespace:
        meta["namespace"] = platform.namespace
    if platform.uid:
        meta["ownerReferences"] = [owner_reference(platform)]
    return meta
