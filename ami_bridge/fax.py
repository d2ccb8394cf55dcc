"""Sending a FAX: one AMI Originate per attempt to an allowed number, answered by SendFAX.

The engine has converted the document to <spool>/out/<job>.tif. The call lands on
mado-fax-out's `send` extension once the remote machine answers; the dialplan then writes
<spool>/out/<job>.result (key=value lines, `ended` last) and sends UserEvent(MadoFax, Job).
A call that is not answered runs Asterisk's `failed` extension, which writes the result too;
should it not (Asterisk gives the failed channel no variables in some versions), the dialer
writes the same lines itself. Retrying on busy or no answer is the caller's decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
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
# Asterisk's Originate reasons (OriginateResponse Reason) as the dialplan's DIALSTATUS words
REASONS = {"5": "BUSY", "3": "NOANSWER", "8": "CONGESTION", "1": "NOANSWER", "0": "CONGESTION"}
RESULT_WAIT_S = 3.0  # how long the `failed` extension may take to write its result


def finished(result: Path) -> bool:
    """A result (or .meta) file is complete once its `ended` line is there."""
    try:
        return "ended" in parse_meta(result.read_text(encoding="ascii", errors="replace"))
    except FileNotFoundError:
        return False


class FaxAmi(Protocol):
    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]: ...


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
        }
        response = await self.ami.originate(action, timeout=self.ring_timeout_s + 15)
        reason = response.get("Reason", "")
        answered = response.get("Response") == "Success"
        log.info("FAX job %s to %s: %s (reason %s)", job_id, number_dial,
                 "answered" if answered else "not answered", reason or "-")
        if not answered:
            await self._ensure_failed_result(result, reason)
        return Attempt(answered, reason, result)

    async def _ensure_failed_result(self, result: Path, reason: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESULT_WAIT_S
        while loop.time() < deadline:
            if finished(result):
                return
            await asyncio.sleep(0.1)
        code = re.sub(r"[^0-9]", "", reason)
        text = (f"dialstatus={REASONS.get(code, 'CONGESTION')}\nreason={code}\nstatus=FAILED\n"
                f"pages=0\nended={int(time.time())}\n")
        write_durably(result, text, mode=0o600)
