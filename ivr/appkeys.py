"""The IVR's objects on the web app, for its route modules."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .service import IvrService

IVR: web.AppKey[IvrService] = web.AppKey("ivr", IvrService)
SCHEDULES_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("schedules_lock", asyncio.Lock)
