"""HTTP(S) probes of a Jitsi deployment: web front, prosody BOSH, JVB and jicofo health, JWT.

One httpx client per TLS setting, without keep-alive, so every probe opens a
fresh connection (and sees the certificate) the way a new browser would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt

from callplatform.probes import jitsi_metrics
from callplatform.probes.jitsi_settings import explain
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.tls import (
    TlsConfigError,
    TlsOptions,
    cert_not_after,
    client_context,
    expiring,
    peer_certificate,
)

# httpx logs every request URL at INFO, and a JWT probe's URL carries the token in ?jwt=.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.INFO)

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 64 * 1024
MAX_METRICS_BYTES = 1024 * 1024  # a busy videobridge's /metrics is a few hundred KiB
PROBE_ROOM = "callplatform-probe"
BOSH_NS = "http://jabber.org/protocol/httpbind"
USER_AGENT = "callplatform-probe/1"


@dataclass(frozen=True, slots=True)
class JwtMint:
    """What a Jitsi probe token is minted from (lib-jitsi-meet doc/tokens.md)."""

    secret: str = field(repr=False)
    app_id: str
    audience: str = "jitsi"
    subject: str = "*"  # the XMPP domain, or *
    room: str = PROBE_ROOM
    ttl_seconds: int = 120


def mint_probe_token(mint: JwtMint, now: float) -> str:
    claims: dict[str, Any] = {
        "iss": mint.app_id,
        "aud": mint.audience,
        "sub": mint.subject or "*",
        "room": mint.room,
        "iat": int(now),
        "nbf": int(now) - 10,
        "exp": int(now) + mint.ttl_seconds,
        "context": {"user": {"id": "callplatform-probe", "name": "CallPlatform health probe"}},
    }
    return jwt.encode(claims, mint.secret, algorithm="HS256")


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """One HTTP probe. `kind` is "get" (expect 2xx), "bosh" (open and close a BOSH session) or
    "metrics" (read the Prometheus text of `service`, "jicofo" or "jvb").

    `service` names the Jitsi component answering, so a failure its defaults explain gets a
    reason naming the setting (probes/jitsi_settings.py)."""

    probe: str
    url: str
    kind: str = "get"
    bosh_domain: str = ""
    token: JwtMint | None = None  # adds ?jwt=<probe token>
    component: str = "jitsi"
    service: str = ""
    stress_threshold: float = jitsi_metrics.DEFAULT_STRESS_THRESHOLD


def redact_url(url: str) -> str:
    """The URL without query and fragment (a ?jwt= token must never be shown)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _Trace:
    """Collects httpcore trace events into blackbox_exporter-like phases."""

    _PHASES = {
        "connection.connect_tcp": "connect",
        "connection.start_tls": "tls",
        "http11.send_request_headers": "processing",
        "http11.receive_response_body": "transfer",
    }

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._started: dict[str, float] = {}

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        del info
        name, _, stage = event.rpartition(".")
        if name == "http11.receive_response_headers" and stage == "complete":
            start = self._started.pop("processing", None)
            if start is not None:
                self._add("processing", start)
            return
        phase = self._PHASES.get(name)
        if phase is None:
            return
        if stage == "started":
            self._started[phase] = time.monotonic()
        elif stage == "complete" and phase != "processing":
            start = self._started.pop(phase, None)
            if start is not None:
                self._add(phase, start)

    def _add(self, phase: str, start: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - start


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _classify(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TlsConfigError):
        return "tls_error", str(exc)
    chain = _exception_chain(exc)
    if any(isinstance(e, httpx.TooManyRedirects) for e in chain):
        return "too_many_redirects", f"more than {MAX_REDIRECTS} redirects"
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return "timeout", "no answer within the probe deadline"
    for e in chain:
        if isinstance(e, ssl.SSLError):
            return "tls_error", f"TLS failed: {getattr(e, 'reason', None) or type(e).__name__}"
        if isinstance(e, ConnectionRefusedError):
            return "refused", "connection refused"
        if isinstance(e, socket.gaierror):
            return "dns_error", "name does not resolve"
    text = " ".join(str(e) for e in chain)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return "tls_error", "TLS failed"
    if "Connection refused" in text or "Errno 111" in text:
        return "refused", "connection refused"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "dns_error", "name does not resolve"
    if any(isinstance(e, httpx.ConnectError | httpx.NetworkError) for e in chain):
        return "connection_error", "network error"
    return "bad_response", f"invalid HTTP response ({type(exc).__name__})"


_BOSH_SID = re.compile(rb"""\bsid\s*=\s*['"]([^'"]{1,200})['"]""")
_BOSH_TERMINATE = re.compile(rb"""\btype\s*=\s*['"]terminate['"]""")
_BOSH_CONDITION = re.compile(rb"""\bcondition\s*=\s*['"]([a-z-]{1,40})['"]""")


def _bosh_session_request(rid: int, domain: str) -> bytes:
    return (
        f"<body content='text/xml; charset=utf-8' hold='1' rid='{rid}' to='{domain}' ver='1.6' "
        f"wait='5' xml:lang='en' xmpp:version='1.0' xmlns='{BOSH_NS}' xmlns:xmpp='urn:xmpp:xbosh'/>"
    ).encode()


def _bosh_terminate_request(rid: int, sid: str) -> bytes:
    return (
        f"<body rid='{rid}' sid='{sid}' type='terminate' xmlns='{BOSH_NS}'>"
        "<presence type='unavailable' xmlns='jabber:client'/></body>"
    ).encode()


def check_bosh_response(body: bytes) -> tuple[str, str]:
    """(session id, "") when prosody opened a session, else ("", why)."""
    if b"<body" not in body:
        return "", "answer is not a BOSH <body/>"
    if _BOSH_TERMINATE.search(body):
        condition = _BOSH_CONDITION.search(body)
        why = condition.group(1).decode() if condition else "no condition"
        return "", f"BOSH session refused ({why})"
    sid = _BOSH_SID.search(body)
    if sid is None:
        return "", "BOSH answer without a session id"
    return sid.group(1).decode("ascii", "replace"), ""


class HttpProber:
    """Runs HttpChecks. Create once, share, and `aclose()` at shutdown."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clients: dict[TlsOptions, httpx.AsyncClient] = {}
        self._trusting_nothing: httpx.AsyncClient | None = None
        self._clock = clock

    @staticmethod
    def _new_client(verify: ssl.SSLContext) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=verify,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            limits=httpx.Limits(max_keepalive_connections=0, max_connections=1000),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )

    def _client(self, tls: TlsOptions, url: str) -> httpx.AsyncClient:
        """Raises TlsConfigError for an https check when the CA file is unusable."""
        client = self._clients.get(tls)
        if client is not None:
            return client
        try:
            context = client_context(tls)
        except TlsConfigError:
            if urlsplit(url).scheme != "http":
                raise
            # A plain-HTTP check needs no CA bundle. A context that trusts nothing makes a
            # redirect to https fail verification instead of silently trusting the system store.
            if self._trusting_nothing is None:
                self._trusting_nothing = self._new_client(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
            return self._trusting_nothing
        client = self._clients[tls] = self._new_client(context)
        return client

    def client_for(self, tls: TlsOptions, url: str) -> httpx.AsyncClient:
        """The shared client for `url` (the headers probe fetches through it too)."""
        return self._client(tls, url)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        if self._trusting_nothing is not None:
            clients.append(self._trusting_nothing)
            self._trusting_nothing = None
        for client in clients:
            await client.aclose()

    async def probe(self, check: HttpCheck, *, tls: TlsOptions, timeout: float = 5.0) -> ProbeResult:
        return explain(check.service, await self._probe(check, tls=tls, timeout=timeout))

    async def _probe(self, check: HttpCheck, *, tls: TlsOptions, timeout: float) -> ProbeResult:
        started = time.monotonic()
        trace = _Trace()
        shown = redact_url(check.url)
        request_timeout = httpx.Timeout(timeout)
        try:
            async with asyncio.timeout(timeout):
                client = self._client(tls, check.url)
                if check.kind == "bosh" and check.bosh_domain:
                    return await self._bosh(client, check, tls, trace, started, request_timeout)
                params = {"jwt": mint_probe_token(check.token, self._clock())} if check.token else None
                async with client.stream(
                    "GET", check.url, params=params, timeout=request_timeout, extensions={"trace": trace}
                ) as response:
                    cert = cert_not_after(peer_certificate(_ssl_object(response)))
                    limit = MAX_METRICS_BYTES if check.kind == "metrics" else MAX_BODY_BYTES
                    body = await _read_bounded(response, limit)
        except (Exception, TimeoutError) as exc:
            reason, message = _classify(exc)
            return failure(
                check.component,
                check.probe,
                reason,
                f"GET {shown}: {message}",
                duration_seconds=time.monotonic() - started,
                target=shown,
                phases=trace.phases,
            )
        verdict = self._verdict(check, tls, response, cert, started, trace, "GET")
        if check.kind == "metrics" and verdict.success:
            return _metrics_verdict(check, verdict, body)
        return verdict

    async def _bosh(
        self,
        client: httpx.AsyncClient,
        check: HttpCheck,
        tls: TlsOptions,
        trace: _Trace,
        started: float,
        request_timeout: httpx.Timeout,
    ) -> ProbeResult:
        rid = secrets.randbelow(2**40) + 1
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        async with client.stream(
            "POST",
            check.url,
            content=_bosh_session_request(rid, check.bosh_domain),
            headers=headers,
            timeout=request_timeout,
            extensions={"trace": trace},
        ) as response:
            cert = cert_not_after(peer_certificate(_ssl_object(response)))
            body = await _read_bounded(response)
        verdict = self._verdict(check, tls, response, cert, started, trace, "POST")
        if not verdict.success:
            return verdict
        sid, problem = check_bosh_response(body)
        if problem:
            return failure(
                check.component,
                check.probe,
                "bad_response",
                f"POST {redact_url(check.url)}: {problem}",
                duration_seconds=time.monotonic() - started,
                target=verdict.target,
                phases=trace.phases,
                cert_not_after=cert,
            )
        await client.post(
            check.url, content=_bosh_terminate_request(rid + 1, sid), headers=headers, timeout=request_timeout
        )
        return verdict

    def _verdict(
        self,
        check: HttpCheck,
        tls: TlsOptions,
        response: httpx.Response,
        cert: float | None,
        started: float,
        trace: _Trace,
        method: str,
    ) -> ProbeResult:
        shown = redact_url(check.url)
        duration = time.monotonic() - started
        hops = f" after {len(response.history)} redirect(s)" if response.history else ""
        if not 200 <= response.status_code < 300:
            return failure(
                check.component,
                check.probe,
                "http_status",
                f"{method} {shown}: HTTP {response.status_code}{hops}",
                duration_seconds=duration,
                target=shown,
                phases=trace.phases,
                cert_not_after=cert,
                http_status=response.status_code,
            )
        now = self._clock()
        if expiring(cert, now, tls):
            days = ((cert or now) - now) / 86400
            return failure(
                check.component,
                check.probe,
                "cert_expiring",
                f"TLS certificate of {shown} expires in {days:.1f} days",
                duration_seconds=duration,
                target=shown,
                phases=trace.phases,
                cert_not_after=cert,
            )
        return ProbeResult(
            component=check.component,
            probe=check.probe,
            success=True,
            duration_seconds=duration,
            phases=trace.phases,
            cert_not_after=cert,
            message=f"{method} {shown}: HTTP {response.status_code}{hops}",
            target=shown,
            http_status=response.status_code,
        )


def _ssl_object(response: httpx.Response) -> ssl.SSLObject | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object: ssl.SSLObject | None = stream.get_extra_info("ssl_object")
    return ssl_object


async def _read_bounded(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _metrics_verdict(check: HttpCheck, fetched: ProbeResult, body: bytes) -> ProbeResult:
    """The fetched /metrics text read into facts; a fact that fails Jitsi fails the probe."""
    shown = redact_url(check.url)
    try:
        reading = jitsi_metrics.read(
            check.service, body.decode("utf-8", "replace"), stress_threshold=check.stress_threshold
        )
    except jitsi_metrics.MetricsError as exc:
        return dataclasses.replace(
            fetched, success=False, reason="bad_metrics", message=f"GET {shown}: {exc}"
        )
    return dataclasses.replace(
        fetched,
        success=not reading.problem,
        reason=reading.problem,
        message=f"GET {shown}: {reading.summary}",
        facts=reading.facts,
        degraded=reading.degraded,
    )


def classify_http_error(exc: BaseException) -> tuple[str, str]:
    """(bounded reason, message without secrets) for a failed HTTP request; shared with the headers probe."""
    return _classify(exc)
