"""Test-only hooks, off unless their environment variable is set. Never set them in production.

`CALLPLATFORM_TEST_HOLD_PASS_SECONDS`: every pass that found its platform waits this long at one
named point, after it wrote the platform's status and before it tells the rest of the operator
(metrics, probes, call collector, Secret index). A cluster test uses it to delete platforms while
their pass is certainly in flight (tests/reconciler/test_delete_in_flight_cluster.py); the log lines
say when each hold began and ended, so the test can check the pass was in flight, not assume it.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)

HOLD_PASS_ENV = "CALLPLATFORM_TEST_HOLD_PASS_SECONDS"


def hold_pass_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(HOLD_PASS_ENV, "0") or 0))
    except ValueError:
        return 0.0


def hold_pass(namespace: str, name: str, seconds: float) -> None:
    log.warning("test hook %s: holding the pass of %s/%s for %.1fs", HOLD_PASS_ENV, namespace, name, seconds)
    time.sleep(seconds)
    log.warning("test hook %s: released the pass of %s/%s", HOLD_PASS_ENV, namespace, name)
