"""The aiohttp application: lifecycle through cleanup_ctx, health, metrics, API routes."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from acd.handlers import add_routes as add_acd_routes
from acd.wiring import ACD
from ivr.handlers import IVR
from ivr.handlers import add_routes as add_ivr_routes
from kpi.handlers import KPI
from kpi.handlers import add_routes as add_kpi_routes
from recordings.handlers import RECORDINGS
from recordings.handlers import add_routes as add_recording_routes

from .engine import Engine
from .errors import json_error

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
PUBLIC_PATHS = {"/healthz"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def token_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route except the health probe needs the API token until users and roles exist."""
    if request.path not in PUBLIC_PATHS:
        token = request.app[ENGINE].secrets.api_token
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise json_error(401, "unauthorized", "a valid API token is required")
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    checks = await request.app[ENGINE].health()
    status = 200 if all(checks.values()) else 503
    return web.json_response({"ok": status == 200, **checks}, status=status)


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.metrics.ami_connected.set(1 if engine.ami.connected else 0)
    body = generate_latest(engine.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(engine: Engine) -> web.Application:
    app = web.Application(middlewares=[token_auth])
    app[ENGINE] = engine
    app[RECORDINGS] = engine.recordings
    app[ACD] = engine.acd_parts
    app[IVR] = engine.ivr_state
    app[KPI] = engine.kpi

    async def engine_ctx(_app: web.Application) -> AsyncIterator[None]:
        await engine.start()
        yield
        await engine.stop()

    app.cleanup_ctx.append(engine_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_recording_routes(app)
    add_acd_routes(app)
    add_ivr_routes(app)
    add_kpi_routes(app)
    return app
