"""FastAGI adapter for the IVR: runs the pure interpreter against a live channel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ami_bridge.agi_errors import AgiCommandFailed, AgiError, AgiHangup
from ami_bridge.calls import Call, CallTracker
from ami_bridge.fastagi import AgiSession
from madoguchi.settings import Settings
from recordings.files import relative_name

from .flow import Flow
from .interpreter import Collect, Digits, End, Enqueue, Interpreter, Outcome, Played, PlayPrompt
from .prompts import PromptLibrary

log = logging.getLogger(__name__)


class IvrRunner:
    def __init__(self, settings: Settings, flows: dict[str, Flow], tracker: CallTracker,
                 prompts: PromptLibrary, recordings_dir: str,
                 on_offer: Callable[[Call], None],
                 on_enqueue: Callable[[Call], Awaitable[None]]) -> None:
        self.settings = settings
        self.flows = flows
        self.tracker = tracker
        self.prompts = prompts
        self.recordings_dir = recordings_dir  # as Asterisk sees it
        self.on_offer = on_offer
        self.on_enqueue = on_enqueue

    async def handle(self, session: AgiSession) -> None:
        service = self.settings.service(session.script)
        if service is None or service.flow not in self.flows:
            # leaving IVR_DONE unset makes the dialplan fail open to app_queue
            log.error("AGI request for unknown service %r", session.script)
            return
        env = session.env
        did = session.args[0] if session.args else service.did
        call = self.tracker.offer(env.get("agi_uniqueid", ""), env.get("agi_channel", ""),
                                  service.id, did if did.isdigit() else service.did,
                                  env.get("agi_callerid", ""))
        self.on_offer(call)
        call.recording = relative_name(call.id, call.offered_at)
        interp = Interpreter(self.flows[service.flow])
        try:
            # b: record while bridged with an operator, i.e. the conversation itself
            await session.exec("MixMonitor", f"{self.recordings_dir}/{call.recording},b")
            await session.set_variable("MADO_CALL_ID", call.id)
            instruction = interp.start()
            while True:
                call.flow_path = list(interp.path)
                call.language = interp.language
                if isinstance(instruction, Enqueue):
                    call.queue = instruction.queue
                    await session.set_variable("MADO_DEST", "queue")
                    await session.set_variable("IVR_DONE", "1")
                    break
                if isinstance(instruction, End):
                    await session.set_variable("MADO_DEST", "hangup")
                    await session.set_variable("IVR_DONE", "1")
                    return
                instruction_outcome = await self._perform(session, instruction)
                instruction = interp.feed(instruction_outcome)
        except (AgiHangup, AgiCommandFailed):
            # result=-1 from a playback or a read means the channel went away under it
            log.info("call %s: caller hung up in the IVR at %s", call.id, interp.path[-1:])
            return
        except AgiError as exc:
            # IVR_DONE stays unset: the dialplan fails this call open to app_queue
            log.error("call %s: IVR failed at %s: %s", call.id, interp.path[-1:], exc)
            return
        await self.on_enqueue(call)

    async def _perform(self, session: AgiSession, instruction: PlayPrompt | Collect) -> Outcome:
        path = self.prompts.resolve(instruction.prompt, instruction.language)
        if isinstance(instruction, PlayPrompt):
            if path is not None:
                await session.stream_file(path)
            else:
                log.warning("prompt %s missing, skipped", instruction.prompt)
            return Played()
        if path is None:
            log.warning("prompt %s missing, collecting digits in silence", instruction.prompt)
            path = "silence/1"
        digits = await session.get_data(path, instruction.timeout_ms, instruction.max_digits)
        return Digits(digits)
