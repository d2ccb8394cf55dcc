"""The engine: wires AMI events, the FastAGI IVR, the ACD and the recordings index together.

Everything runs in one asyncio loop. AMI events arrive in order through one subscriber; the
caller channel's Hangup closes a call exactly once; closing a call (row + recording) runs as
a task that shutdown waits for, so a SIGTERM loses no call record.

Building the engine loads no flow and opens no connection, lock or port. Starting it enters
its parts (PARTS, each an async context manager) in order on one exit stack; stopping closes
the stack, so the parts stop in exactly the reverse order, and a part that fails to start
stops those already started, in reverse, before the failure reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from prometheus_client import Gauge

from acd.agents import Change
from acd.agi import SCRIPTS as OPERATOR_SCRIPTS
from acd.agi import OperatorAgi
from acd.bus import Bus
from acd.callback_agi import CallbackAgi
from acd.callback_store import CallbackStore
from acd.callbacks import Callback
from acd.history import StateHistory, restorable
from acd.resync import Resync
from acd.service import Acd
from acd.supervision import Supervision
from acd.wiring import AcdParts
from ami_bridge.agi_auth import AgiKey, AmiChannelCheck
from ami_bridge.ami import AmiClient
from ami_bridge.ami_events import DeviceStateChange, Hangup, parse_event
from ami_bridge.dialplan import AgiScript, UserEvent
from ami_bridge.fastagi import AgiSession, FastAgiServer
from ami_bridge.pbx.confgen import Layout
from bookings.retention import PurgeJob
from bookings.service import BookingService
from bookings.settings import booking_settings
from core.calls import Call, CallTracker, Outcome, TransferStep
from core.environ import Environ, resolve
from core.satisfaction import points
from core.secrets import Secrets, fastagi_secret_watch
from core.settings import Settings
from core.statelock import StateLock
from fax.jobs import FaxJobs
from fax.sending import Outbox
from fax.service import FaxService
from fax.settings import fax_config
from ivr.agi_runner import IvrRunner
from ivr.prompts import LANGUAGES
from ivr.service import IvrService
from ivr.survey import SurveyResult
from kpi.service import CallRef, KpiService
from recordings.jobs import RecordingJobs
from recordings.service import RecordingService
from store.db import Database
from store.models import AuditEntry
from survey.service import Response, SurveyService

from . import ports
from .metrics import Metrics
from .ports import SpokenAnnouncements

log = logging.getLogger(__name__)
JOURNAL_REPLAY_S = 15.0  # how often call records the database refused are offered again

# The parts in the order they start (and the reverse of the order they stop). Why this order:
# - the state lock first and last: nothing touches the state folder without it;
# - the journal is replayed before the reconciler (recording jobs) looks at files;
# - the FAX jobs (spool indexing, sent jobs' results) need the database, not AMI: a result
#   missed while AMI is away is found by their poll;
# - agent states are restored before the ACD and AMI start, and their writer is flushed only
#   once the ACD, which reports changes to it, has stopped; so are pending callbacks, which
#   take their places in the waiting lines before anyone is rung;
# - the closing-call drain waits for call records after AMI (Hangup events) and the resync
#   (calls Asterisk no longer has), which start closings, have stopped, and before the
#   database closes;
# - the IVR's flow set and state files are loaded (or refused) first, before the database,
#   the background jobs or Asterisk are touched;
# - the resync stops before the ACD it rebuilds, the ACD and supervision before AMI, through
#   which the ACD writes its last facts to the channels;
# - the bookings purge needs the database, and stops before it closes;
# - FastAGI starts last and so stops first: no new call arrives while the rest stops.
PARTS = ("state_lock", "ivr_service", "database", "journal_replay", "agent_history",
         "callbacks", "closing_calls", "recording_jobs", "booking_purge", "fax_jobs",
         "journal_replay_task", "ami",
         "supervision", "acd", "resync", "sighup", "fastagi")


class Engine:
    def __init__(self, settings: Settings, secrets: Secrets, layout: Layout,
                 env: Environ | None = None) -> None:
        self.settings = settings
        self.secrets = secrets
        self.layout = layout
        self.env = resolve(env)  # the environment's overrides (core/environ.py)
        # IVR flows, schedules, overrides and the event board; loaded (and an invalid flow
        # set refused) when the engine starts
        self.ivr_state = IvrService(settings, layout.local / "sounds", layout.ast("sounds"),
                                    settings.state_dir, tts_cache=self.env.tts_cache)
        self.metrics = Metrics()
        self.db = Database(settings.database_url)
        self.state_lock = StateLock(settings.state_dir)
        self.tracker = CallTracker()
        a = settings.asterisk
        # the events it receives are filtered by Asterisk (manager.conf, ENGINE_EVENTS): the
        # Filter action would need the 'system' write class, which the engine does not hold
        self.ami = AmiClient(a.ami_host, a.ami_port, a.ami_username, secrets.ami_secret)
        self.bus = Bus()
        self.history = StateHistory(self.db)
        self.acd = Acd(settings, self.ami, self.tracker, on_answer=self._answered,
                       on_change=self._agent_changed,
                       announcer=SpokenAnnouncements(self.ivr_state))
        self.acd.on_reachable = lambda agent_id, reachable: self.bus.publish(
            {"type": "reachability", "agent": agent_id, "reachable": reachable})
        # callbacks: stored, and served only while their service is open
        self.acd.callback_store = CallbackStore(self.db)
        self.acd.service_open = ports.service_open(self.ivr_state)
        self.acd.on_callback = self._callback_changed
        self.callback_agi = CallbackAgi(self.acd, self.tracker, settings.transfers,
                                        SpokenAnnouncements(self.ivr_state))
        self.resync = Resync(self.ami, self.tracker, self.acd, self._close_call)
        self.supervision = Supervision(self.acd, self._audit)
        self.operator_agi = OperatorAgi(self.acd, self.tracker, settings.transfers)
        self.acd_parts = AcdParts(settings, self.db, self.acd, self.bus, self.history,
                                  self.supervision, self.operator_agi)
        self.kpi = KpiService(self.db, self._call_ref, self.tracker.clock,
                              known_agents=frozenset(a.id for a in settings.agents))
        self.recordings = RecordingService.for_settings(self.db, layout.local / "recordings",
                                                        settings)
        self._stack: AsyncExitStack | None = None
        Gauge("madoguchi_call_journal_pending", "Call records waiting in the journal for the "
              "database", registry=self.metrics.registry).set_function(self._journal_pending)
        self.recording_jobs = RecordingJobs(self.recordings, self.metrics.registry,
                                            lambda: [c.id for c in self.tracker.live()])
        # FAXes: the spool indexed and sent jobs polled on a timer; sending through AMI
        self.fax = FaxService(self.db, fax_config(settings), self.tracker.clock)
        self.fax_outbox = Outbox(self.fax, settings.transfers, ports.FaxCalls(
            self.ami, layout, settings, self.fax.config.fax))
        self.fax_jobs = FaxJobs(self.fax, self.fax_outbox, self.metrics.registry)
        # calls marked for the post-call survey (API) and its answers (from the IVR)
        self.survey = SurveyService(self.db, self.ami, ports.CallsForSurvey(self.acd),
                                    self.tracker.clock)
        # course and event bookings; the IVR's event board stops those it cancels or postpones
        self.booking_settings = booking_settings(settings)
        self.bookings = BookingService(self.db, self.tracker.clock,
                                       ports.board_status(self.ivr_state))
        self.kpi.booking_counts = self.bookings.counts  # the monthly report's bookings
        self.booking_purge = PurgeJob(self.bookings, self.booking_settings, settings.state_dir)
        self.ivr = IvrRunner(settings, self.ivr_state, self.tracker, layout.ast("recordings"),
                             self._received, self._enqueue, on_survey=self._survey_answered,
                             bookings=ports.BookingsForIvr(self.bookings))
        agi = settings.fastagi
        # the dialplan's secret first, then AMI's word that the channel exists, before any
        # IVR or ACD handler sees a session
        self.fastagi = FastAgiServer(
            self._route_agi, agi.host, agi.port, max_sessions=agi.max_sessions,
            max_sessions_per_peer=agi.max_sessions_per_peer,
            key=AgiKey(secrets.fastagi_secret, fastagi_secret_watch(settings.state_dir)),
            verify=AmiChannelCheck(self.ami).exists)
        self._closing: set[asyncio.Task[None]] = set()
        for queue in self.acd.waiting_counts():
            # read at scrape time: a caller's wait grows between events
            self.metrics.longest_wait.labels(queue).set_function(self._longest_wait(queue))
        self._connections = 0
        self.ami.subscribe(self._on_event)
        self.ami.on_connected(self._on_connected)
        self.ami.on_disconnected(self._on_disconnected)

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start every part in PARTS order; on a failure, stop those already started (in
        reverse) and raise."""
        if self._stack is not None:
            raise RuntimeError("the engine is already started")
        async with AsyncExitStack() as stack:
            for name in PARTS:
                await stack.enter_async_context(self.part(name))
                log.debug("started %s", name)
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Stop the parts in the reverse of the order they started; nothing when stopped."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Engine]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    def part(self, name: str) -> AbstractAsyncContextManager[None]:
        """The part called `name` (one of PARTS), as a context manager not yet entered."""
        if name not in PARTS:
            raise KeyError(name)
        factory: Callable[[], AbstractAsyncContextManager[None]] = getattr(self, f"_{name}")
        return factory()

    @asynccontextmanager
    async def _state_lock(self) -> AsyncIterator[None]:
        # held until stop: erase and purge refuse to run beside this engine
        with self.state_lock:
            yield

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[None]:
        try:
            await self.db.create_schema()  # upgraded to the latest revision
            yield
        finally:
            await self.db.close()

    @asynccontextmanager
    async def _journal_replay(self) -> AsyncIterator[None]:
        # call records kept while the database was away, before the reconciler looks at files
        await self._replay_journal()
        yield

    @asynccontextmanager
    async def _agent_history(self) -> AsyncIterator[None]:
        for agent_id, row in (await self.history.last_states()).items():
            kept = restorable(row)
            if kept is not None:
                self.acd.restore(agent_id, kept[0], kept[1], row.at)
        await self.history.start()
        try:
            yield
        finally:
            await self.history.stop()  # writes what is queued

    @asynccontextmanager
    async def _callbacks(self) -> AsyncIterator[None]:
        assert self.acd.callback_store is not None
        self.acd.load_callbacks(await self.acd.callback_store.open_callbacks())
        yield

    @asynccontextmanager
    async def _closing_calls(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self._closing:
                await asyncio.gather(*self._closing, return_exceptions=True)

    @asynccontextmanager
    async def _recording_jobs(self) -> AsyncIterator[None]:
        self.recording_jobs.start()  # reconciler now, then on its timer; retention purge
        try:
            yield
        finally:
            await self.recording_jobs.stop()

    @asynccontextmanager
    async def _booking_purge(self) -> AsyncIterator[None]:
        self.booking_purge.start()  # once now, then on its timer
        try:
            yield
        finally:
            await self.booking_purge.stop()

    @asynccontextmanager
    async def _fax_jobs(self) -> AsyncIterator[None]:
        self.fax_jobs.start()  # the spool indexed now, then on its timer; retention purge
        try:
            yield
        finally:
            await self.fax_jobs.stop()

    @asynccontextmanager
    async def _journal_replay_task(self) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(self._replay_journal_every())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @asynccontextmanager
    async def _ivr_service(self) -> AsyncIterator[None]:
        await self.ivr_state.start()  # loads the flow set; FlowSetInvalid stops the start
        try:
            yield
        finally:
            await self.ivr_state.stop()

    @asynccontextmanager
    async def _ami(self) -> AsyncIterator[None]:
        await self.ami.start()  # returns at once; AMI may come later
        try:
            yield
        finally:
            await self.ami.close()

    @asynccontextmanager
    async def _acd(self) -> AsyncIterator[None]:
        self.acd.start()
        try:
            yield
        finally:
            await self.acd.close()

    @asynccontextmanager
    async def _supervision(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.supervision.close()

    @asynccontextmanager
    async def _resync(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.resync.close()

    @asynccontextmanager
    async def _sighup(self) -> AsyncIterator[None]:
        # SIGHUP reloads the flows, as POST /api/flows/reload does (not on Windows loops)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._reload_flows)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    @asynccontextmanager
    async def _fastagi(self) -> AsyncIterator[None]:
        try:
            await self.fastagi.start()
            self.metrics.fastagi_listening.set(1)
            yield
        finally:
            await self.fastagi.close()  # stops accepting, ends the sessions in progress
            self.metrics.fastagi_listening.set(0)

    async def health(self) -> dict[str, bool]:
        return {"ami": self.ami.connected, "fastagi": self.fastagi.listening,
                "database": await self.db.ping()}

    async def _replay_journal(self) -> None:
        try:
            await self.recordings.replay_journal()
        except Exception:  # retried at the next tick; the entries stay in the journal
            log.exception("journal replay failed")

    async def _replay_journal_every(self) -> None:
        while True:
            await asyncio.sleep(JOURNAL_REPLAY_S)
            await self._replay_journal()

    def _journal_pending(self) -> float:
        journal = self.recordings.journal
        return float(journal.count()) if journal is not None else 0.0

    # ---- callbacks ------------------------------------------------------------------------
    def _reload_flows(self) -> None:
        self.ivr_state.reload_soon()

    async def _route_agi(self, session: AgiSession) -> None:
        if session.script in OPERATOR_SCRIPTS:
            await self.operator_agi.handle(session)
        elif session.script == AgiScript.CALLBACK:
            await self.callback_agi.handle(session)
        else:
            await self.ivr.handle(session)

    def _callback_changed(self, cb: Callback) -> None:
        # live pages show callbacks by state; the number stays out of the event stream
        self.metrics.callbacks.labels(cb.service, cb.state.value).inc()
        self.bus.publish({"type": "callback", "callback": cb.id, "service": cb.service,
                          "state": cb.state.value})

    def _agent_changed(self, change: Change) -> None:
        self.history.record(change)
        self.bus.publish({"type": "agent", "agent": change.agent_id,
                          "event": change.event.value, "state": change.new.value,
                          "reason": change.reason, "at": change.at.isoformat()})

    async def _audit(self, actor: str, action: str, call_id: str, detail: str,
                     remote: str) -> None:
        """Supervisors' listen/whisper/barge go to the same audit log as recording plays."""
        await self.db.add(AuditEntry(at=self.tracker.clock(), actor=actor, client=remote[:64],
                                     action=action, call_id=call_id, detail=detail),
                          what=f"audit {action}")

    async def _fax_result(self, job: str) -> None:
        try:
            await self.fax_outbox.result(job)
        except Exception:  # the poll reads the result file again
            log.exception("FAX job %s: result not applied", job[:32])

    def _longest_wait(self, queue: str) -> Callable[[], float]:
        return lambda: self.acd.oldest_wait(self.tracker.clock()).get(queue, 0.0)

    def _call_ref(self, call_id: str) -> CallRef | None:
        """A live call for an interaction record written before the call's row is stored."""
        call = next((c for c in self.tracker.live() if c.id == call_id), None)
        if call is None:
            return None
        return CallRef(call.id, call.service, call.offered_at, call.agent_id,
                       call.answered_at is not None)

    async def _survey_answered(self, result: SurveyResult) -> None:
        stored = await self.survey.record(Response(
            result.call_id, result.service, result.agent_id, result.language,
            result.offered_at, [(a.question, a.position, a.value) for a in result.answers]))
        for row in stored:
            if row.answer is not None:
                self.metrics.survey_answers.labels(row.service, str(row.answer)).inc()
                self.metrics.survey_points.labels(row.service).inc(points(row.answer))

    def _received(self, call: Call) -> None:
        self.metrics.calls_received.labels(call.service).inc()

    async def _enqueue(self, call: Call) -> None:
        """The IVR hands a caller to the waiting line: offered, as the KPI's answer rate
        counts it (once per call, a re-queue is not a new offer)."""
        if call.queued_at is None:
            self.metrics.calls_offered.labels(call.service).inc()
        await self.acd.enqueue(call)

    def _answered(self, call: Call) -> None:
        self.metrics.calls_answered.labels(call.service).inc()
        if call.time_to_answer is not None:
            self.metrics.time_to_answer.labels(call.service).observe(call.time_to_answer)

    async def _on_event(self, event: Mapping[str, str]) -> None:
        name = event.get("Event")
        if name in ("Hangup", "DeviceStateChange"):
            typed = parse_event(event)  # required headers checked; incomplete ones dropped
            if isinstance(typed, Hangup):
                self.acd.channel_hungup(typed.uniqueid)
                call = self.tracker.end(typed.uniqueid)
                if call is not None:
                    self._close_call(call)
            elif isinstance(typed, DeviceStateChange):
                self.acd.device_state(typed.device, typed.state)
        elif name == "AttendedTransfer" and event.get("Result") == "Success":
            self._attended_transfer(event)
        elif name == "UserEvent" and event.get("UserEvent") == UserEvent.CALLBACK:
            self.acd.callback_result(event.get("Callback", ""), event.get("Status", ""),
                                     event.get("Answered", ""))
        elif name == "UserEvent" and event.get("UserEvent") == UserEvent.BOARD:
            # the hold loop starts the board (dialplans/); labels bounded to the IVR's languages
            lang = event.get("Language", "")
            self.metrics.board_played.labels(lang if lang in LANGUAGES else "other").inc()
        elif name == "UserEvent" and event.get("UserEvent") == UserEvent.FAX:
            # a sending attempt ended; the poll would find its result later anyway
            task = asyncio.get_running_loop().create_task(self._fax_result(event.get("Job", "")))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _on_connected(self) -> None:
        self._connections += 1
        if self._connections > 1:
            self.metrics.ami_reconnects.inc()
        self.metrics.ami_connected.set(1)
        await self.resync.run()  # nobody is rung until it is done

    async def _on_disconnected(self) -> None:
        self.metrics.ami_connected.set(0)
        self.acd.link_down()

    def _attended_transfer(self, event: Mapping[str, str]) -> None:
        """An operator's phone completed an attended transfer (SIP REFER with Replaces)."""
        call = self.tracker.get(event.get("TransfereeUniqueid", ""))
        if call is None:
            return
        target = (event.get("TransferTargetCallerIDNum") or event.get("SecondTransfererExten")
                  or "")
        call.transfers.append(TransferStep(call.agent_id, target, "attended",
                                           self.tracker.clock()))

    def _close_call(self, call: Call) -> None:
        self.acd.caller_gone(call)
        self.metrics.calls_ended.labels(call.service, call.outcome).inc()
        if call.outcome is Outcome.ABANDONED_WAITING:
            self.metrics.calls_abandoned.labels(call.service).inc()
        for node in dict.fromkeys(call.flow_path):  # a node passed twice is one hit per call
            self.metrics.ivr_node_hits.labels(call.service, node).inc()
        task = asyncio.get_running_loop().create_task(self._store(call))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _store(self, call: Call) -> None:
        try:
            rec = await self.recordings.close_call(call)
        except Exception:
            log.exception("call %s: could not store the call record", call.id)
            return
        # the call counts in today's KPIs from now: live pages refetch them on this event
        self.bus.publish({"type": "call", "call": call.id, "service": call.service,
                          "outcome": call.outcome.value})
        if rec is not None:
            self.metrics.recordings_indexed.inc()
            if call.ended_at is not None:
                self.metrics.recording_index_lag.set(
                    (self.tracker.clock() - call.ended_at).total_seconds())
        elif call.recording is not None:
            self.metrics.recordings_failed.inc()

    def refresh_gauges(self) -> None:
        """Waiting callers and operators by state, computed when /metrics is scraped rather
        than on every AMI event."""
        for queue, n in self.acd.waiting_counts().items():
            self.metrics.waiting.labels(queue).set(n)
        for state, n in self.acd.agent_counts().items():
            self.metrics.agents.labels(state).set(n)
