"""Headers served: fetch a page and compare every security header with the rendered one, directive by
directive.

`compare_headers` is pure: expected and served headers in, the drifts out, in the
order the headers are rendered (so "the first drift" is stable between rounds).
`probe_headers` fetches one URL and turns the first drift into a failed ProbeResult
whose message names the header and directive, e.g. "Content-Security-Policy:
script-src serves 'unsafe-eval', which is not rendered".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import httpx

from callplatform.model import Platform
from callplatform.probes.jitsi import HttpProber, classify_http_error
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.tls import TlsOptions, cert_not_after, peer_certificate
from callplatform.render.security_headers import security_headers

COMPONENT = "headers"
# Scope (as security_headers names it) -> probe name (a metric label).
SCOPE_PROBES = {"default": "root", "/call": "call", "/chat": "chat"}
MISSING, MISMATCH = "header_missing", "header_mismatch"


@dataclass(frozen=True, slots=True)
class HeadersCheck:
    """Fetch `url` and expect exactly `expected` (name, value) pairs among its response headers."""

    probe: str
    url: str
    expected: tuple[tuple[str, str], ...]
    component: str = COMPONENT


@dataclass(frozen=True, slots=True)
class HeaderDrift:
    header: str
    directive: str  # the CSP/Permissions-Policy/HSTS directive, or "" for a one-value header
    reason: str  # MISSING or MISMATCH
    detail: str  # for humans: what is served instead

    def describe(self) -> str:
        where = f"{self.header}: {self.directive}" if self.directive else self.header
        return f"{where} {self.detail}"


def headers_targets(platform: Platform) -> list[HeadersCheck]:
    """One check per scope URL of spec.gateway, expecting what the operator renders for that scope."""
    if not platform.gateway.headers_probe_enabled:
        return []
    return scope_checks(platform, platform.gateway.probe_urls())


def scope_checks(platform: Platform, urls: Mapping[str, str]) -> list[HeadersCheck]:
    """A check per (scope -> URL), expecting the headers the platform renders for that scope."""
    rendered = security_headers(platform)
    return [
        HeadersCheck(SCOPE_PROBES[scope], url, tuple(rendered[scope].items())) for scope, url in urls.items()
    ]


def base_url_checks(platform: Platform, base_url: str) -> list[HeadersCheck]:
    """`callplatform probe --headers URL`: URL/, URL/call and URL/chat."""
    base = base_url.rstrip("/")
    return scope_checks(platform, {"default": f"{base}/", "/call": f"{base}/call", "/chat": f"{base}/chat"})


# --- parsing each header into directives ----------------------------------------


def _csp(value: str) -> dict[str, tuple[str, ...]]:
    """Directive -> its sources in order. Directive names are case-insensitive; the first wins (CSP3)."""
    directives: dict[str, tuple[str, ...]] = {}
    for part in value.split(";"):
        tokens = part.split()
        if tokens:
            directives.setdefault(tokens[0].lower(), tuple(tokens[1:]))
    return directives


def _permissions(value: str) -> dict[str, tuple[str, ...]]:
    """Feature -> allowlist tokens, from a Structured Field dictionary such as `camera=(self "https://x")`."""
    features: dict[str, tuple[str, ...]] = {}
    for part in value.split(","):
        name, _, allowlist = part.strip().partition("=")
        if name:
            features.setdefault(name.strip().lower(), tuple(allowlist.strip().strip("()").split()))
    return features


def _hsts(value: str) -> dict[str, tuple[str, ...]]:
    directives: dict[str, tuple[str, ...]] = {}
    for part in value.split(";"):
        name, _, arg = part.strip().partition("=")
        if name:
            directives.setdefault(name.strip().lower(), (arg.strip().strip('"'),) if arg else ())
    return directives


PARSERS = {
    "content-security-policy": _csp,
    "permissions-policy": _permissions,
    "strict-transport-security": _hsts,
}


def _sources(tokens: Sequence[str]) -> str:
    return " ".join(tokens) or "(nothing)"


def _directive_drifts(header: str, expected: str, served: str) -> list[HeaderDrift]:
    parse = PARSERS[header.lower()]
    want, got = parse(expected), parse(served)
    drifts = []
    for directive, sources in want.items():
        if directive not in got:
            drifts.append(
                HeaderDrift(
                    header, directive, MISSING, f"is missing (rendered: {directive} {_sources(sources)})"
                )
            )
            continue
        served_sources = got[directive]
        if header.lower() == "permissions-policy":
            same = list(served_sources) == list(sources)  # an allowlist is one value
        else:
            same = sorted(s.lower() for s in served_sources) == sorted(s.lower() for s in sources)
        if same:
            continue
        added = [s for s in served_sources if s.lower() not in {x.lower() for x in sources}]
        dropped = [s for s in sources if s.lower() not in {x.lower() for x in served_sources}]
        if added and not dropped:
            detail = f"serves {' '.join(added)}, which is not rendered"
        elif dropped and not added:
            detail = f"lacks {' '.join(dropped)}"
        else:
            detail = f"is {_sources(served_sources)}, rendered {_sources(sources)}"
        drifts.append(HeaderDrift(header, directive, MISMATCH, detail))
    for directive in got.keys() - want.keys():
        drifts.append(HeaderDrift(header, directive, MISMATCH, "is served but not rendered"))
    return drifts


def compare_headers(
    expected: Sequence[tuple[str, str]], served: Mapping[str, Sequence[str]]
) -> list[HeaderDrift]:
    """Every difference between the rendered headers and the served ones (names case-insensitive).

    `served` maps a lower-case header name to every value it was served with: a header sent twice
    is a drift, because browsers enforce each CSP separately and combine other headers unpredictably.
    """
    drifts: list[HeaderDrift] = []
    for name, value in expected:
        values = list(served.get(name.lower(), ()))
        if not values:
            drifts.append(HeaderDrift(name, "", MISSING, f"is missing (rendered: {value})"))
            continue
        if len(values) > 1 and len(set(values)) > 1:
            drifts.append(
                HeaderDrift(name, "", MISMATCH, f"is served {len(values)} times with different values")
            )
            continue
        if name.lower() in PARSERS:
            drifts += _directive_drifts(name, value, values[0])
        elif values[0].strip().lower() != value.lower():
            drifts.append(HeaderDrift(name, "", MISMATCH, f"is {values[0].strip()}, rendered {value}"))
    return drifts


def served_headers(headers: httpx.Headers) -> dict[str, list[str]]:
    return {name: headers.get_list(name) for name in {key.lower() for key in headers}}


def verdict(check: HeadersCheck, status: int, drifts: Sequence[HeaderDrift], duration: float) -> ProbeResult:
    """Pure: a 5xx page proves nothing about the app's headers; else the first drift decides."""
    shown = f"GET {check.url}"
    if status >= 500:
        return failure(
            check.component, check.probe, "http_status", f"{shown}: HTTP {status}",
            duration_seconds=duration, target=check.url,
        )  # fmt: skip
    if drifts:
        first = drifts[0]
        more = f" (and {len(drifts) - 1} more)" if len(drifts) > 1 else ""
        return failure(
            check.component, check.probe, first.reason, f"{shown}: {first.describe()}{more}",
            duration_seconds=duration, target=check.url,
        )  # fmt: skip
    return ProbeResult(
        component=check.component,
        probe=check.probe,
        success=True,
        duration_seconds=duration,
        message=f"{shown}: HTTP {status}, {len(check.expected)} security headers as rendered",
        target=check.url,
    )


