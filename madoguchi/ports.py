"""The application's adapters between features: each feature states what it needs from the
others as a port (a Protocol in its own package); these classes provide them from the
features' services, so no feature imports another."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from acd.agents import TRANSITIONS, AgentState
from acd.ports import Announcer
from acd.service import OPERATOR_ACTIONS, Acd
from ami_bridge.ami import AmiClient
from ami_bridge.fax import FaxDialer
from ami_bridge.pbx.confgen import Layout
from bookings.allocation import ACTIVE, Rule
from bookings.errors import (
    AlreadyCancelled,
    BookingError,
    BookingNotFound,
    Duplicate,
    EventStopped,
    NotEligible,
    SessionFull,
    WindowClosed,
)
from bookings.service import BookingService, Channel, Who
from console.ports import (
    CenterFacts,
    ConsolePorts,
    ExportSummary,
    OperatorFacts,
    RecordingsAdmin,
)
from core.calls import Call
from core.fax import FaxSettings
from core.settings import Settings
from core.transfers import resolve
from fax.ports import FaxSender
from ivr.booking_port import (
    BookingPort,
    BookOutcome,
    BookResult,
    CallerBooking,
    CancelOutcome,
    OpenSession,
)
from ivr.flow import ToQueue
from ivr.prompts import Audio
from ivr.schedule import OverrideMode
from ivr.service import IvrService
from recordings.config import MIN_RETENTION_DAYS, recording_settings
from recordings.export import export_stream
from recordings.service import RecordingService
from survey.service import LiveCalls


def board_status(ivr: IvrService) -> Callable[[str], str | None]:
    """The IVR event board's status of an entry, for bookings (which never import the IVR):
    the board current when asked, so a change there shows on the next page or booking."""
    def status(event_id: str) -> str | None:
        board = getattr(ivr, "board", None)  # set when the IVR service starts
        if board is None:
            return None
        return next((e.status for e in board.events if e.id == event_id), None)
    return status


class RecordingsForConsole(RecordingsAdmin):
    min_retention_days = MIN_RETENTION_DAYS

    def __init__(self, recordings: RecordingService, settings: Settings) -> None:
        self.recordings = recordings
        self.settings = settings

    def retention_days(self) -> int:
        return self.recordings.settings.retention_days

    def configured_retention_days(self) -> int:
        return recording_settings(self.settings).retention_days

    async def set_retention(self, days: int) -> int:
        return await self.recordings.set_retention(self.settings.state_dir, days)

    async def export(self, start: datetime, end: datetime,
                     write: Callable[[bytes], Awaitable[None]]) -> ExportSummary:
        async def sink(chunk: bytes) -> None:
            await write(chunk)

        return await export_stream(self.recordings, start, end, sink)


class IvrForConsole(CenterFacts):
    def __init__(self, ivr: IvrService) -> None:
        self.ivr = ivr

    def services(self) -> list[str]:
        return sorted(self.ivr.current.entry)

    def override_modes(self) -> list[str]:
        return [m.value for m in OverrideMode]

    def topics(self) -> list[str]:
        # a topic written as {variable} is only known on the call
        return sorted({n.topic for f in self.ivr.current.flows.values()
                       for n in f.nodes.values()
                       if isinstance(n, ToQueue) and n.topic and "{" not in n.topic})

    def flow_nodes(self) -> list[str]:
        return sorted({node for f in self.ivr.current.flows.values() for node in f.nodes})


class AcdForConsole(OperatorFacts):
    def allowed_actions(self) -> dict[str, list[str]]:
        return {state.value: [action for action, event in OPERATOR_ACTIONS.items()
                              if (state, event) in TRANSITIONS]
                for state in AgentState}


class SpokenAnnouncements(Announcer):
    """The ACD's sentences for waiting callers, spoken by the IVR's text-to-speech. The few
    texts in use (positions, minutes) are kept here by text; the files themselves are the
    TTS cache's, named by content, so a text is synthesised once per machine."""

    MAX_KEPT = 4096  # texts remembered; far more than positions × minutes × languages

    def __init__(self, ivr: IvrService) -> None:
        self.ivr = ivr
        self._kept: dict[tuple[str, str], str | None] = {}

    async def render(self, text: str, language: str) -> str | None:
        key = (text, language)
        if key not in self._kept:
            # synthesis runs a subprocess: off the event loop
            name = await asyncio.to_thread(self.ivr.tts.render, text, language)
            if len(self._kept) >= self.MAX_KEPT:
                self._kept.clear()
            self._kept[key] = self.ivr.sound_path(
                Audio("wait", language, text, f"tts/{name}" if name else None))
        return self._kept[key]


