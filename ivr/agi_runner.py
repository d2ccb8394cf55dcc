"""FastAGI adapter for the IVR: runs the pure interpreter against a live channel.

The flow set and the outside world are pinned when the call starts (`IvrService.world()`), so
a reload mid-call changes nothing for the call. The channel variables it sets for the
dialplan, and what they mean, are listed in ami_bridge/dialplan.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ami_bridge.agi_auth import endpoint_of
from ami_bridge.agi_errors import AgiCommandFailed, AgiError, AgiHangup
from ami_bridge.dialplan import AgiScript, Dest, Var
from ami_bridge.fastagi import AgiSession
from ami_bridge.recording_names import mixmonitor_args, relative_name
from core.calls import Call, CallTracker
from core.errors import ascii_digits
from core.settings import Settings

from .booking_call import run_dialogue
from .booking_dialogue import BookingDialogue, Speak
from .booking_port import BookingPort
from .interpreter import (
    CallInfo,
    Collect,
    Digits,
    End,
    Enqueue,
    Interpreter,
    Outcome,
    Played,
    RunBooking,
    Say,
    TransferTo,
)
from .prompts import LANGUAGES, Audio
from .schedule import MODE_DIGITS, utc_now
from .service import IvrService
from .survey import Answer, SurveyResult, ask

log = logging.getLogger(__name__)

_KEYS = "0123456789*#"
_MAX_DID = 16  # the call record's column


class IvrRunner:
    def __init__(self, settings: Settings, ivr: IvrService, tracker: CallTracker,
                 recordings_dir: str, on_offer: Callable[[Call], None],
                 on_enqueue: Callable[[Call], Awaitable[None]],
                 clock: Callable[[], datetime] = utc_now,
                 on_survey: Callable[[SurveyResult], Awaitable[None]] | None = None,
                 bookings: BookingPort | None = None) -> None:
        self.settings = settings
        self.ivr = ivr
        self.tracker = tracker
        self.recordings_dir = recordings_dir  # as Asterisk sees it
        self.on_offer = on_offer
        self.on_enqueue = on_enqueue
        self.clock = clock
        self.on_survey = on_survey  # stores a call's survey answers
        self.bookings = bookings  # the booking node's way to the bookings (madoguchi/ports.py)
        self._reported: set[tuple[str, str, str]] = set()

    async def handle(self, session: AgiSession) -> None:
        if session.script == AgiScript.OVERRIDE:
            await self._feature_code(session)
            return
        if session.script == AgiScript.SURVEY:
            await self._survey(session)
            return
        service = self.settings.service(session.script)
        world = self.ivr.world()  # pinned for the whole call
        flow = world.flowset.flows.get(world.flowset.entry.get(session.script, ""))
        if service is None or flow is None:
            # leaving IVR_DONE unset makes the dialplan fail open to app_queue
            log.error("AGI request for unknown service %r", session.script)
            return
        env = session.env
        did = session.args[0] if session.args else service.did
        if not ascii_digits(did) or len(did) > _MAX_DID:  # the number as dialled: any text
            did = service.did
        call = self.tracker.offer(env.get("agi_uniqueid", ""), env.get("agi_channel", ""),
                                  service.id, did, env.get("agi_callerid", ""))
        call.flow_version = world.flowset.version
        self.on_offer(call)
        call.recording = relative_name(call.id, call.offered_at)
        interp = Interpreter(flow, world, CallInfo(call.caller, call.did, service.id),
                             self.clock)
        try:
            # caller and operator on separate legs, only while bridged (recording_names)
            await session.exec("MixMonitor", mixmonitor_args(self.recordings_dir, call.recording))
            await session.set_variable(Var.CALL_ID, call.id)
            instruction = interp.start()
            while True:
                call.flow_path = list(interp.path)
                call.language = interp.language
                if isinstance(instruction, Enqueue):
                    call.queue = instruction.queue
                    call.topic = instruction.topic
                    call.priority = instruction.priority
                    # the dialplan's route first (a failure now fails open, with nothing
                    # queued), then the ACD rings an operator at once; the hold loop's
                    # variables are set while the phone rings
                    await self._finish(session, Dest.QUEUE)
                    await self.on_enqueue(call)
                    await self._hold_variables(session, interp.language)
                    if instruction.survey:  # read by mado-after when the operator hangs up
                        await session.set_variable(Var.SURVEY, "1")
                    return
                if isinstance(instruction, TransferTo):
                    await session.set_variable(Var.TRANSFER_DIAL, instruction.dial)
                    await self._finish(session, Dest.TRANSFER)
                    log.info("call %s: IVR transfer to %s", call.id, instruction.number)
                    return
                if isinstance(instruction, End):
                    await self._finish(session, Dest.HANGUP)
                    return
                if isinstance(instruction, RunBooking):
                    dialogue = BookingDialogue(instruction.category, instruction.language,
                                               call.caller, world.tz, instruction.max_events)
                    io = _SpokenDialogue(self, session, world.flowset.version,
                                         instruction.language)
                    how = await run_dialogue(dialogue, self.bookings, io, call.id)
                    log.info("call %s: booking node ended: %s", call.id, how)
                    instruction = interp.feed(Played())
                    continue
                outcome = await self._perform(session, instruction, world.flowset.version)
                instruction = interp.feed(outcome)
        except (AgiHangup, AgiCommandFailed):
            # result=-1 from a playback or a read means the channel went away under it
            log.info("call %s: caller hung up in the IVR at %s", call.id, interp.path[-1:])
            return
        except AgiError as exc:
            # IVR_DONE stays unset: the dialplan fails this call open to app_queue
            log.error("call %s: IVR failed at %s: %s", call.id, interp.path[-1:], exc)

    async def _finish(self, session: AgiSession, dest: Dest) -> None:
        await session.set_variable(Var.DEST, dest)
        await session.set_variable(Var.IVR_DONE, "1")

    async def _hold_variables(self, session: AgiSession, language: str) -> None:
        board = self.ivr.hold_board(language)
        if board is not None:
            await session.set_variable(Var.BOARD, board)
            await session.set_variable(Var.BOARD_EVERY,
                                       str(self.ivr.current.board.hold_interval))

    def _files(self, audio: tuple[Audio, ...], version: str) -> list[str]:
        files = []
        for a in audio:
            if a.spoken is not None or a.sound is None:
                mark = (version, a.key, a.language)
                if mark not in self._reported:
                    # once per prompt and flow version: visible, without a line per call
                    self._reported.add(mark)
                    if a.sound is None:
                        log.warning("prompt %s has no audio in any language: skipped", a.key)
                    else:
                        log.warning("prompt %s has no %s audio: playing %s instead", a.key,
                                    a.language, a.spoken)
            path = self.ivr.sound_path(a)
            if path is not None:
                files.append(path)
        return files

    async def _perform(self, session: AgiSession, instruction: Say | Collect,
                       version: str) -> Outcome:
        files = self._files(instruction.audio, version)
        if isinstance(instruction, Say):
            escape = _KEYS if instruction.barge_in else ""
            for f in files:
                digit = await session.stream_file(f, escape)
                if digit:
                    return Played(digit)
            return Played()
        # GET DATA plays one file (unlike Playback it does not split on '&'): the others
        # play first, and a key interrupting them starts the input
        files = files or ["silence/1"]
        for f in files[:-1]:
            first = await session.stream_file(f, _KEYS)
            if first:
                if instruction.max_digits == 1:
                    return Digits(first)
                rest = await session.get_data("silence/1", instruction.timeout_ms,
                                              instruction.max_digits - 1)
                return Digits(first + rest)
        digits = await session.get_data(files[-1], instruction.timeout_ms,
                                        instruction.max_digits)
        return Digits(digits)

    async def speak_texts(self, texts: tuple[str, ...], language: str) -> tuple[Audio, ...]:
        """Sentences made at call time (the booking dialogue's), spoken by the flows' TTS;
        each file is named by its text, so a sentence is synthesised once per machine."""
        out = []
        for text in texts:
            # synthesis runs a subprocess: off the event loop
            name = await asyncio.to_thread(self.ivr.tts.render, text, language)
            out.append(Audio("booking", language, text, f"tts/{name}" if name else None))
        return tuple(out)

    async def _survey(self, session: AgiSession) -> None:
        """mado-after, for a call marked for the survey: the operator has hung up and the
        caller is still on the line. The dialplan passes the call's id, which must be this
        channel's answered call. The questions are the flow set's in force now; the answers
        given go to `on_survey`, also when the caller hangs up halfway."""
        call = self.tracker.get(session.env.get("agi_uniqueid", ""))
        if call is None or call.agent_id is None or session.args[:1] != [call.id]:
            log.warning("survey asked for channel %r, which is no answered call of ours",
                        session.env.get("agi_channel", ""))
            return
        call.operator_left(self.tracker.clock())  # the talk time ends here
        world = self.ivr.world()
        survey = world.flowset.survey
        if not survey.questions:
            return
        language = call.language or LANGUAGES[0]
        version = world.flowset.version

        def files(key: str) -> list[str]:
            return self._files((world.prompt(key, language),), version)

        answers: list[Answer] = []
        try:
            await ask(session, survey, files, answers)
        except (AgiHangup, AgiCommandFailed):
            log.info("call %s: caller hung up in the survey after %d question(s)", call.id,
                     len(answers))
        except AgiError as exc:
            log.error("call %s: survey failed after %d question(s): %s", call.id,
                      len(answers), exc)
        if not answers or self.on_survey is None:
            return
        result = SurveyResult(call.id, call.service, call.agent_id, language, call.offered_at,
                              tuple(answers))
        try:
            await self.on_survey(result)
        except Exception:  # the answers are lost, the call goes on: say so
            log.exception("call %s: survey answers not stored", call.id)

    async def _feature_code(self, session: AgiSession) -> None:
        """*7 <service code> <mode>: a supervisor switches a service's override.

        The supervisor is the endpoint the channel belongs to; the FastAGI server admitted
        the session only after AMI confirmed that channel exists."""
        service_code, mode_digit = [*session.args, "", ""][:2]
        endpoint = endpoint_of(session.channel) or ""
        sched = self.ivr.current.schedules
        service = sched.feature_codes.get(service_code)
        mode = MODE_DIGITS.get(mode_digit)
        if endpoint not in sched.supervisors or service is None or mode is None:
            log.warning("override feature code refused: endpoint %r, service code %r, mode %r",
                        endpoint, service_code, mode_digit)
            await session.stream_file("invalid")
            return
        await self.ivr.set_override(service, mode.value, f"feature code from {endpoint}")
        await session.stream_file("beep")


class _SpokenDialogue:
    """The booking dialogue's sentences on a FastAGI channel, played like a flow's prompts."""

    def __init__(self, runner: IvrRunner, session: AgiSession, version: str,
                 language: str) -> None:
        self.runner, self.session, self.version = runner, session, version
        self.language = language

    async def speak(self, step: Speak) -> Played | Digits:
        audio = await self.runner.speak_texts(step.texts, self.language)
        if step.collect:
            return await self.runner._perform(
                self.session, Collect(audio, step.timeout_ms, step.max_digits), self.version)
        return await self.runner._perform(self.session, Say(audio), self.version)
