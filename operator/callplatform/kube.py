"""A thin Kubernetes client: reads, server-side apply that skips writes when nothing differs,
status patches and Events.

Every write goes through here, so "an idle pass writes nothing" is decided in one
place: `apply` sends the server-side apply PATCH only when the live object says it is due.
Two checks, either one is enough:
- the live object's `callplatform.io/applied-hash` annotation is not the hash of the desired
  manifest: the operator now sets a different set of fields (a field it stopped setting, such
  as a cleared `appId` or dropped `resources.limits`, changes the hash, and server-side apply
  removes what this field manager no longer sets);
- some field the operator sets differs live (someone edited it: the field comparison).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

FIELD_MANAGER = "callplatform-operator"
APPLIED_HASH_ANNOTATION = "callplatform.io/applied-hash"
USER_AGENT = "callplatform-operator"
# (connect, read) seconds per attempt: a hung API server fails the request instead of pinning
# the platform's reconcile forever. urllib3 retries an idempotent GET up to 3 times.
DEFAULT_REQUEST_TIMEOUT: tuple[float, float] = (5.0, 30.0)

log = logging.getLogger(__name__)

Manifest = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    group_version: str  # "v1" or "apps/v1"
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        prefix = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


RESOURCES: dict[tuple[str, str], Resource] = {
    ("v1", "Secret"): Resource("v1", "secrets"),
    ("v1", "ConfigMap"): Resource("v1", "configmaps"),
    ("v1", "Service"): Resource("v1", "services"),
    ("v1", "Event"): Resource("v1", "events"),
    ("apps/v1", "Deployment"): Resource("apps/v1", "deployments"),
    ("apps/v1", "DaemonSet"): Resource("apps/v1", "daemonsets"),
    ("policy/v1", "PodDisruptionBudget"): Resource("policy/v1", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "NetworkPolicy"): Resource("networking.k8s.io/v1", "networkpolicies"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): Resource("monitoring.coreos.com/v1", "servicemonitors"),
    ("v1", "Namespace"): Resource("v1", "namespaces", namespaced=False),
    ("batch/v1", "Job"): Resource("batch/v1", "jobs"),
    ("callplatform.io/v1alpha1", "CallPlatform"): Resource("callplatform.io/v1alpha1", "callplatforms"),
    # Gateway API (spec.gateway): served only where its CRDs are installed.
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): Resource("gateway.networking.k8s.io/v1", "httproutes"),
}


def resource_of(api_version: str, kind: str) -> Resource:
    return RESOURCES[(api_version, kind)]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object (or, without a name, the collection) a request was about."""

    kind: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    def __str__(self) -> str:
        if not self.name:
            return f"{self.kind} in {self.namespace}" if self.namespace else self.kind
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}" + (f" {self.subresource}" if self.subresource else "")


class KubeError(Exception):
    """An API request failed.

    - `status`: the HTTP code, 0 when no response came (timeout, refused connection, TLS);
    - `reason`: the Status object's `reason` (`Invalid`, `InternalError`, `Forbidden`...), or the
      transport failure's type name;
    - `target`: the object the request was about.

    `summary()` is what status conditions and Events may show: operation, object, code and reason,
    never a response body. The exception's text adds the server's message (which field is invalid,
    "range is full") except for Secrets, whose validation messages might quote a value.
    """

    def __init__(
        self, operation: str, status: int, reason: str, *, target: ObjectRef | None = None, detail: str = ""
    ) -> None:
        self.operation = operation
        self.status = status
        self.reason = reason
        self.target = target
        self.detail = detail
        super().__init__(f"{self.summary()}: {detail}" if detail else self.summary())

    def summary(self) -> str:
        """E.g. `apply Service calls/p0-calls: HTTP 500 InternalError`."""
        what = self.operation if self.target is None else f"{self.operation.split(' ', 1)[0]} {self.target}"
        return f"{what}: HTTP {self.status} {self.reason}".rstrip()


