"""Hears kopf's watch streams restart, so the cache distrusts what they fed it.

When a watch cannot resume (410 Gone: its resourceVersion is older than the API server's watch
cache, e.g. after the server restarted) kopf 1.45 lists the kind again and delivers the listing as
type-None events, with no DELETED event for what vanished in the gap, and no event at all when the
listing is empty. kopf offers no hook for it; what it does offer is a DEBUG line of its watching
logger right before it lists again (kopf/_cogs/clients/watching.py, `continuous_watch` and
`streaming_block`):

    Restarting the watch-stream for secrets.v1 in 'ns'.
    Resuming the watch-stream for deployments.v1.apps cluster-wide (resolved: ...).

`WatchRestarts` is a filter on that logger (lowered to DEBUG for it): it tells the cache of each
restart, and lets the logger's DEBUG records through only where they were enabled already
(--verbose). It reads log records only: no request of its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

KOPF_WATCHING_LOGGER = "kopf._cogs.clients.watching"
_RESTART = re.compile(
    r"^(?:Restarting|Resuming) the watch-stream for (?P<resource>\S+) "
    r"(?:in '(?P<namespace>[^']*)'|(?P<cluster>cluster-wide))(?: \(.*\))?\.$"
)

Restart = tuple[str, str | None]  # kopf's resource name, and the namespace (None: cluster-wide)


def kopf_resource_name(group: str, version: str, plural: str) -> str:
    """How kopf's `Resource` renders in its log lines: plural.version.group (core: plural.version)."""
    return f"{plural}.{version}.{group}".strip(".")


def parse_restart(message: str) -> Restart | None:
    """The resource and namespace of a kopf line saying a watch stream restarts, else None."""
    found = _RESTART.match(message)
    if found is None:
        return None
    return found["resource"], None if found["cluster"] else found["namespace"]


class WatchRestarts(logging.Filter):
    """On kopf's watching logger: each restart of a watched kind's stream goes to `relisting`
    (apiVersion, kind, namespace or None), which runs on kopf's event loop and must not block."""

    def __init__(
        self, kinds: Mapping[str, tuple[str, str]], relisting: Callable[[str, str, str | None], object]
    ) -> None:
        super().__init__()
        self._kinds = dict(kinds)  # kopf's resource name to (apiVersion, kind)
        self._relisting = relisting
        self._keep_debug = False
        self._level = logging.NOTSET

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.DEBUG:
            restart = parse_restart(record.getMessage())
            if restart is not None and restart[0] in self._kinds:
                self._relisting(*self._kinds[restart[0]], restart[1])
        return self._keep_debug or record.levelno > logging.DEBUG

    def install(self) -> None:
        """Once logging is configured: its DEBUG lines are kept only if they are enabled now."""
        logger = logging.getLogger(KOPF_WATCHING_LOGGER)
        if self in logger.filters:
            return  # the level it found is kept, not the one it set
        self._keep_debug = logger.isEnabledFor(logging.DEBUG)
        self._level = logger.level
        logger.addFilter(self)
        logger.setLevel(logging.DEBUG)

    def uninstall(self) -> None:
        logger = logging.getLogger(KOPF_WATCHING_LOGGER)
        logger.removeFilter(self)
        logger.setLevel(self._level)
