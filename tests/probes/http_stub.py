"""A local HTTP(S) server standing in for JVB/jicofo/web: healthy, slow, 5xx, redirects, JWT."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import jwt
from aiohttp import web

JVB_UNHEALTHY_BODY = {"status": "unhealthy", "reason": "no ice candidates"}


@dataclass
class Stub:
    base_url: str
    requests: list[str] = field(default_factory=list)


def build_app(
    stub: Stub, *, jwt_secret: str = "", jwt_audience: str = "jitsi", slow_seconds: float = 3.0
) -> web.Application:
    async def record(request: web.Request) -> None:
        stub.requests.append(request.path_qs)

    async def healthy(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=200)  # JVB and jicofo answer 200 with an empty body

    async def unhealthy(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(JVB_UNHEALTHY_BODY, status=500)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(slow_seconds)
        return web.Response(status=200)

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/about/health")

    async def loop(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/loop")

    async def token(request: web.Request) -> web.Response:
        await record(request)
        try:
            claims = jwt.decode(
                request.query.get("jwt", ""), jwt_secret, algorithms=["HS256"], audience=jwt_audience
            )
        except jwt.PyJWTError:
            return web.Response(status=403, text="bad token")
        if claims.get("room") != "callplatform-probe":
            return web.Response(status=403, text="wrong room")
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_get("/about/health", healthy)
    app.router.add_get("/", healthy)
    app.router.add_get("/unhealthy", unhealthy)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/token", token)
    return app


@contextlib.asynccontextmanager
async def serving(
    *, ssl_context: ssl.SSLContext | None = None, jwt_secret: str = "", host: str = "127.0.0.1"
) -> AsyncIterator[Stub]:
    stub = Stub(base_url="")
    runner = web.AppRunner(build_app(stub, jwt_secret=jwt_secret), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    stub.base_url = f"{'https' if ssl_context else 'http'}://{host}:{port}"
    try:
        yield stub
    finally:
        await runner.cleanup()
