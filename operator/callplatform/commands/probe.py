"""`callplatform probe`: run the health monitor's probes once, from a terminal.

Against manifests (CallPlatforms plus their Secrets), or explicit targets:
  callplatform probe examples/production.yaml
  callplatform probe --turn turn:turn.example.com:3478 --turn-secret-file secret.txt \\
      --turn turns:turn.example.com:5349 --jitsi https://meet.example.com --jitsi-domain meet.example.com
  callplatform probe examples/production.yaml --headers https://app.example.com
    (only the headers probe: /, /call and /chat against what the platform renders)
  callplatform probe examples/production.yaml --turn-acl
    (also: after the Allocate, permissions to internal addresses must all be refused with 403)
  callplatform probe examples/production.yaml --turn-relay
    (also: two allocations relay packets to each other; round-trip time and loss)

Exit codes: 0 every probe succeeded, 1 at least one failed, 2 usage or unreadable input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from callplatform.commands.errors import UsageError
from callplatform.inputs import InputError, load_manifests
from callplatform.model import Platform
from callplatform.probes.credentials import RestAuth, StaticAuth, TurnAuth
from callplatform.probes.headers import base_url_checks
from callplatform.probes.jitsi import HttpCheck, HttpProber
from callplatform.probes.result import ProbeResult
from callplatform.probes.runner import run_targets
from callplatform.probes.targets import (
    DEFAULT_PROBE_TIMEOUT_SECONDS,
    ProbeTarget,
    ProbeTargets,
    TurnAllocateTarget,
    TurnBindingTarget,
    acl_targets,
    build_targets,
    relay_targets,
)
from callplatform.probes.tls import TlsConfigError, TlsOptions, client_context
from callplatform.probes.turn import TurnEndpoint

CLI_CONCURRENCY = 16
_TURN_URL = re.compile(
    r"^(?P<scheme>turns?):(?:\[(?P<ip6>[0-9a-fA-F:.]+)\]|(?P<host>[^:?\[\]]+))(?::(?P<port>\d{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?$"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="YAML file or directory of CallPlatforms and their Secrets; '-' reads stdin",
    )
    turn = parser.add_argument_group("explicit TURN targets")
    turn.add_argument(
        "--turn", action="append", default=[], metavar="URL",
        help="turn:HOST[:PORT][?transport=tcp] or turns:HOST[:PORT] (repeatable): Binding, plus Allocate with credentials",
    )  # fmt: skip
    turn.add_argument(
        "--turn-acl", action="store_true",
        help="after each Allocate, ask for permissions to internal addresses (loopback, RFC 1918, metadata, ...): "
        "each must be refused with 403; no packet goes to them",
    )  # fmt: skip
    turn.add_argument(
        "--turn-relay", action="store_true",
        help="with each UDP Allocate, open two allocations that relay packets to each other through the "
        "server (Send/Data indications) and report round-trip time and loss",
    )  # fmt: skip
    turn.add_argument("--turn-user", metavar="NAME", help="static TURN username")
    turn.add_argument("--turn-password-file", metavar="FILE", help="file holding the static TURN password")
    turn.add_argument(
        "--turn-secret-file", metavar="FILE", help="file holding coturn's static-auth-secret (REST mode)"
    )
    jitsi = parser.add_argument_group("explicit Jitsi targets")
    jitsi.add_argument(
        "--jitsi", metavar="URL", help="Jitsi web front, e.g. https://meet.example.com (adds /http-bind)"
    )
    jitsi.add_argument(
        "--jitsi-domain", metavar="DOMAIN", help="XMPP domain for the BOSH session (else a plain GET)"
    )
    jitsi.add_argument(
        "--jvb-health", metavar="URL", help="JVB health URL, e.g. http://jvb:8080/about/health"
    )
    jitsi.add_argument(
        "--jicofo-health", metavar="URL", help="jicofo health URL, e.g. http://jicofo:8888/about/health"
    )
    headers = parser.add_argument_group("served security headers")
    headers.add_argument(
        "--headers",
        metavar="URL",
        help="fetch URL/, URL/call and URL/chat and compare their security headers, directive by directive, "
        "with what the one CallPlatform in PATH renders (only these probes run)",
    )
    tls = parser.add_argument_group("TLS and timing")
    tls.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (expiry is still shown)"
    )
    tls.add_argument("--ca-file", metavar="FILE", help="trust this CA bundle instead of the system's")
    tls.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_PROBE_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="deadline of each probe",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


@dataclass(frozen=True, slots=True)
class _Group:
    label: str  # namespace/name, or "explicit"
    targets: ProbeTargets
    platform: Platform | None = None


def run(args: argparse.Namespace) -> int:
    tls = _tls_options(args)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    groups = _manifest_groups(args.paths, tls, args.timeout, sys.stdin)
    if args.headers:
        groups = [_headers_group(groups, args.headers, tls, args.timeout)]
    explicit = _explicit_targets(args)
    if explicit:
        groups.append(_Group("explicit", ProbeTargets(tuple(explicit), tls, args.timeout)))
    if not groups:
        raise UsageError("nothing to probe: give manifests, --turn, --jitsi or --headers")
    if args.turn_acl:
        groups = [_with_extra(group, acl_targets, "--turn-acl", "Allocate") for group in groups]
    if args.turn_relay:
        groups = [_with_extra(group, relay_targets, "--turn-relay", "UDP Allocate") for group in groups]
    results = asyncio.run(_probe_all(groups))
    _print(results, args.format, sys.stdout)
    return 0 if all(result.success for _, result in results) else 1


def _with_extra(
    group: _Group,
    extra_targets: Callable[[tuple[ProbeTarget, ...]], Sequence[ProbeTarget]],
    option: str,
    after: str,
) -> _Group:
    """The group plus the probes that run after its Allocates (--turn-acl, --turn-relay)."""
    extra = extra_targets(group.targets.targets)
    if not extra:
        raise UsageError(f"{option} needs TURN credentials ({group.label} has no {after} to run it after)")
    targets = replace(group.targets, targets=(*group.targets.targets, *extra))
    return replace(group, targets=targets)


def _tls_options(args: argparse.Namespace) -> TlsOptions:
    if args.ca_file and not Path(args.ca_file).is_file():
        raise UsageError(f"--ca-file {args.ca_file}: no such file")
    options = TlsOptions(ca_file=args.ca_file or "", insecure=args.insecure, ca_setting="--ca-file")
    if options.ca_file:
        try:
            client_context(options)  # a bad bundle is a usage error, not a probe failure
        except TlsConfigError as exc:
            raise UsageError(f"--ca-file {exc.path}: {exc.problem}") from None
    return options


def _manifest_groups(paths: Sequence[str], tls: TlsOptions, timeout: float, stdin: TextIO) -> list[_Group]:
    if not paths:
        return []
    try:
        loaded = load_manifests(paths, stdin)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not loaded:
        raise UsageError("no CallPlatform found in the given manifests")
    groups = []
    for item in loaded:
        platform = item.platform
        label = f"{platform.namespace}/{platform.name}" if platform.namespace else platform.name
        targets = build_targets(
            platform, item.secrets, tls=tls, timeout_seconds=timeout, turn_acl=False, turn_relay=False
        )
        groups.append(_Group(label, targets, platform))
    return groups


def _headers_group(groups: Sequence[_Group], url: str, tls: TlsOptions, timeout: float) -> _Group:
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--headers {url!r}: expected an http:// or https:// URL")
    if len(groups) != 1:
        raise UsageError(
            "--headers needs exactly one CallPlatform in PATH: the headers it renders are expected"
        )
    platform = groups[0].platform
    assert platform is not None
    return _Group(groups[0].label, ProbeTargets(tuple(base_url_checks(platform, url)), tls, timeout))


def _read_secret_file(path: str, option: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
    if not value:
        raise UsageError(f"{option} {path}: file is empty")
    return value


def parse_turn_url(url: str) -> TurnEndpoint:
    match = _TURN_URL.match(url)
    if match is None:
        raise UsageError(f"--turn {url!r}: expected turn:HOST[:PORT][?transport=tcp] or turns:HOST[:PORT]")
    secure = match["scheme"] == "turns"
    if secure and match["transport"] == "udp":
        raise UsageError(f"--turn {url!r}: turns: runs over TCP")
    port = int(match["port"]) if match["port"] else (5349 if secure else 3478)
    if not 0 < port < 65536:
        raise UsageError(f"--turn {url!r}: port out of range")
    host = match["ip6"] or match["host"]
    transport = "tls" if secure else (match["transport"] or "udp")
    return TurnEndpoint(host, port, transport)


def _turn_auth(args: argparse.Namespace) -> TurnAuth | None:
    if args.turn_secret_file and (args.turn_user or args.turn_password_file):
        raise UsageError("use either --turn-secret-file or --turn-user/--turn-password-file, not both")
    if args.turn_secret_file:
        return RestAuth(_read_secret_file(args.turn_secret_file, "--turn-secret-file"))
    if bool(args.turn_user) != bool(args.turn_password_file):
        raise UsageError("--turn-user and --turn-password-file go together")
    if args.turn_user:
        return StaticAuth(args.turn_user, _read_secret_file(args.turn_password_file, "--turn-password-file"))
    return None


def _explicit_targets(args: argparse.Namespace) -> list[ProbeTarget]:
    targets: list[ProbeTarget] = []
    auth = _turn_auth(args)
    if auth is not None and not args.turn:
        raise UsageError("TURN credentials given without --turn")
    for url in args.turn:
        endpoint = parse_turn_url(url)
        targets.append(TurnBindingTarget(endpoint))
        if auth is not None:
            targets.append(TurnAllocateTarget(endpoint, auth))
    if args.jitsi:
        base = args.jitsi.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise UsageError(f"--jitsi {args.jitsi!r}: expected an http:// or https:// URL")
        targets.append(HttpCheck("web", f"{base}/"))
        targets.append(
            HttpCheck("bosh", f"{base}/http-bind", kind="bosh", bosh_domain=args.jitsi_domain or "")
        )
    if args.jvb_health:
        targets.append(HttpCheck("jvb", args.jvb_health, service="jvb"))
    if args.jicofo_health:
        targets.append(HttpCheck("jicofo", args.jicofo_health, service="jicofo"))
    return targets


async def _probe_all(groups: Sequence[_Group]) -> list[tuple[str, ProbeResult]]:
    prober = HttpProber()
    semaphore = asyncio.Semaphore(CLI_CONCURRENCY)
    try:
        per_group = await asyncio.gather(
            *(run_targets(g.targets, prober, semaphore=semaphore) for g in groups)
        )
    finally:
        await prober.aclose()
    return [
        (group.label, result) for group, results in zip(groups, per_group, strict=True) for result in results
    ]


def _print(results: Sequence[tuple[str, ProbeResult]], output_format: str, out: TextIO) -> None:
    if output_format == "json":
        healthy = all(result.success for _, result in results)
        body = {"healthy": healthy, "results": [{"platform": label, **r.as_dict()} for label, r in results]}
        json.dump(body, out, indent=2)
        out.write("\n")
        return
    header = ("PLATFORM", "COMPONENT", "PROBE", "RESULT", "REASON", "TIME", "TARGET", "DETAIL")
    rows = [
        (
            label,
            r.component,
            r.probe,
            "ok" if r.success else "FAIL",
            r.reason or "-",
            f"{r.duration_seconds * 1000:.1f}ms",
            r.target or "-",
            r.message,
        )
        for label, r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
            + "\n"
        )
    failed = sum(1 for _, r in results if not r.success)
    out.write(f"\n{len(results) - failed} of {len(results)} probes succeeded\n")
