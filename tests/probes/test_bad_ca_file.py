"""An unusable CA bundle: a usage error in the CLI; in the operator, tls_error probes, not a crash."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callplatform.cli import main
from callplatform.probes.health import HealthRegistry
from callplatform.probes.jitsi import HttpCheck
from callplatform.probes.result import ProbeResult
from callplatform.probes.scheduler import ProbeScheduler
from callplatform.probes.targets import ProbeTargets, TurnBindingTarget
from callplatform.probes.tls import (
    CA_FILE_ENV,
    TlsConfigError,
    TlsOptions,
    client_context,
    tls_from_environment,
)
from callplatform.probes.turn import TurnEndpoint

from .servers import free_port, make_self_signed

FILE_CONTENT = "not-a-certificate s3cr3t-looking-content"


def bad_ca_files(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, the problem the message names)."""
    not_pem = tmp_path / "notpem.txt"
    not_pem.write_text(FILE_CONTENT + "\n")
    return {
        "not_pem": (str(not_pem), "not a PEM CA bundle"),
        "missing": (str(tmp_path / "absent.pem"), "No such file or directory"),
    }


@pytest.mark.parametrize(
    "argv_tail", [["--jitsi", "https://meet.example.invalid"], ["--turn", "turns:127.0.0.1:5349"]]
)
def test_cli_rejects_a_ca_file_that_is_not_pem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv_tail: list[str]
) -> None:
    path, problem = bad_ca_files(tmp_path)["not_pem"]
    code = main(["probe", "--ca-file", path, *argv_tail])
    captured = capsys.readouterr()
    assert code == 2
    assert f"--ca-file {path}: {problem}" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert FILE_CONTENT not in captured.err + captured.out
    assert captured.out == ""  # nothing was probed


@pytest.fixture
async def silent_tcp() -> AsyncIterator[int]:
    """A TCP listener that accepts and says nothing (a TURN-over-TLS server to connect to)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize("case", ["not_pem", "missing"])
async def test_scheduler_with_a_bad_ca_file_starts_and_reports_tls_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    silent_tcp: int,
    case: str,
) -> None:
    path, problem = bad_ca_files(tmp_path)[case]
    monkeypatch.setenv(CA_FILE_ENV, path)
    tls = tls_from_environment()
    targets = ProbeTargets(
        (
            HttpCheck("web", f"https://127.0.0.1:{free_port()}/"),
            HttpCheck("jvb", f"http://127.0.0.1:{free_port()}/about/health"),  # needs no CA bundle
            TurnBindingTarget(TurnEndpoint("127.0.0.1", silent_tcp, "tls")),
        ),
        tls,
        timeout_seconds=2,
    )
    results: list[ProbeResult] = []
    round_done = asyncio.Event()

    def record(namespace: str, name: str, result: ProbeResult) -> None:
        results.append(result)
        if len(results) == len(targets.targets):
            round_done.set()

    registry = HealthRegistry()
    scheduler = ProbeScheduler(registry, record=record, first_round_spread_seconds=0)
    with caplog.at_level(logging.ERROR, logger="callplatform"):
        await scheduler.start()  # used to raise ssl.SSLError / FileNotFoundError
        try:
            scheduler.upsert("ns", "p", targets, 30)
            await asyncio.wait_for(round_done.wait(), 20)
            assert scheduler.is_alive()
        finally:
            await scheduler.stop()

    by_probe = {result.probe: result for result in results}
    for probe in ("web", "tls"):
        assert by_probe[probe].reason == "tls_error", by_probe[probe]
        assert CA_FILE_ENV in by_probe[probe].message
        assert problem in by_probe[probe].message
    assert by_probe["jvb"].reason == "refused"  # plain HTTP is not affected
    for component in ("jitsi", "coturn"):
        health = registry.component_health("ns", "p", component)
        assert health is not None and not health.healthy
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # one clear line, no traceback
    assert CA_FILE_ENV in errors[0].getMessage() and errors[0].exc_info is None
    everything = caplog.text + " ".join(r.message for r in results)
    assert FILE_CONTENT not in everything


def test_a_failure_is_not_cached(tmp_path: Path) -> None:
    """Fixing the file heals the probes without a restart."""
    ca = tmp_path / "ca.pem"
    ca.write_text(FILE_CONTENT)
    options = TlsOptions(ca_file=str(ca))
    with pytest.raises(TlsConfigError, match="not a PEM CA bundle"):
        client_context(options)
    ca.write_bytes(make_self_signed(tmp_path / "good").cert.read_bytes())
    assert client_context(options) is not None
