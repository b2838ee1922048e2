"""What `/healthz` checks: the parts of the operator that must run for it to do its job.

Each check names what is wrong, so a failing probe says why (`/healthz` answers the list with 503):
- kopf's watch streams: one watcher task per watched kind and namespace (an optional kind, whose
  CRD may not be installed, counts only while kopf watches it: `handlers.expected_watchers`). kopf
  1.45 ends the whole operator when a stream fails with an error (the pod restarts); a stream gone
  without that would mean no event of that kind ever reaches the operator again, so it fails
  liveness and the pod restarts all the same. (A stream that hangs silently is kopf's most
  reported failure; the watching timeouts in `configure_settings` renew every stream within
  minutes.) kopf starts them a moment after the operator (discovery first): until all have run
  once, and for at most `WATCH_START_GRACE_SECONDS`, a shortfall fails readiness only, so that a slow start (a newly
  elected leader on a busy API server) is not killed by the liveness probe;
- the reconcile workers and the periodic resync threads;
- the probe scheduler (every platform's probe loop makes progress) and the call-metrics collector;
- no platform stuck: no pass running, and no request due but not picked up, for longer than
  `stuck_after_seconds` (backoffs and rechecks not yet due wait on purpose and do not count).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

# kopf names each watch stream's task "watcher for <resource>@<namespace>" (kopf's orchestration).
WATCHER_TASK_PREFIX = "watcher for "
WATCH_START_GRACE_SECONDS = 60.0


def running_watchers(tasks: Iterable[asyncio.Task[object]]) -> list[str]:
    """What the running kopf watch streams watch ("callplatforms.v1alpha1.callplatform.io@calls")."""
    return sorted(
        task.get_name().removeprefix(WATCHER_TASK_PREFIX)
        for task in tasks
        if task.get_name().startswith(WATCHER_TASK_PREFIX) and not task.done()
    )


@dataclass(frozen=True, slots=True)
class LivenessFacts:
    watchers_running: int
    watchers_expected: int
    workers_alive: bool
    resync_alive: bool
    probe_scheduler_alive: bool
    collector_alive: bool
    oldest_wait_seconds: float
    stuck_after_seconds: float
    # Not all watch streams have run yet, and the start-up grace is not over.
    watchers_starting: bool = False


def liveness_problems(facts: LivenessFacts, *, readiness: bool = False) -> list[str]:
    """Empty when the operator is alive (or, with `readiness`, ready); otherwise one line per problem."""
    problems = []
    starting = facts.watchers_starting and not readiness
    if facts.watchers_running < facts.watchers_expected and not starting:
        problems.append(f"watch streams: {facts.watchers_running} of {facts.watchers_expected} running")
    if not facts.workers_alive:
        problems.append("reconcile workers are not running")
    if not facts.resync_alive:
        problems.append("the periodic resync is not running")
    if not facts.probe_scheduler_alive:
        problems.append("the probe scheduler stopped or a probe loop made no progress")
    if not facts.collector_alive:
        problems.append("the call-metrics collector stopped")
    if facts.oldest_wait_seconds > facts.stuck_after_seconds:
        problems.append(
            f"a platform has waited {facts.oldest_wait_seconds:.0f}s for its pass "
            f"(limit {facts.stuck_after_seconds:.0f}s)"
        )
    return problems
