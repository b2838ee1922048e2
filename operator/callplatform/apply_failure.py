"""A pass that failed on an API error leaves its trace on the platform.

Without this, a platform whose apply the API server refuses on every pass (a full Service IP
range: `HTTP 500 InternalError`) shows no status at all, only a log line. After such a pass:
- `Ready` is `False` with reason `ApplyFailed`, and a message that names the operation, the object,
  the HTTP code and the Status reason (`KubeError.summary()`: never a response body);
- the other conditions stay as the last complete pass left them (they describe what it observed);
- one Warning Event `ApplyFailed` is posted when `Ready` turns `ApplyFailed`, not on every retry;
- nothing is written while the retries fail the same way, so a backing-off platform costs no writes.

Reporting is best effort: if the status write or the Event fails too (the API server is down),
that is logged and the pass's own error goes on to the work queue's backoff. It never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from callplatform.conditions import FALSE, READY
from callplatform.kube import Kube, KubeError
from callplatform.reconcile import CALLPLATFORM_API

log = logging.getLogger(__name__)

APPLY_FAILED = "ApplyFailed"


def apply_failed_message(error: KubeError) -> str:
    return f"The last pass failed: {error.summary()}. Retrying with backoff."


def failed_pass_conditions(
    previous: Sequence[Mapping[str, Any]], error: KubeError, *, generation: int, now: str
) -> list[dict[str, Any]]:
    """The whole conditions list after a failed pass: `Ready` first, False/ApplyFailed, its
    `lastTransitionTime` kept when it was already False; every other condition as it was."""
    conditions = [dict(c) for c in previous if isinstance(c, Mapping)]
    before = next((c for c in conditions if c.get("type") == READY), None)
    ready = {
        "type": READY,
        "status": FALSE,
        "reason": APPLY_FAILED,
        "message": apply_failed_message(error),
        "observedGeneration": generation,
        "lastTransitionTime": (
            str(before.get("lastTransitionTime") or now)
            if before is not None and before.get("status") == FALSE
            else now
        ),
    }
    return [ready, *(c for c in conditions if c.get("type") != READY)]


def turned_apply_failed(previous: Sequence[Mapping[str, Any]]) -> bool:
    """Whether Ready was not ApplyFailed before: the one moment worth a Warning Event."""
    before = next((c for c in previous if isinstance(c, Mapping) and c.get("type") == READY), None)
    return before is None or before.get("status") != FALSE or before.get("reason") != APPLY_FAILED


def report_failed_pass(
    kube: Kube, namespace: str, name: str, error: KubeError, *, clock: Callable[[], str]
) -> list[dict[str, Any]] | None:
    """Write the failed pass's conditions and, on the transition, its Event. Returns the conditions
    now on the platform, or None when the platform is gone or could not be read or written."""
    try:
        live = kube.get(CALLPLATFORM_API, "CallPlatform", namespace, name)
    except KubeError as exc:
        log.warning("cannot record the failed pass of %s/%s: %s", namespace, name, exc)
        return None
    if live is None or live.get("metadata", {}).get("deletionTimestamp"):
        return None
    previous: list[Mapping[str, Any]] = list((live.get("status") or {}).get("conditions") or [])
    generation = int(live.get("metadata", {}).get("generation") or 0)
    conditions = failed_pass_conditions(previous, error, generation=generation, now=clock())
    if conditions == previous:
        return conditions
    try:
        kube.patch_status(namespace, name, {"conditions": conditions})
    except KubeError as exc:
        log.warning("cannot write the ApplyFailed status of %s/%s: %s", namespace, name, exc)
        return None
    if turned_apply_failed(previous):
        try:
            message = f"{READY}: {conditions[0]['message']}"
            kube.post_event(live, event_type="Warning", reason=APPLY_FAILED, message=message)
        except KubeError as exc:
            log.warning("cannot post the ApplyFailed Event of %s/%s: %s", namespace, name, exc)
    return conditions
