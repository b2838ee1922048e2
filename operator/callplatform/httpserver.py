"""The operator's one HTTP server: liveness, readiness, Prometheus metrics and health JSON.

It serves in one of two modes, on the same port for the life of the process:
- **operator** (`serve_operator`), while this process reconciles:
  - `/healthz`: 200 `ok` when `liveness()` reports no problem (see `callplatform.liveness`), else
    503 with one line per problem;
  - `/readyz`: the same for `readiness()`;
  - `/api/calls/health/jitsi`, `/api/calls/health/coturn`: every probed platform's health
    (optionally `?namespace=&name=` for one), 200 when all are healthy, 503 otherwise;
- **standby** (`serve_standby`), while a `--leader-elect` replica waits for the Lease: `/healthz`
  and `/readyz` answer 200 (a standby must be alive and ready, or a rolling update would never
  proceed) and it reconciles nothing; the health API is passed on to the leader, so a Service in
  front of all replicas answers it whichever pod it picks.

`/metrics` (the default Prometheus registry) is served in both modes, so scraping every pod never
sees a down target; a standby has only process series. Before either mode (start-up), `/healthz`
and `/readyz` answer 503.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callplatform import exposition
from callplatform.probes.health import ComponentHealth, HealthRegistry
from callplatform.probes.result import COMPONENTS
from callplatform.threadbridge import off_loop

log = logging.getLogger(__name__)


def component_health_json(namespace: str, name: str, health: ComponentHealth) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "healthy": health.healthy,
        "reason": health.reason,
        "message": health.message,
        "checkedAt": health.checked_at,
        "probes": [
            {
                "probe": r.probe,
                "success": r.success,
                "reason": r.reason,
                "durationSeconds": round(r.duration_seconds, 6),
                "certNotAfter": r.cert_not_after,
                "message": r.message,
                "target": r.target,
                **({"facts": dict(r.facts)} if r.facts else {}),  # the relay probe's RTT and loss
            }
            for r in health.probes
        ],
    }


def health_report(
    registry: HealthRegistry, component: str, namespace: str = "", name: str = ""
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a component's health endpoint."""
    platforms = []
    for ns, platform_name in registry.platforms():
        if (namespace and ns != namespace) or (name and platform_name != name):
            continue
        health = registry.component_health(ns, platform_name, component)
        if health is not None:
            entry = component_health_json(ns, platform_name, health)
            acl = (
                registry.component_health(ns, platform_name, "coturn_acl") if component == "coturn" else None
            )
            if acl is not None:  # the ACL verdict rides along; it does not make coturn unhealthy
                verdict = component_health_json(ns, platform_name, acl)
                entry["acl"] = {
                    key: value for key, value in verdict.items() if key not in ("namespace", "name")
                }
            platforms.append(entry)
    if (namespace or name) and not platforms:
        return 404, {"component": component, "status": "unknown", "platforms": []}
    healthy = all(p["healthy"] for p in platforms)
    body = {"component": component, "status": "healthy" if healthy else "unhealthy", "platforms": platforms}
    return (200 if healthy else 503), body


HEALTH_API = "/api/calls/health/"
STANDBY_BODY = "standby: waiting for the leader Lease\n"
FORWARD_TIMEOUT_SECONDS = 5.0

# Problems, one line each; empty when all is well.
Check = Callable[[], Sequence[str]]


def forward_to_leader(
    endpoint: str, path: str, timeout: float = FORWARD_TIMEOUT_SECONDS
) -> tuple[int, str, bytes]:
    """GET `path` from the leader's HTTP server (blocking): (status, content type, body).

    A standby has no probe results of its own; the health API answers what the leader knows. An
    unknown or unreachable leader is a 503, as an unhealthy answer would be.
    """

    def unavailable(reason: str) -> tuple[int, str, bytes]:
        return 503, "application/json", json.dumps({"error": reason, "standby": True}).encode()

    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        return unavailable("no leader is known yet")
    connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", "application/json"), response.read()
    except OSError:
        return unavailable("the leader did not answer")
    finally:
        connection.close()


@dataclass(frozen=True, slots=True)
class OperatorMode:
    registry: HealthRegistry
    liveness: Check
    readiness: Check


@dataclass(frozen=True, slots=True)
class StandbyMode:
    leader_endpoint: Callable[[], str]  # host:port of the leader's server, "" while unknown


def _problems(check: Check) -> list[str]:
    try:
        return [str(problem) for problem in check()]
    except Exception as exc:
        log.exception("health check raised")
        return [f"the check raised {type(exc).__name__}"]


def _check_response(check: Check, ok_text: str) -> web.Response:
    problems = _problems(check)
    if not problems:
        return web.Response(text=ok_text)
    return web.Response(status=503, text="".join(f"{problem}\n" for problem in problems))


class OperatorHttpServer:
    def __init__(
        self,
        registry: HealthRegistry | None = None,
        liveness: Check | None = None,
        readiness: Check | None = None,
        host: str = "0.0.0.0",  # noqa: S104 - the pod's probes and Prometheus reach it from outside
        port: int = 8080,
    ) -> None:
        """With a registry and checks, the server starts in operator mode; without, in no mode
        until `serve_operator` or `serve_standby`."""
        self._mode: OperatorMode | StandbyMode | None = None
        if registry is not None:
            self.serve_operator(registry, liveness or (lambda: []), readiness or (lambda: []))
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    def serve_operator(self, registry: HealthRegistry, liveness: Check, readiness: Check) -> None:
        self._mode = OperatorMode(registry, liveness, readiness)

    def serve_standby(self, leader_endpoint: Callable[[], str]) -> None:
        self._mode = StandbyMode(leader_endpoint)

    def serve_starting(self) -> None:
        """Neither mode: elected, while the operator starts (503, and no health API forwarding,
        which would now reach this very server)."""
        self._mode = None

    @property
    def started(self) -> bool:
        return self._runner is not None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get(HEALTH_API + "{component}", self._component)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("HTTP server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _probe(self, pick: Callable[[OperatorMode], Check], ok_text: str) -> web.Response:
        mode = self._mode
        if isinstance(mode, StandbyMode):
            return web.Response(text=STANDBY_BODY)
        if mode is None:
            return web.Response(status=503, text="starting\n")
        return _check_response(pick(mode), ok_text)

    async def _healthz(self, request: web.Request) -> web.Response:
        return self._probe(lambda mode: mode.liveness, "ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        return self._probe(lambda mode: mode.readiness, "ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        # Rendering 500 platforms' series takes a noticeable fraction of a second: keep it off the loop.
        body = await off_loop(exposition.render_latest)
        return web.Response(body=body, headers={"Content-Type": exposition.CONTENT_TYPE})

    async def _component(self, request: web.Request) -> web.Response:
        mode = self._mode
        if isinstance(mode, StandbyMode):
            status, content_type, body = await off_loop(
                forward_to_leader, mode.leader_endpoint(), request.path_qs
            )
            return web.Response(status=status, body=body, headers={"Content-Type": content_type})
        if mode is None:
            return web.json_response({"error": "starting"}, status=503)
        component = request.match_info["component"]
        if component not in COMPONENTS:
            return web.json_response({"error": "unknown component"}, status=404)
        status, report = health_report(
            mode.registry, component, request.query.get("namespace", ""), request.query.get("name", "")
        )
        return web.json_response(report, status=status, headers={"Cache-Control": "no-store"})
