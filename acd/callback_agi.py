"""FastAGI `callback`: a waiting caller pressed the offer's key. They confirm the number we
would call (their caller ID, if the transfer rules allow dialling it) or key another one;
the ACD then keeps their place as a callback and they may hang up. Any key other than the
expected ones, or silence, sends them back to the line with their place: nothing is lost.
"""

from __future__ import annotations

import logging

from ami_bridge.dialplan import Var
from ami_bridge.fastagi import AgiSession
from core.calls import Call, CallTracker, clean_number
from core.settings import TransferSettings
from core.transfers import TransferRefused, resolve

from .announcements import language_of
from .callback_store import DuplicateCallback
from .callback_texts import say, spoken_digits
from .ports import Announcer
from .service import Acd

log = logging.getLogger(__name__)

KEY_TIMEOUT_MS = 6000
NUMBER_TIMEOUT_MS = 15000
MAX_NUMBER_DIGITS = 15
TRIES = 2  # a wrong or missing answer is asked once more


class CallbackAgi:
    def __init__(self, acd: Acd, tracker: CallTracker, transfers: TransferSettings,
                 announcer: Announcer) -> None:
        self.acd = acd
        self.tracker = tracker
        self.transfers = transfers
        self.announcer = announcer

    def allowed(self, number: str) -> bool:
        """Only numbers a transfer could dial: an outside number with an allowed prefix (a
        city-hall extension is not a citizen's phone)."""
        try:
            return resolve(self.transfers, number).kind == "external"
        except TransferRefused:
            return False

    async def handle(self, session: AgiSession) -> None:
        call = self.tracker.get(session.uniqueid)
        call_id = (session.args or [""])[0]
        if call is None or call.id != call_id or not self.acd.offered_callback(call):
            log.info("callback request refused on %s: no offer for this call", session.channel)
            return
        number = await self._number(session, call)
        if number is None:
            await self._say(session, call, "back")
            return
        try:
            cb = await self.acd.request_callback(call, number)
        except DuplicateCallback:
            await self._say(session, call, "duplicate")
            return
        if cb is None:
            return  # an operator took the caller meanwhile
        await session.set_variable(Var.CALLBACK_TAKEN, "1")
        await self._say(session, call, "taken")

    async def _number(self, session: AgiSession, call: Call) -> str | None:
        """The number to call back, confirmed by the caller; None: back to the line."""
        number = call.caller if self.allowed(call.caller) else None
        for _ in range(TRIES):
            if number is None:
                keyed = await self._ask(session, call, "enter", MAX_NUMBER_DIGITS,
                                        NUMBER_TIMEOUT_MS)
                keyed = clean_number(keyed)
                if not keyed.isdigit() or not self.allowed(keyed):
                    await self._say(session, call, "refused")
                    continue
                number = keyed
            key = await self._ask(session, call, "confirm", 1, KEY_TIMEOUT_MS,
                                  digits=spoken_digits(number))
            if key == "1":
                return number
            if key == "2":
                number = None
        return None

    async def _sound(self, call: Call, what: str, **fields: str) -> str | None:
        language = language_of(call)
        return await self.announcer.render(say(what, language, **fields), language)

    async def _ask(self, session: AgiSession, call: Call, what: str, max_digits: int,
                   timeout_ms: int, **fields: str) -> str:
        sound = await self._sound(call, what, **fields)
        if sound is None:
            return ""
        return await session.get_data(sound, timeout_ms, max_digits)

    async def _say(self, session: AgiSession, call: Call, what: str) -> None:
        sound = await self._sound(call, what)
        if sound is not None:
            await session.stream_file(sound)