def matches(desired: Any, live: Any) -> bool:
    """Whether `live` already has every field `desired` sets, with the same values.

    Fields the server adds (defaults, status, other managers' fields) are ignored.
    Lists of objects match item by item wherever they are in the live list, so an
    env var another manager added does not count as drift.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and matches(value, live[key]) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if all(isinstance(item, Mapping) for item in desired):
            if len(live) < len(desired):
                return False
            return all(any(matches(item, candidate) for candidate in live) for item in desired)
        return desired == live
    return bool(desired == live)


def _hashable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as hashed: a Secret's values become their key names only, so the annotation
    never allows offline guessing of a secret (its values are compared field by field instead)."""
    hashed = dict(desired)
    if desired.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if field in desired:
                hashed[field] = sorted(desired[field] or {})
    return hashed


def applied_hash(desired: Mapping[str, Any]) -> str:
    """The hash of the desired manifest (without its own hash annotation)."""
    text = json.dumps(_hashable(desired), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def stamped(desired: Mapping[str, Any]) -> Manifest:
    """`desired` carrying the hash annotation that lets the next pass see removed fields."""
    manifest: Manifest = copy.deepcopy(dict(desired))
    annotations = manifest["metadata"].setdefault("annotations", {})
    annotations.pop(APPLIED_HASH_ANNOTATION, None)
    digest = applied_hash(manifest)
    annotations[APPLIED_HASH_ANNOTATION] = digest
    return manifest


def needs_apply(stamped_desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether `live` is missing, carries another hash (fields were added or removed), or differs
    in a field the operator sets (the hash is one of those fields)."""
    return live is None or not matches(stamped_desired, live)


def decode_secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    data = secret.get("data") or {}
    decoded: dict[str, str] = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            decoded[key] = ""
    return decoded


def _status_fields(body: bytes | None) -> tuple[str, str]:
    """(reason, message) of the Status object the API server answers a failed request with."""
    try:
        status = json.loads(body or b"{}")
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        return "", ""
    return str(status.get("reason") or ""), str(status.get("message") or "")[:500]


def _transport_reason(exc: urllib3.exceptions.HTTPError) -> str:
    """Exception type names only: urllib3's messages quote the URL, query string included."""
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else None
    if cause is None:
        return type(exc).__name__
    return f"{type(exc).__name__} ({type(cause).__name__})"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """Blocking Kubernetes calls for one reconcile pass. `on_error` counts failures per operation."""

    def __init__(
        self,
        api_client: Any,
        *,
        on_error: Callable[[str], None] | None = None,
        instance: str = "",
        request_timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self._api = api_client
        self._request_timeout = request_timeout
        self._api.user_agent = USER_AGENT
        self._on_error = on_error or (lambda operation: None)
        self.instance = instance or f"{FIELD_MANAGER}-{uuid.uuid4().hex[:8]}"

    @classmethod
    def from_environment(cls, *, on_error: Callable[[str], None] | None = None) -> Kube:
        """In-cluster credentials when running in a pod, the KUBECONFIG context otherwise."""
        try:
            k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
            api_client = k8s_client.ApiClient()
        except k8s_config.ConfigException:
            api_client = k8s_config.new_client_from_config()  # type: ignore[no-untyped-call]
        return cls(api_client, on_error=on_error)

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        allow_not_found: bool = False,
        target: ObjectRef | None = None,
    ) -> Manifest | None:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, header_params, body_, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(
                method_,
                url,
                header_params=header_params,
                body=body_,
                _request_timeout=self._request_timeout,
            )
            response.read()
        except k8s_client.ApiException as exc:  # the client wraps TLS failures in this (status 0)
            self._on_error(operation)
            status = int(exc.status or 0)
            # A status-0 reason goes on with urllib3's text, which quotes the URL: keep its first line.
            detail = str(exc.reason).splitlines()[0][:200] if status == 0 and exc.reason else ""
            reason = "ConnectionFailed" if status == 0 else str(exc.reason or "")
            raise KubeError(operation, status, reason, target=target, detail=detail) from None
        except urllib3.exceptions.HTTPError as exc:  # timeouts, refused or reset connections
            self._on_error(operation)
            raise KubeError(operation, 0, _transport_reason(exc), target=target) from None
        if response.status == 404 and allow_not_found:
            return None
        if response.status >= 400:
            self._on_error(operation)
            reason, message = _status_fields(response.data)
            # A Secret's validation or admission message might quote a value: its reason only.
            detail = "" if target is not None and target.kind == "Secret" else message
            raise KubeError(operation, response.status, reason, target=target, detail=detail)
        data = response.data
        return json.loads(data) if data else {}

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        path = resource_of(api_version, kind).path(namespace, name)
        return self._request(
            f"get {kind}", "GET", path, allow_not_found=True, target=ObjectRef(kind, namespace, name)
        )

    def list_snapshot(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> tuple[list[Manifest], str]:
        """Like `list`, with the listing's resourceVersion (the cache merges it with watch events)."""
        path = resource_of(api_version, kind).path(namespace)
        query = []
        if label_selector:
            query.append(("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(label_selector.items()))))
        target = ObjectRef(kind, namespace or "")
        result = self._request(f"list {kind}", "GET", path, query=query, target=target) or {}
        items: list[Manifest] = result.get("items", [])
        return items, str((result.get("metadata") or {}).get("resourceVersion", ""))

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[Manifest]:
        """Objects of a kind; with `label_selector`, only those carrying every one of those labels."""
        return self.list_snapshot(api_version, kind, namespace, label_selector)[0]

    def serves(self, group_version: str, plural: str) -> bool:
        """Whether the API server serves `plural` in `group_version` (discovery: no RBAC needed)."""
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        found = self._request(f"discover {group_version}", "GET", prefix, allow_not_found=True)
        return any(item.get("name") == plural for item in (found or {}).get("resources", []))

    def apply(self, desired: Manifest, live: Manifest | None) -> tuple[Manifest, bool]:
        """Server-side apply `desired` unless `live` already matches it. Returns (object, wrote)."""
        desired = stamped(desired)
        if not needs_apply(desired, live):
            assert live is not None
            return dict(live), False
        meta = desired["metadata"]
        kind = desired["kind"]
        path = resource_of(desired["apiVersion"], kind).path(meta.get("namespace"), meta["name"])
        applied = self._request(
            f"apply {kind}",
            "PATCH",
            path,
            body=desired,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
            target=ObjectRef(kind, str(meta.get("namespace") or ""), meta["name"]),
        )
        log.info("applied %s %s/%s", kind, meta.get("namespace"), meta["name"])
        return applied or {}, True

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> Manifest:
        """Merge-patch the platform's status; returns the platform as the API server now has it."""
        path = resource_of("callplatform.io/v1alpha1", "CallPlatform").path(namespace, name, "status")
        return (
            self._request(
                "patch CallPlatform status",
                "PATCH",
                path,
                body={"status": dict(status)},
                content_type="application/merge-patch+json",
                target=ObjectRef("CallPlatform", namespace, name, "status"),
            )
            or {}
        )

    def post_event(
        self,
        regarding: Mapping[str, Any],
        *,
        event_type: str,
        reason: str,
        message: str,
        action: str = "Reconcile",
    ) -> None:
        """A core/v1 Event about `regarding` (a live object); `kubectl describe` shows it."""
        meta = regarding["metadata"]
        timestamp = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": regarding["apiVersion"],
                "kind": regarding["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "action": action,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self.instance,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
        path = resource_of("v1", "Event").path(meta["namespace"])
        self._request("post Event", "POST", path, body=event, target=ObjectRef("Event", meta["namespace"]))
