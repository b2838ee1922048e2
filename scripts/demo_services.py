"""Real local services for `make demo`: coturn, PostgreSQL with a call history, prosody (BOSH).

Jitsi's web front, videobridge and jicofo are not packaged for Debian; a plain
HTTP server answers their health endpoints in the demo, and the demo says so.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "probes"), str(ROOT / "tests" / "metrics")]

from callmetrics_db import CallDatabase, create_call_database  # noqa: E402
from callmetrics_pg import running_postgres  # noqa: E402
from servers import (  # noqa: E402
    Prosody,
    make_self_signed,
    running_coturn,
    running_health_server,
    running_prosody,
)


@dataclass(frozen=True)
class DemoCoturn:
    port: int
    tls_port: int
    ca_file: Path


@contextlib.contextmanager
def running_demo_coturn(workdir: Path, *, username: str, password: str, realm: str) -> Iterator[DemoCoturn]:
    """coturn with the example's static credentials and a certificate for its TURN host name."""
    tls = make_self_signed(workdir, realm, days=90)
    with running_coturn(
        workdir, "static", tls=tls, relay_ports=20, user=(username, password), realm=realm
    ) as coturn:
        yield DemoCoturn(coturn.port, coturn.tls_port, tls.cert)


@dataclass(frozen=True)
class DemoServices:
    coturn: DemoCoturn
    calls_db: CallDatabase
    prosody: Prosody
    jitsi_url: str


@contextlib.contextmanager
def running_demo_services(
    workdir: Path, *, turn_username: str, turn_password: str, turn_realm: str
) -> Iterator[DemoServices]:
    with (
        running_demo_coturn(
            workdir / "coturn", username=turn_username, password=turn_password, realm=turn_realm
        ) as coturn,
        running_postgres() as postgres,
        running_prosody(workdir / "prosody") as prosody,
        running_health_server() as jitsi_url,
    ):
        calls_db = create_call_database(postgres, calls=5000, active=12)
        yield DemoServices(coturn, calls_db, prosody, jitsi_url)
