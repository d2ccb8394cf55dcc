"""The ACD's parts as the web layer sees them (one typed key on the app)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from core.settings import Settings
from store.db import Database

from .agi import OperatorAgi
from .bus import Bus
from .history import StateHistory
from .service import Acd
from .supervision import Supervision


@dataclass
class AcdParts:
    settings: Settings
    db: Database
    acd: Acd
    bus: Bus
    history: StateHistory
    supervision: Supervision
    agi: OperatorAgi


ACD: web.AppKey[AcdParts] = web.AppKey("acd", AcdParts)
