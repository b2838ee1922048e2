"""Jitsi HTTP probes against local HTTP(S) servers and Debian's real prosody (BOSH)."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jwt
import pytest

from callplatform.probes.jitsi import (
    HttpCheck,
    HttpProber,
    JwtMint,
    check_bosh_response,
    mint_probe_token,
    redact_url,
)
from callplatform.probes.tls import TlsOptions

from .http_stub import serving
from .servers import Prosody, free_port, make_self_signed, running_prosody

JWT_SECRET = "a-jwt-secret-that-is-long-enough-0123456789"


@pytest.fixture
async def prober() -> AsyncIterator[HttpProber]:
    prober = HttpProber()
    yield prober
    await prober.aclose()


@pytest.fixture(scope="module")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    with running_prosody(tmp_path_factory.mktemp("prosody")) as server:
        yield server


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_healthy_endpoint(prober: HttpProber) -> None:
    async with serving() as stub:
        result = await prober.probe(HttpCheck("jvb", f"{stub.base_url}/about/health"), tls=TlsOptions())
    assert result.success, result
    assert (result.component, result.probe) == ("jitsi", "jvb")
    assert {"connect", "processing"} <= result.phases.keys()
    assert result.cert_not_after is None


async def test_5xx_is_http_status(prober: HttpProber) -> None:
    async with serving() as stub:
        result = await prober.probe(HttpCheck("jvb", f"{stub.base_url}/unhealthy"), tls=TlsOptions())
    assert (result.success, result.reason) == (False, "http_status")
    assert "HTTP 500" in result.message


async def test_slow_endpoint_times_out_at_the_deadline(prober: HttpProber) -> None:
    async with serving() as stub:
        started = time.monotonic()
        result = await prober.probe(
            HttpCheck("jicofo", f"{stub.base_url}/slow"), tls=TlsOptions(), timeout=0.5
        )
        elapsed = time.monotonic() - started
    assert (result.success, result.reason) == (False, "timeout")
    assert elapsed < 1.5


async def test_redirect_is_followed(prober: HttpProber) -> None:
    async with serving() as stub:
        result = await prober.probe(HttpCheck("web", f"{stub.base_url}/redirect"), tls=TlsOptions())
        assert stub.requests == ["/redirect", "/about/health"]
    assert result.success
    assert "after 1 redirect(s)" in result.message


async def test_redirect_loop_fails(prober: HttpProber) -> None:
    async with serving() as stub:
        result = await prober.probe(HttpCheck("web", f"{stub.base_url}/loop"), tls=TlsOptions())
    assert (result.success, result.reason) == (False, "too_many_redirects")


async def test_refused(prober: HttpProber) -> None:
    result = await prober.probe(
        HttpCheck("jvb", f"http://127.0.0.1:{free_port()}/about/health"), tls=TlsOptions()
    )
    assert (result.success, result.reason) == (False, "refused")


async def test_tls_trusted_reports_expiry_and_untrusted_is_tls_error(
    prober: HttpProber, tmp_path: Path
) -> None:
    tls_files = make_self_signed(tmp_path, days=60)
    async with serving(ssl_context=server_context(tls_files.cert, tls_files.key)) as stub:
        url = f"{stub.base_url}/"
        trusted = await prober.probe(HttpCheck("web", url), tls=TlsOptions(ca_file=str(tls_files.cert)))
        untrusted = await prober.probe(HttpCheck("web", url), tls=TlsOptions())
        insecure = await prober.probe(HttpCheck("web", url), tls=TlsOptions(insecure=True))
    assert trusted.success, trusted
    assert trusted.cert_not_after == tls_files.not_after.timestamp()
    assert "tls" in trusted.phases
    assert (untrusted.success, untrusted.reason) == (False, "tls_error")
    assert insecure.success and insecure.cert_not_after == tls_files.not_after.timestamp()


async def test_certificate_close_to_expiry(prober: HttpProber, tmp_path: Path) -> None:
    tls_files = make_self_signed(tmp_path, days=2)
    async with serving(ssl_context=server_context(tls_files.cert, tls_files.key)) as stub:
        result = await prober.probe(
            HttpCheck("web", f"{stub.base_url}/"), tls=TlsOptions(ca_file=str(tls_files.cert))
        )
    assert (result.success, result.reason) == (False, "cert_expiring")


async def test_jwt_token_url_gets_a_valid_probe_token_and_never_shows_it(prober: HttpProber) -> None:
    mint = JwtMint(secret=JWT_SECRET, app_id="calls", audience="jitsi", subject="meet.example.org")
    async with serving(jwt_secret=JWT_SECRET) as stub:
        good = await prober.probe(HttpCheck("jwt", f"{stub.base_url}/token", token=mint), tls=TlsOptions())
        wrong = JwtMint(secret="another-secret-that-is-long-enough-0123", app_id="calls")
        bad = await prober.probe(HttpCheck("jwt", f"{stub.base_url}/token", token=wrong), tls=TlsOptions())
        sent = stub.requests
    assert good.success, good
    assert (bad.success, bad.reason) == (False, "http_status")
    assert all(path.startswith("/token?jwt=") for path in sent)
    for result in (good, bad):
        assert "jwt=" not in repr(result)
        assert JWT_SECRET not in repr(result)


def test_probe_token_claims() -> None:
    mint = JwtMint(
        secret=JWT_SECRET, app_id="calls", audience="jitsi", subject="meet.example.org", ttl_seconds=60
    )
    token = mint_probe_token(mint, now=time.time())
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="jitsi")
    assert claims["iss"] == "calls"
    assert claims["sub"] == "meet.example.org"
    assert claims["room"] == "callplatform-probe"
    assert 0 < claims["exp"] - time.time() <= 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_redact_url_drops_query_and_credentials() -> None:
    assert (
        redact_url("https://user:pw@meet.example.org:8443/x?jwt=abc#f") == "https://meet.example.org:8443/x"
    )


@pytest.mark.prosody
async def test_bosh_against_real_prosody_opens_a_session(prober: HttpProber, prosody: Prosody) -> None:
    check = HttpCheck("bosh", prosody.bosh_url, kind="bosh", bosh_domain=prosody.domain)
    result = await prober.probe(check, tls=TlsOptions())
    assert result.success, (result, prosody.log()[-2000:])
    assert "New BOSH session" in prosody.log()


@pytest.mark.prosody
async def test_bosh_for_an_unknown_domain_fails(prober: HttpProber, prosody: Prosody) -> None:
    check = HttpCheck("bosh", prosody.bosh_url, kind="bosh", bosh_domain="not-served.example.org")
    result = await prober.probe(check, tls=TlsOptions())
    assert (result.success, result.reason) == (False, "bad_response")
    assert "BOSH session refused" in result.message


@pytest.mark.prosody
async def test_bosh_get_without_domain_checks_the_endpoint(prober: HttpProber, prosody: Prosody) -> None:
    result = await prober.probe(HttpCheck("bosh", prosody.bosh_url, kind="bosh"), tls=TlsOptions())
    assert result.success, result


def test_bosh_response_parsing() -> None:
    assert check_bosh_response(b"<body sid='abc' xmlns='http://jabber.org/protocol/httpbind'/>") == (
        "abc",
        "",
    )
    assert check_bosh_response(b"<html/>")[1] == "answer is not a BOSH <body/>"
    assert "host-unknown" in check_bosh_response(b"<body type='terminate' condition='host-unknown'/>")[1]


async def test_probe_token_never_reaches_the_logs(
    prober: HttpProber, caplog: pytest.LogCaptureFixture
) -> None:
    mint = JwtMint(secret=JWT_SECRET, app_id="calls")
    with caplog.at_level(logging.DEBUG):
        async with serving(jwt_secret=JWT_SECRET) as stub:
            result = await prober.probe(
                HttpCheck("jwt", f"{stub.base_url}/token", token=mint), tls=TlsOptions()
            )
            sent = stub.requests[0]
    assert result.success
    token = sent.split("jwt=", 1)[1]
    assert token not in caplog.text
    assert JWT_SECRET not in caplog.text
