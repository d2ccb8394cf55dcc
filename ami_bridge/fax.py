"""Sending a FAX: one AMI Originate per attempt to an allowed number, answered by SendFAX.

The engine has converted the document to <spool>/out/<job>.tif. The call lands on
mado-fax-out's `send` extension once the remote machine answers; the dialplan then writes
<spool>/out/<job>.result (key=value lines, `ended` last) and sends UserEvent(MadoFax, Job).
A call that is not answered never reaches the dialplan: the dialer writes the result itself,
with the outgoing channel's hang-up cause (Asterisk's Originate reason is 0 for a SIP 486
Busy). Retrying on busy or no answer is the caller's decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.fax import JOB_ID, OUT_DIR, RESULT_SUFFIX, TIFF_SUFFIX, FaxSettings, parse_meta
from core.files import write_durably

from .dialplan import Context, FaxExten, Var
from .pbx.confgen import Layout
from .pbx.sharing import RunAs, SharingError, pbx_user

log = logging.getLogger(__name__)

# a dial string from core/transfers.py: a channel technology, digits, an endpoint of ours
DIAL = re.compile(r"PJSIP/[0-9]{1,24}@[A-Za-z0-9_-]{1,40}")
# Asterisk's Originate reasons and Q.850 hang-up causes as Dial's DIALSTATUS words
REASONS = {"5": "BUSY", "3": "NOANSWER", "1": "NOANSWER"}
CAUSES = {"17": "BUSY", "18": "NOANSWER", "19": "NOANSWER", "16": "NOANSWER"}


def finished(result: Path) -> bool:
    """A result (or .meta) file is complete once its `ended` line is there."""
    try:
        return "ended" in parse_meta(result.read_text(encoding="ascii", errors="replace"))
    except FileNotFoundError:
        return False


class FaxAmi(Protocol):
    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]: ...

    def subscribe(self, handler: Callable[[Mapping[str, str]], Awaitable[None]]) -> None: ...


class FaxSendError(ValueError):
    """A job id, file or dial string the dialer refuses: nothing was dialled."""


@dataclass(frozen=True)
class Attempt:
    answered: bool  # the remote side answered: SendFAX runs, the result follows on hang-up
    reason: str  # Asterisk's Originate reason (4 answered, 5 busy, 3 no answer, 8 congestion)
    result: Path  # where the attempt's result is (or will be) written


class FaxDialer:
    def __init__(self, ami: FaxAmi, layout: Layout, fax: FaxSettings, ring_timeout_s: int = 60,
                 run_as: RunAs | None = None) -> None:
        self.ami = ami
        self.out_dir = layout.local / fax.spool_dir / OUT_DIR
        self.fax = fax
        self.ring_timeout_s = ring_timeout_s
        if run_as is None:
            try:
                run_as = pbx_user(create=False)  # None when the engine is not root
            except SharingError:
                run_as = None
        self.run_as = run_as
        self._causes: dict[str, str] = {}  # our outgoing channels' Uniqueid -> hang-up cause
        ami.subscribe(self._on_event)

    async def _on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") == "Hangup" and event.get("Uniqueid") in self._causes:
            self._causes[event["Uniqueid"]] = event.get("Cause", "")

    def result_path(self, job_id: str) -> Path:
        return self.out_dir / f"{job_id}{RESULT_SUFFIX}"

    def _check(self, job_id: str, tiff: Path, number_dial: str) -> None:
        if not JOB_ID.fullmatch(job_id):
            raise FaxSendError(f"job id must be 32 hex digits, got {job_id!r}")
        if tiff.resolve() != (self.out_dir / f"{job_id}{TIFF_SUFFIX}").resolve():
            raise FaxSendError(f"the document must be the job's own file in {self.out_dir}")
        if not tiff.is_file():
            raise FaxSendError(f"{tiff} does not exist")
        if not DIAL.fullmatch(number_dial):
            raise FaxSendError(f"not a dial string of an allowed number: {number_dial!r}")

    async def send(self, job_id: str, tiff: Path, number_dial: str) -> Attempt:
        """Dial once; returns when the call is answered or has failed. A previous attempt's
        result file is removed first: read it before calling again."""
        self._check(job_id, tiff, number_dial)
        result = self.result_path(job_id)
        result.unlink(missing_ok=True)
        # Asterisk (its own user) reads the document; nobody else may
        if self.run_as is not None:
            os.chown(tiff, self.run_as.uid, self.run_as.gid)
        os.chmod(tiff, 0o600)
        caller_number = re.sub(r"[^0-9+]", "", self.fax.number)
        action = {
            "Action": "Originate", "Channel": number_dial, "Context": str(Context.FAX_OUT),
            "Exten": str(FaxExten.SEND), "Priority": "1",
            "Timeout": str(self.ring_timeout_s * 1000),
            "CallerID": f"<{caller_number}>" if caller_number else "",
            "Variable": f"{Var.FAX_JOB}={job_id}",
            # our own id for the channel: its Hangup event tells busy from no answer
            "ChannelId": f"fax-{job_id}-{int(time.time())}",
        }
        channel_id = action["ChannelId"]
        self._causes[channel_id] = ""
        try:
            response = await self.ami.originate(action, timeout=self.ring_timeout_s + 15)
            if response.get("Response") != "Success":
                await asyncio.sleep(0.5)  # the channel's Hangup may follow the response
            cause = self._causes.get(channel_id, "")
        finally:
            self._causes.pop(channel_id, None)
        reason = response.get("Reason", "")
        answered = response.get("Response") == "Success"
        log.info("FAX job %s to %s: %s (reason %s)", job_id, number_dial,
                 "answered" if answered else "not answered", reason or "-")
        if not answered:
            write_failed(result, reason, cause)
        return Attempt(answered, reason, result)


def dial_status(reason: str, cause: str) -> str:
    """BUSY, NOANSWER or CONGESTION (anything else: a failure worth no quick retry)."""
    return CAUSES.get(cause) or REASONS.get(reason) or "CONGESTION"


def write_failed(result: Path, reason: str, cause: str) -> None:
    """The result of an attempt that was never answered, in the dialplan's format."""
    reason = re.sub(r"[^0-9]", "", reason)
    cause = re.sub(r"[^0-9]", "", cause)
    text = (f"dialstatus={dial_status(reason, cause)}\nreason={reason}\nhangupcause={cause}\n"
            f"status=FAILED\npages=0\nended={int(time.time())}\n")
    write_durably(result, text, mode=0o600)
