"""prosody's /health behind its caller allow-list: Debian's prosody, with http_health_allow_cidr on and off.

Debian bookworm ships prosody 0.12.3 without mod_http_health (nor does its prosody-modules
snapshot), so the module is tests/probes/prosody_modules/mod_http_health.lua, written from the
module's documentation; the HTTP server, the configuration and the 403 are prosody's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callplatform.probes.health import summarise
from callplatform.probes.jitsi import HttpCheck, HttpProber
from callplatform.probes.tls import TlsOptions

from .servers import running_prosody

pytestmark = pytest.mark.prosody

# The probe comes from 127.0.0.1; leave it out of the IP list so only the CIDR can admit it.
NOT_THE_PROBE = 'http_health_allow_ips = { "192.0.2.10" }'


@pytest.fixture
async def prober() -> AsyncIterator[HttpProber]:
    prober = HttpProber()
    yield prober
    await prober.aclose()


async def test_health_outside_the_allow_list_names_http_health_allow_cidr(
    prober: HttpProber, tmp_path: Path
) -> None:
    with running_prosody(tmp_path, health_acl=NOT_THE_PROBE) as prosody:
        result = await prober.probe(
            HttpCheck("prosody", prosody.health_url, service="prosody"), tls=TlsOptions()
        )
    assert (result.success, result.http_status, result.reason) == (False, 403, "not_allowed")
    assert "http_health_allow_cidr" in result.message and "http_health_allow_ips" in result.message
    health = summarise("jitsi", [result], 0.0)
    assert health.reason == "JitsiProsodyNotAllowed"
    assert "http_health_allow_cidr" in health.message


async def test_health_inside_http_health_allow_cidr_succeeds(prober: HttpProber, tmp_path: Path) -> None:
    acl = f'{NOT_THE_PROBE}\nhttp_health_allow_cidr = "127.0.0.0/8"'
    with running_prosody(tmp_path, health_acl=acl) as prosody:
        result = await prober.probe(
            HttpCheck("prosody", prosody.health_url, service="prosody"), tls=TlsOptions()
        )
    assert result.success, result
    assert result.http_status == 200
