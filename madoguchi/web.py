"""The aiohttp application: lifecycle through cleanup_ctx, health, metrics, API routes and
the web console. Access (API token or console session with a role) is checked for every
route by console.auth's middleware."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from acd.http import add_routes as add_acd_routes
from acd.wiring import ACD
from bookings.http import BOOKINGS, Bookings
from bookings.http import add_routes as add_booking_routes
from console.auth import Console, ConsoleConfig
from console.directory import MAX_CSV_BYTES
from console.http import add_routes as add_console_routes
from core.access import PUBLIC, SUPERVISORS, Routes
from core.errors import JSON_LIMIT, ApiError, api_errors, json_error, too_large
from fax.http import FAX, OUTBOX, SEND_ROUTE, body_limit
from fax.http import add_routes as add_fax_routes
from ivr.http import IVR
from ivr.http import add_routes as add_ivr_routes
from kpi.http import KPI
from kpi.http import add_routes as add_kpi_routes
from kpi.report_font import report_font
from recordings.http import RECORDINGS
from recordings.http import add_routes as add_recording_routes
from survey.http import SURVEY
from survey.http import add_routes as add_survey_routes

from .engine import Engine
from .ports import console_ports

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
# routes taking more than JSON_LIMIT: (method, route) -> (limit, what the refusal says)
LARGE_BODIES: web.AppKey[dict[tuple[str, str], tuple[int, str]]] = web.AppKey(
    "large_bodies", dict)
CSV_IMPORT = ("POST", "/console/admin/import")  # the one route taking a large body
# the CSV upload's form fields and multipart framing around the file itself
FORM_OVERHEAD = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard_input(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before the access check and every handler: no control character in the path or a
    query parameter (PostgreSQL refuses NUL in text and would answer a 500; none belongs in
    an id, a date or a search), and bodies within their limit: the CSV import and the FAX
    upload (LARGE_BODIES) up to their documented sizes, every other body (JSON, forms) up to
    JSON_LIMIT, refused with 413."""
    if _CONTROL.search(request.path):
        raise json_error(400, "control_character", "the path contains a control character")
    for key, value in request.query.items():
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise json_error(400, "control_character",
                             f"query parameter {key[:32]!r} contains a control character")
    resource = request.match_info.route.resource
    route = (request.method, resource.canonical if resource is not None else request.path)
    large = request.app.get(LARGE_BODIES, {}).get(route)
    limit = large[0] if large else JSON_LIMIT

    def refusal() -> ApiError:
        return json_error(413, "too_large", large[1]) if large else too_large(limit)

    if request.content_length is not None and request.content_length > limit:
        raise refusal()
    if request.body_exists and not large:  # the large ones are read by their handlers
        # aiohttp itself stops reading past client_max_size, chunked bodies included
        request = request.clone(client_max_size=limit)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        raise refusal() from None  # aiohttp's own, past client_max_size: ours say why


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
                      console_config or ConsoleConfig.from_env(engine.env), call_owner,
                      metrics_token=engine.secrets.metrics_token,
                      extensions=[a.id for a in engine.settings.agents])
    fax_limit = body_limit(engine.fax)  # the FAX upload is streamed by its handler
    app = web.Application(middlewares=[api_errors, guard_input, console.middleware],
                          client_max_size=MAX_CSV_BYTES + FORM_OVERHEAD)
    app[LARGE_BODIES] = {
        CSV_IMPORT: (MAX_CSV_BYTES + FORM_OVERHEAD,
                     f"the CSV file is over {MAX_CSV_BYTES // (1024 * 1024)} MiB"),
        SEND_ROUTE: (fax_limit, f"the PDF is over "
                     f"{engine.fax.config.fax.max_upload_bytes // (1024 * 1024)} MiB")}
    app[ENGINE] = engine
    app[RECORDINGS] = engine.recordings
    app[ACD] = engine.acd_parts
    app[IVR] = engine.ivr_state
    app[KPI] = engine.kpi
    app[SURVEY] = engine.survey
    # the PDF participant list is drawn in the monthly report's font
    app[BOOKINGS] = Bookings(engine.bookings, engine.booking_settings, font=report_font)
    app[FAX] = engine.fax
    app[OUTBOX] = engine.fax_outbox

    async def engine_ctx(_app: web.Application) -> AsyncIterator[None]:
        async with engine.running():  # a failed start has already stopped what it started
            yield

    app.cleanup_ctx.append(engine_ctx)
    routes = Routes(app)
    routes.get("/healthz", healthz, PUBLIC)
    routes.get("/metrics", metrics, SUPERVISORS)  # and the scraper's own token
    add_recording_routes(app)
    add_acd_routes(app)
    add_ivr_routes(app)
    add_kpi_routes(app)
    add_survey_routes(app)
    add_booking_routes(app)
    add_fax_routes(app)
    add_console_routes(app, console, console_ports(engine.ivr_state, engine.recordings,
                                                   engine.settings))
    return app
