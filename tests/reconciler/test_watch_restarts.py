"""kopf's watch-restart log lines, as kopf 1.45 renders them, reach the cache as the kinds it keeps."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kopf._cogs.structs.references import Resource

from callplatform.handlers import (
    GROUP,
    OPTIONAL_OWNED_KINDS,
    OWNED_KINDS,
    PLURAL,
    VERSION,
    cached_kinds,
    kopf_resources,
)
from callplatform.watch_restarts import KOPF_WATCHING_LOGGER, WatchRestarts, parse_restart


def _kopf_line(resource: Resource, namespace: str | None) -> str:
    """What kopf/_cogs/clients/watching.py logs on 410 Gone, right before it lists again."""
    where = f"in {namespace!r}" if namespace is not None else "cluster-wide"
    return f"Restarting the watch-stream for {resource} {where}."


def test_every_watched_resource_maps_to_the_cached_kind_by_kopf_s_own_rendering() -> None:
    resources = [(GROUP, VERSION, PLURAL), ("", "v1", "secrets"), *OWNED_KINDS, *OPTIONAL_OWNED_KINDS]
    by_name = kopf_resources()
    restarts = [parse_restart(_kopf_line(Resource(*resource), "ns")) for resource in resources]
    mapped = [by_name[restart[0]] for restart in restarts if restart is not None]
    assert sorted(mapped) == sorted(kind.id for kind in cached_kinds())
    assert by_name["services.v1"] == ("v1", "Service")
    assert by_name["deployments.v1.apps"] == ("apps/v1", "Deployment")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Restarting the watch-stream for services.v1 in 'gone'.", ("services.v1", "gone")),
        ("Restarting the watch-stream for secrets.v1 cluster-wide.", ("secrets.v1", None)),
        ("Resuming the watch-stream for jobs.v1.batch in 'ns' (resolved: peering).", ("jobs.v1.batch", "ns")),
        ("Starting the watch-stream for services.v1 in 'gone'.", None),  # kopf's first listing
        ("Stopping the watch-stream for services.v1 in 'gone'.", None),
        ("Watch-stream for services.v1 in 'gone' is inactive, reconnecting.", None),  # resumes, no listing
    ],
)
def test_only_restarts_that_list_again_are_recognised(
    line: str, expected: tuple[str, str | None] | None
) -> None:
    assert parse_restart(line) == expected


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def kopf_watching() -> Iterator[tuple[logging.Logger, _Records]]:
    logger = logging.getLogger(KOPF_WATCHING_LOGGER)
    records, level = _Records(), logger.level
    logger.addHandler(records)
    try:
        yield logger, records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


@pytest.mark.parametrize("verbose", [False, True])
def test_the_filter_tells_the_cache_and_keeps_kopf_s_debug_lines_only_when_verbose(
    kopf_watching: tuple[logging.Logger, _Records], verbose: bool
) -> None:
    logger, records = kopf_watching
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    heard: list[tuple[str, str, str | None]] = []
    restarts = WatchRestarts(kopf_resources(), lambda *kind: heard.append(kind))
    restarts.install()
    try:
        assert logger.isEnabledFor(logging.DEBUG)
        logger.debug(_kopf_line(Resource("", "v1", "services"), "gone"))
        logger.debug(_kopf_line(Resource("apps", "v1", "deployments"), None))
        logger.debug(_kopf_line(Resource("", "v1", "pods"), "gone"))  # not a kind we cache
        logger.debug("Request attempt 1 succeeded: GET /api/v1/namespaces/gone/services")
        logger.warning("Ignoring an unsupported event type: {}")
    finally:
        restarts.uninstall()
    assert heard == [("v1", "Service", "gone"), ("apps/v1", "Deployment", None)]
    assert len(records.messages) == (5 if verbose else 1)
    assert records.messages[-1].startswith("Ignoring")
    assert logger.level == (logging.DEBUG if verbose else logging.INFO) and restarts not in logger.filters


def test_the_installed_kopf_still_logs_the_lines_the_cache_listens_for() -> None:
    """A kopf that rewords them would leave only the type-None check (which misses empty listings)."""
    import inspect

    from kopf._cogs.clients import watching

    source = inspect.getsource(watching)
    assert watching.logger.name == KOPF_WATCHING_LOGGER
    assert "where = f'in {namespace!r}' if namespace is not None else 'cluster-wide'" in source
    assert 'logger.debug(f"Restarting the watch-stream for {resource} {where}.")' in source
    assert 'logger.debug(f"Resuming the watch-stream for {resource} {where}{resuming_reason}.")' in source
