"""The operator's HTTP server: liveness, readiness, Prometheus metrics and health JSON.

- `/healthz`: 200 when `liveness()` holds (watches and probe loops alive), else 503.
- `/readyz`: the same for `readiness()`.
- `/metrics`: the default Prometheus registry.
- `/api/calls/health/jitsi`, `/api/calls/health/coturn`: every probed platform's health
  (optionally `?namespace=&name=` for one), 200 when all are healthy, 503 otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from callplatform import exposition
from callplatform.probes.health import ComponentHealth, HealthRegistry
from callplatform.probes.result import COMPONENTS

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


class OperatorHttpServer:
    def __init__(
        self,
        registry: HealthRegistry,
        liveness: Callable[[], bool],
        readiness: Callable[[], bool],
        host: str = "0.0.0.0",  # noqa: S104 - the pod's probes and Prometheus reach it from outside
        port: int = 8080,
    ) -> None:
        self._registry = registry
        self._liveness = liveness
        self._readiness = readiness
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/api/calls/health/{component}", self._component)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("HTTP server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @staticmethod
    def _check(check: Callable[[], bool]) -> bool:
        try:
            return bool(check())
        except Exception:
            log.exception("health check raised")
            return False

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self._check(self._liveness)
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unhealthy\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok = self._check(self._readiness)
        return web.Response(status=200 if ok else 503, text="ready\n" if ok else "not ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        # Rendering 500 platforms' series takes a noticeable fraction of a second: keep it off the loop.
        body = await asyncio.to_thread(exposition.render_latest)
        return web.Response(body=body, headers={"Content-Type": exposition.CONTENT_TYPE})

    async def _component(self, request: web.Request) -> web.Response:
        component = request.match_info["component"]
        if component not in COMPONENTS:
            return web.json_response({"error": "unknown component"}, status=404)
        status, body = health_report(
            self._registry, component, request.query.get("namespace", ""), request.query.get("name", "")
        )
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
