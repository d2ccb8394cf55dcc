"""Runs the booking dialogue for one call: its sentences go to an `io` (the FastAGI channel,
or the simulator's script of keys) and its questions to the booking port. One loop for live
calls and `madoguchi flows simulate`, so both behave alike."""

from __future__ import annotations

import logging
from typing import Protocol

from .booking_dialogue import (
    Book,
    BookingDialogue,
    Cancel,
    Fed,
    Finished,
    ListBookings,
    ListSessions,
    PortFailed,
    Speak,
)
from .booking_port import BookingPort
from .interpreter import Digits, Played

log = logging.getLogger(__name__)


class DialogueIO(Protocol):
    async def speak(self, step: Speak) -> Played | Digits:
        """Say the sentences; `Digits` (the key, "" for none) when the step collects."""


async def run_dialogue(dialogue: BookingDialogue, port: BookingPort | None, io: DialogueIO,
                       call_id: str) -> str:
    """Run to the end; returns how it ended. A hang-up raised by `io` goes through."""
    step = dialogue.start()
    while not isinstance(step, Finished):
        fed: Fed
        if isinstance(step, Speak):
            fed = await io.speak(step)
        else:
            try:
                fed = await _ask(port, step, dialogue.language, call_id)
            except Exception:  # the caller hears an apology; the reason goes to the log
                log.exception("call %s: bookings unavailable in the IVR", call_id)
                fed = PortFailed()
        step = dialogue.feed(fed)
    return step.reason


async def _ask(port: BookingPort | None, step: ListSessions | Book | ListBookings | Cancel,
               language: str, call_id: str) -> Fed:
    if port is None:
        raise RuntimeError("no bookings service is connected to the IVR")
    if isinstance(step, ListSessions):
        return await port.open_sessions(step.category, language, step.limit)
    if isinstance(step, Book):
        return await port.book(step.session_id, step.phone, call_id)
    if isinstance(step, ListBookings):
        return await port.bookings_of(step.phone, language, call_id, step.limit)
    return await port.cancel(step.number, step.phone, call_id)