async def probe_headers(check: HeadersCheck, client: httpx.AsyncClient, *, timeout: float) -> ProbeResult:
    """Fetch the URL (following redirects, as a browser would) and compare the final response's
    headers. Transport failures raise; the runner turns them into a bounded reason."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        async with client.stream("GET", check.url, timeout=httpx.Timeout(timeout)) as response:
            status, headers = response.status_code, response.headers
            stream = response.extensions.get("network_stream")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            cert = cert_not_after(peer_certificate(ssl_object))
    drifts = compare_headers(check.expected, served_headers(headers))
    return replace(verdict(check, status, drifts, time.monotonic() - started), cert_not_after=cert)


async def run_headers_check(
    check: HeadersCheck, http: HttpProber, *, tls: TlsOptions, timeout: float
) -> ProbeResult:
    """Never raises: TLS, DNS, refused and timeout become the HTTP probes' bounded reasons."""
    started = time.monotonic()
    try:
        return await probe_headers(check, http.client_for(tls, check.url), timeout=timeout)
    except (Exception, TimeoutError) as exc:
        reason, message = classify_http_error(exc)
        return failure(
            check.component, check.probe, reason, f"GET {check.url}: {message}",
            duration_seconds=time.monotonic() - started, target=check.url,
        )  # fmt: skip
