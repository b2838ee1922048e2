"""The headers probe against a real nginx: the rendered headers pass, each drift fails naming its directive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gateway_platforms import gateway_manifest, gateway_platform
from nginx_server import running_nginx

from callplatform.cli import main
from callplatform.probes.headers import base_url_checks
from callplatform.probes.jitsi import HttpProber
from callplatform.probes.result import ProbeResult
from callplatform.probes.runner import run_targets
from callplatform.probes.targets import ProbeTargets
from callplatform.probes.tls import TlsOptions
from callplatform.render.security_headers import CSP_KEY, security_headers
from probes.servers import TlsFiles

PLATFORM = gateway_platform()
RENDERED = security_headers(PLATFORM)
GOOD_CSP = RENDERED["default"][CSP_KEY]


def variant(name: str, overrides: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """nginx locations for one base URL /<name>: the rendered headers with `overrides` per scope."""
    paths = {"default": f"= /{name}/", "/call": f"/{name}/call", "/chat": f"/{name}/chat"}
    return {location: {**RENDERED[scope], **overrides.get(scope, {})} for scope, location in paths.items()}


VARIANTS = {
    "good": {},
    "no-frame-ancestors": {
        "default": {CSP_KEY: GOOD_CSP.replace("; frame-ancestors 'none'", "")},
    },
    "unsafe-eval": {
        "default": {CSP_KEY: GOOD_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'")},
    },
    "chat-deny": {"/chat": {"X-Frame-Options": "DENY"}},
}


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, TlsFiles]]:
    locations: dict[str, dict[str, str]] = {}
    for name, overrides in VARIANTS.items():
        locations.update(variant(name, overrides))
    with running_nginx(tmp_path_factory.mktemp("nginx"), locations) as served:
        yield served


def probe(nginx: tuple[int, TlsFiles], name: str) -> list[ProbeResult]:
    port, tls = nginx
    checks = base_url_checks(PLATFORM, f"https://127.0.0.1:{port}/{name}")
    targets = ProbeTargets(tuple(checks), TlsOptions(ca_file=str(tls.cert)), 5.0)

    async def run() -> list[ProbeResult]:
        prober = HttpProber()
        try:
            return await run_targets(targets, prober)
        finally:
            await prober.aclose()

    return asyncio.run(run())


def by_probe(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    return {result.probe: result for result in results}


def test_rendered_headers_pass_for_every_scope(nginx: tuple[int, TlsFiles]) -> None:
    results = by_probe(probe(nginx, "good"))
    assert set(results) == {"root", "call", "chat"}
    for result in results.values():
        assert result.success, result.message
        assert result.component == "headers"
        assert result.cert_not_after is not None  # the certificate nginx presented was seen


def test_missing_frame_ancestors_is_named(nginx: tuple[int, TlsFiles]) -> None:
    results = by_probe(probe(nginx, "no-frame-ancestors"))
    root = results["root"]
    assert not root.success and root.reason == "header_missing"
    assert "Content-Security-Policy: frame-ancestors is missing" in root.message
    assert results["call"].success and results["chat"].success  # only / drifted


def test_added_unsafe_eval_is_named(nginx: tuple[int, TlsFiles]) -> None:
    root = by_probe(probe(nginx, "unsafe-eval"))["root"]
    assert not root.success and root.reason == "header_mismatch"
    assert "Content-Security-Policy: script-src serves 'unsafe-eval', which is not rendered" in root.message


def test_chat_served_with_deny_is_named(nginx: tuple[int, TlsFiles]) -> None:
    results = by_probe(probe(nginx, "chat-deny"))
    chat = results["chat"]
    assert not chat.success and chat.reason == "header_mismatch"
    assert "X-Frame-Options is DENY, rendered SAMEORIGIN" in chat.message
    assert results["root"].success


def test_without_the_ca_option_tls_fails(nginx: tuple[int, TlsFiles]) -> None:
    port, _ = nginx
    checks = base_url_checks(PLATFORM, f"https://127.0.0.1:{port}/good")

    async def run() -> list[ProbeResult]:
        prober = HttpProber()
        try:
            return await run_targets(ProbeTargets(tuple(checks[:1]), TlsOptions(), 5.0), prober)
        finally:
            await prober.aclose()

    (result,) = asyncio.run(run())
    assert not result.success and result.reason == "tls_error"


def test_cli_probe_headers(
    nginx: tuple[int, TlsFiles], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, tls = nginx
    manifest = tmp_path / "platform.yaml"
    manifest.write_text(yaml.safe_dump(gateway_manifest()))
    base = f"https://127.0.0.1:{port}"
    ok = main(
        ["probe", str(manifest), "--headers", f"{base}/good", "--ca-file", str(tls.cert), "--format", "json"]
    )
    body = json.loads(capsys.readouterr().out)
    assert ok == 0 and body["healthy"] is True
    assert [r["probe"] for r in body["results"]] == ["root", "call", "chat"]
    drifted = main(["probe", str(manifest), "--headers", f"{base}/chat-deny", "--ca-file", str(tls.cert)])
    out = capsys.readouterr().out
    assert drifted == 1
    assert "X-Frame-Options is DENY, rendered SAMEORIGIN" in out
    assert main(["probe", "--headers", f"{base}/good"]) == 2  # no platform: nothing to expect