def console_ports(ivr: IvrService, recordings: RecordingService,
                  settings: Settings) -> ConsolePorts:
    return ConsolePorts(RecordingsForConsole(recordings, settings), IvrForConsole(ivr),
                        AcdForConsole(), settings)


class CallsForSurvey(LiveCalls):
    """Live calls for the survey's marking: the ACD knows who is talking to whom."""

    def __init__(self, acd: Acd) -> None:
        self.acd = acd

    def live(self, call_id: str) -> Call | None:
        return next((c for c in self.acd.tracker.live() if c.id == call_id), None)

    def connected(self, call: Call) -> bool:
        ring = self.acd.call_of_agent(call.agent_id) if call.agent_id else None
        return ring is not None and ring.call is call


def service_open(ivr: IvrService) -> Callable[[str], bool]:
    """The ACD serves a callback only while its service is open (hours, holidays, the
    supervisors' overrides): the IVR knows."""
    def is_open(service: str) -> bool:
        try:
            return bool(ivr.status(service)["state"] == "open")
        except Exception:  # an unknown service (config changed): never block the callback
            return True
    return is_open


class FaxCalls(FaxSender):
    """The FAX feature's calls, placed by the AMI adapter (SendFAX in the dialplan) on the
    trunk the transfer rules name for the number."""

    def __init__(self, ami: AmiClient, layout: Layout, settings: Settings,
                 fax: FaxSettings) -> None:
        self.dialer = FaxDialer(ami, layout, fax)
        self.transfers = settings.transfers

    async def send(self, job_id: str, tiff: Path, number: str) -> None:
        await self.dialer.send(job_id, tiff, resolve(self.transfers, number).dial)


class BookingsForIvr(BookingPort):
    """The IVR booking node's bookings: the service's own checks decide, and every refusal
    becomes an outcome the dialogue can say. Bookings and cancellations carry the call's id,
    so the desk and the audit log tie them to the call."""

    _REFUSALS: tuple[tuple[type[BookingError], BookOutcome], ...] = (
        (SessionFull, BookOutcome.FULL), (WindowClosed, BookOutcome.CLOSED),
        (EventStopped, BookOutcome.STOPPED), (Duplicate, BookOutcome.DUPLICATE),
        (NotEligible, BookOutcome.NOT_ELIGIBLE))

    def __init__(self, bookings: BookingService) -> None:
        self.bookings = bookings

    async def open_sessions(self, category: str, language: str, limit: int
                            ) -> list[OpenSession]:
        out = []
        for view in await self.bookings.open_events(category):
            ev = view.row
            lottery = ev.rule == Rule.LOTTERY.value
            for sess in view.sessions:
                if sess.free == 0 and not (ev.waiting_list or lottery):
                    continue  # nothing a caller could get: not read out
                out.append(OpenSession(sess.row.id, _lang(language, ev.title_ja, ev.title_en),
                                       sess.row.starts_at, sess.free, ev.waiting_list,
                                       lottery))
        return out[:limit]

    async def book(self, session_id: int, phone: str, call_id: str) -> BookResult:
        try:
            found = await self.bookings.book_for_caller(session_id, phone, call_id=call_id)
        except BookingError as exc:
            outcome = next((o for kind, o in self._REFUSALS if isinstance(exc, kind)),
                           BookOutcome.REFUSED)
            return BookResult(outcome)
        return BookResult(BookOutcome(found.booking.status), found.booking.number)

    async def bookings_of(self, phone: str, language: str, call_id: str, limit: int
                          ) -> list[CallerBooking]:
        now = self.bookings.clock()
        found = await self.bookings.search(Who("ivr", call_id, Channel.IVR), phone=phone)
        mine = [f for f in found if f.booking.status in ACTIVE and f.session.starts_at > now]
        mine.sort(key=lambda f: (f.session.starts_at, f.booking.id))
        return [CallerBooking(f.booking.number, _lang(language, f.event.title_ja,
                                                      f.event.title_en),
                              f.session.starts_at, f.booking.status) for f in mine[:limit]]

    async def cancel(self, number: str, phone: str, call_id: str) -> CancelOutcome:
        try:
            await self.bookings.cancel_for_caller(number, phone, call_id)
        except BookingNotFound:
            return CancelOutcome.NOT_FOUND
        except AlreadyCancelled:
            return CancelOutcome.ALREADY
        return CancelOutcome.CANCELLED


def _lang(language: str, ja: str, en: str) -> str:
    return en if language == "en" and en else ja
