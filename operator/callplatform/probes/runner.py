"""Run probe targets: one at a time under a hard deadline, or all of a platform at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from callplatform.probes.headers import HeadersCheck, run_headers_check
from callplatform.probes.jitsi import HttpCheck, HttpProber
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.targets import (
    NotRunnable,
    ProbeTarget,
    ProbeTargets,
    TurnAclTarget,
    TurnAllocateTarget,
    TurnBindingTarget,
    TurnRelayTarget,
    target_component,
)
from callplatform.probes.tls import TlsConfigError, TlsOptions, warm_context
from callplatform.probes.turn import RELEASE_BUDGET_SECONDS, probe_allocate, probe_binding
from callplatform.probes.turn_acl import probe_turn_acl
from callplatform.probes.turn_relay import probe_turn_relay

log = logging.getLogger(__name__)
HARD_DEADLINE_MARGIN_SECONDS = RELEASE_BUDGET_SECONDS + 1.0


def _probe_name(target: ProbeTarget) -> str:
    return target.probe


async def _dispatch(target: ProbeTarget, tls: TlsOptions, timeout: float, http: HttpProber) -> ProbeResult:
    if isinstance(target, NotRunnable):
        return failure(target.component, target.probe, target.reason, target.message)
    if isinstance(target, TurnBindingTarget):
        return await probe_binding(target.endpoint, tls=tls, timeout=timeout)
    if isinstance(target, TurnAllocateTarget):
        return await probe_allocate(
            target.endpoint, target.auth, tls=tls, timeout=timeout, probe=target.probe
        )
    if isinstance(target, TurnAclTarget):
        return await probe_turn_acl(target.endpoint, target.auth, tls=tls, timeout=timeout)
    if isinstance(target, TurnRelayTarget):
        return await probe_turn_relay(target.endpoint, target.auth, tls=tls, timeout=timeout)
    if isinstance(target, HttpCheck):
        return await http.probe(target, tls=tls, timeout=timeout)
    if isinstance(target, HeadersCheck):
        return await run_headers_check(target, http, tls=tls, timeout=timeout)
    raise TypeError(f"unknown probe target {type(target).__name__}")


async def run_target(
    target: ProbeTarget, *, tls: TlsOptions, timeout: float, http: HttpProber
) -> ProbeResult:
    """Never raises and never outlives `timeout` plus a small margin."""
    started = time.monotonic()
    component, probe = target_component(target), _probe_name(target)
    try:
        async with asyncio.timeout(timeout + HARD_DEADLINE_MARGIN_SECONDS):
            return await _dispatch(target, tls, timeout, http)
    except TlsConfigError as exc:  # the probers report this themselves; a safety net
        return failure(component, probe, "tls_error", str(exc), duration_seconds=time.monotonic() - started)
    except TimeoutError:
        return failure(
            component,
            probe,
            "timeout",
            "probe overran its deadline",
            duration_seconds=time.monotonic() - started,
        )
    except Exception as exc:  # a prober bug must not stop the loop; the type is enough to find it
        log.exception("probe %s/%s crashed", component, probe)
        return failure(
            component, probe, "bad_response", f"probe crashed ({type(exc).__name__})",
            duration_seconds=time.monotonic() - started,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def _maybe(semaphore: asyncio.Semaphore | None) -> AsyncIterator[None]:
    if semaphore is None:
        yield
    else:
        async with semaphore:
            yield


async def run_targets(
    targets: ProbeTargets, http: HttpProber, *, semaphore: asyncio.Semaphore | None = None
) -> list[ProbeResult]:
    """All probes of one platform concurrently, each holding a slot of `semaphore` while it runs."""

    # An unusable CA file fails only the probes that need TLS, each with reason tls_error.
    with contextlib.suppress(TlsConfigError):
        await warm_context(targets.tls)

    async def one(target: ProbeTarget) -> ProbeResult:
        async with _maybe(semaphore):
            return await run_target(target, tls=targets.tls, timeout=targets.timeout_seconds, http=http)

    return list(await asyncio.gather(*(one(target) for target in targets.targets)))
