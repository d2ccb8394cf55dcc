"""The aiohttp application: lifecycle through cleanup_ctx, health, metrics, API routes and
the web console. Access (API token or console session with a role) is checked for every
route by console.auth's middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from acd.handlers import add_routes as add_acd_routes
from acd.wiring import ACD
from console.auth import Console, ConsoleConfig
from console.views import add_routes as add_console_routes
from ivr.handlers import IVR
from ivr.handlers import add_routes as add_ivr_routes
from kpi.handlers import KPI
from kpi.handlers import add_routes as add_kpi_routes
from recordings.handlers import RECORDINGS
from recordings.handlers import add_routes as add_recording_routes

from .engine import Engine

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)


async def healthz(request: web.Request) -> web.Response:
    checks = await request.app[ENGINE].health()
    status = 200 if all(checks.values()) else 503
    return web.json_response({"ok": status == 200, **checks}, status=status)


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.metrics.ami_connected.set(1 if engine.ami.connected else 0)
    engine.refresh_gauges()
    body = generate_latest(engine.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(engine: Engine, console_config: ConsoleConfig | None = None) -> web.Application:
    def call_owner(call_id: str) -> str | None:
        return next((c.agent_id for c in engine.tracker.live() if c.id == call_id), None)

    console = Console(engine.db, engine.secrets.api_token,
                      console_config or ConsoleConfig.from_env(), call_owner)
    app = web.Application(middlewares=[console.middleware])
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
    add_console_routes(app, console)
    return app
