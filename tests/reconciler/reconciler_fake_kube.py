"""An in-memory stand-in for callplatform.kube.Kube, for fast tests of the reconcile logic.

It keeps objects by (kind, namespace, name), applies by deep-merging like a single
field manager would, and records every write. The real API server is exercised
by the cluster tests; this one only has to be faithful about what a pass reads and writes.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from callplatform.kube import needs_apply, stamped

Key = tuple[str, str, str]


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.reads: list[str] = []  # every get/list/discovery a pass made, like the audit log's reads
        self.events: list[dict[str, str]] = []
        self._generation = 0

    # --- test helpers ---
    def put(self, manifest: dict[str, Any]) -> dict[str, Any]:
        manifest = copy.deepcopy(manifest)
        meta = manifest.setdefault("metadata", {})
        if "stringData" in manifest:
            manifest["data"] = {
                k: base64.b64encode(v.encode()).decode() for k, v in manifest.pop("stringData").items()
            }
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["generation"] = int(meta.get("generation", 0)) + 1
        self.objects[(manifest["kind"], meta.get("namespace", ""), meta["name"])] = manifest
        return manifest

    def obj(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in self.objects.items() if k == kind]

    # --- the Kube interface used by Reconciler ---
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"get {kind}/{name}")
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        self.reads.append(f"list {kind}")
        wanted = (label_selector or {}).items()
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and namespace in (None, ns)
            and wanted <= (o.get("metadata", {}).get("labels") or {}).items()
        ]

    def list_snapshot(
        self, api_version: str, kind: str, namespace: str | None, label_selector: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        return self.list(api_version, kind, namespace, label_selector), "0"

    def serves(self, group_version: str, plural: str) -> bool:
        self.reads.append(f"discover {group_version}")
        return False

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(f"get Secret/{name}")
        secret = self.objects.get(("Secret", namespace, name))
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def apply(self, desired: dict[str, Any], live: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        desired = stamped(desired)
        if not needs_apply(desired, live):
            assert live is not None
            return live, False
        meta = desired["metadata"]
        key = (desired["kind"], meta["namespace"], meta["name"])
        current = self.objects.get(key)
        merged = _merge(current or {}, desired)
        if current is None or merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = (
                int((current or {}).get("metadata", {}).get("generation", 0)) + 1
            )
        self.objects[key] = merged
        self.writes.append(f"apply {desired['kind']}/{meta['name']}")
        return copy.deepcopy(merged), True

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        platform = self.objects[("CallPlatform", namespace, name)]
        platform["status"] = _merge(platform.get("status") or {}, status)
        self.writes.append("status")
        return copy.deepcopy(platform)

    def post_event(
        self, regarding: dict[str, Any], *, event_type: str, reason: str, message: str, action: str = ""
    ) -> None:
        self.events.append({"type": event_type, "reason": reason, "message": message})
        self.writes.append(f"event {reason}")

    # --- simulated controllers ---
    def finish_job(self, name_prefix: str, namespace: str, *, succeeded: bool) -> str:
        for (kind, ns, name), job in self.objects.items():
            if kind == "Job" and ns == namespace and name.startswith(name_prefix) and not job.get("status"):
                condition = {"type": "Complete" if succeeded else "Failed", "status": "True"}
                if not succeeded:
                    condition["reason"] = "BackoffLimitExceeded"
                job["status"] = {"conditions": [condition]}
                return name
        raise AssertionError(f"no unfinished Job {name_prefix}* in {namespace}")

    def make_deployment_available(self, namespace: str, name: str) -> None:
        deployment = self.objects[("Deployment", namespace, name)]
        replicas = deployment["spec"]["replicas"]
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True"}],
        }


class Clock:
    """A deterministic clock for conditions' lastTransitionTime: one second later on every call."""

    def __init__(self) -> None:
        self.tick = 0

    def __call__(self) -> str:
        self.tick += 1
        return f"2026-11-27T10:{self.tick // 60:02d}:{self.tick % 60:02d}Z"


def bring_up(
    kube: FakeKube, reconciler: Any, namespace: str, *documents: dict[str, Any], name: str = "calls"
) -> None:
    """Put `documents` and drive the platform to Ready: migration Job completes, Deployment becomes Available."""
    for document in documents:
        kube.put(document)
    reconciler.reconcile(namespace, name)
    kube.finish_job(f"{name}-migrate-", namespace, succeeded=True)
    reconciler.reconcile(namespace, name)
    kube.make_deployment_available(namespace, f"{name}-calls")
    reconciler.reconcile(namespace, name)
