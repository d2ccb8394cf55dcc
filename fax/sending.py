"""FAXes sent from the console: the PDF checked and kept, converted to a G3 TIFF in the
spool's out/ folder, handed to the FaxSender; each attempt's result read from
`<spool>/out/<job>.result` (on the dialplan's UserEvent and by polling, so a restart loses
nothing). A failed attempt (busy, no answer, failed) is tried again after retry_delay, up to
send_retries more times; then the FAX is failed. The PDF stays with the record."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.fax import JOB_ID, RESULT_SUFFIX, TIFF_SUFFIX, parse_meta
from core.identity import Actor
from core.settings import TransferSettings
from core.transfers import TransferRefused, resolve

from .errors import BadUpload, NotAPdf, NumberRefused, SendUnavailable, UploadTooLarge
from .files import (
    PDF_MAGIC,
    FaxFileError,
    archive_name,
    overwrite_and_unlink,
    pdf_pages,
    pdf_to_tiff,
    private_dir,
    safe_path,
    write_private,
)
from .models import FaxSent
from .ports import FaxSender
from .service import FaxService

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 3600  # an attempt with no result after this long counts as failed
MAX_RESULT_BYTES = 8192
ACTIVE = ("queued", "sending", "retry")


def _read_result(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(MAX_RESULT_BYTES).decode("ascii", "replace")


def number_digits(raw: str) -> str:
    """A typed FAX number without the separators people write (03-1234-5678)."""
    return raw.strip().replace("-", "").replace(" ", "")


class Outbox:
    def __init__(self, service: FaxService, transfers: TransferSettings,
                 sender: FaxSender | None) -> None:
        self.service = service
        self.transfers = transfers
        self.sender = sender
        self._lock = asyncio.Lock()  # the event and the poll never apply one result twice
        self._placing: set[asyncio.Task[None]] = set()

    def check_number(self, raw: str) -> str:
        """Digits of an outside number the transfer rules allow; NumberRefused otherwise."""
        try:
            target = resolve(self.transfers, number_digits(raw))
        except TransferRefused as exc:
            raise NumberRefused(str(exc)) from exc
        if target.kind != "external":
            raise NumberRefused(f"{target.number} is not an outside number a FAX may go to")
        return target.number

    def check_pdf(self, data: bytes) -> None:
        limit = self.service.config.fax.max_upload_bytes
        if len(data) > limit:
            raise UploadTooLarge(f"the PDF is over {limit // (1024 * 1024)} MiB")
        if not data:
            raise BadUpload("the file is empty")
        if not data.startswith(PDF_MAGIC):
            raise NotAPdf("the file is not a PDF (it must start with %PDF-)")

    async def submit(self, data: bytes, number: str, actor: Actor) -> FaxSent:
        """Check, keep and queue one FAX, then place its first attempt. Nothing is stored
        or sent when the number, the file or the sender is refused."""
        digits = self.check_number(number)
        self.check_pdf(data)
        if self.sender is None:
            raise SendUnavailable("FAX sending is not available (no connection to the PBX)")
        if not self.service.config.fax.number:  # our station id goes on every page
            raise SendUnavailable("FAX sending is not configured (fax: number)")
        job = uuid.uuid4().hex
        now = self.service.clock()
        file = archive_name("sent", job, now, ".pdf")
        pdf = safe_path(self.service.paths.archive, file)
        tif = self.tiff_of(job)
        try:
            await asyncio.to_thread(write_private, pdf, data)
            pages = await asyncio.to_thread(pdf_pages, pdf)
            if pages < 1:
                raise FaxFileError("the PDF has no page")
            await asyncio.to_thread(self._convert, pdf, tif)
        except FaxFileError as exc:
            for path in (pdf, tif):
                path.unlink(missing_ok=True)
            raise BadUpload(f"the PDF cannot be read ({exc})") from exc
        row = FaxSent(id=job, number=digits, actor=actor.name[:64], created_at=now,
                      pages=pages, file=file, size_bytes=len(data),
                      sha256=hashlib.sha256(data).hexdigest(), state="queued", attempts=0,
                      result="")
        await self.service.db.add(row, what=f"sent FAX {job}")
        await self.service.audit(actor, "fax_send", job, f"number={digits} pages={pages}")
        await self.attempt(job)
        return await self.service.sent(job)

    def tiff_of(self, job: str) -> Path:
        if not JOB_ID.fullmatch(job):
            raise FaxFileError(f"refused job id {job[:40]!r}")
        return self.service.paths.spool_out / f"{job}{TIFF_SUFFIX}"

    def result_of(self, job: str) -> Path:
        if not JOB_ID.fullmatch(job):
            raise FaxFileError(f"refused job id {job[:40]!r}")
        return self.service.paths.spool_out / f"{job}{RESULT_SUFFIX}"

    def _convert(self, pdf: Path, tif: Path) -> None:
        if not tif.parent.exists():  # the PBX side makes it for Asterisk's own account
            private_dir(tif.parent)
        pdf_to_tiff(pdf, tif)  # 0600; the sender hands it to Asterisk's account

    async def _update(self, job: str, change: Callable[[FaxSent], None]) -> FaxSent | None:
        async def work(session: AsyncSession) -> FaxSent | None:
            row = await session.get(FaxSent, job, with_for_update=True)
            if row is not None:
                change(row)
            return row

        return await self.service.db.write(work, f"sent FAX {job}")

    async def attempt(self, job: str) -> None:
        """Place the next attempt of a queued or retrying FAX."""
        async with self._lock:
            row = await self.service.sent(job)
            if row.state not in ("queued", "retry") or self.sender is None:
                return
            tif = self.tiff_of(job)
            if not tif.is_file():  # removed meanwhile (a cleared spool): made again
                pdf = safe_path(self.service.paths.archive, row.file)
                await asyncio.to_thread(self._convert, pdf, tif)
            deadline = self.service.clock() + timedelta(seconds=SEND_TIMEOUT_S)

            def sending(r: FaxSent) -> None:
                r.state, r.attempts, r.next_attempt_at = "sending", r.attempts + 1, deadline

            await self._update(job, sending)
        # dialling takes until the remote side answers (or not): never in a request
        task = asyncio.get_running_loop().create_task(self._place(self.sender, job, tif,
                                                                  row.number))
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)

    async def _place(self, sender: FaxSender, job: str, tif: Path, number: str) -> None:
        try:
            await sender.send(job, tif, number)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the call was not placed: this attempt failed
            log.warning("sent FAX %s: attempt not placed: %s", job, exc)
            async with self._lock:
                await self._apply(job, {"status": "FAILED",
                                        "error": f"not placed: {exc}"[:200]})
            return
        await self.result(job)  # not answered: its result is already written

    async def settle(self) -> None:
        """Wait for the attempts being placed (shutdown, tests)."""
        while self._placing:
            await asyncio.gather(*list(self._placing), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._placing):
            task.cancel()
        await self.settle()

    async def result(self, job: str) -> FaxSent | None:
        """Read an attempt's `.result` file, if there, and apply it (the dialplan's
        UserEvent, or the poll)."""
        if not JOB_ID.fullmatch(job):
            return None
        path = self.result_of(job)
        async with self._lock:
            if not path.is_file():
                return None
            values = parse_meta(await asyncio.to_thread(_read_result, path))
            if "ended" not in values:  # still being written (its last line is `ended`)
                return None
            row = await self._apply(job, values)
            path.unlink(missing_ok=True)
            return row

    async def _apply(self, job: str, values: dict[str, str]) -> FaxSent | None:
        now = self.service.clock()
        fax = self.service.config.fax
        final = False

        def apply(r: FaxSent) -> None:
            nonlocal final
            if r.state != "sending":
                return  # a late or repeated result: the attempt was already settled
            r.result = json.dumps(values, sort_keys=True)
            if values.get("status") == "SUCCESS":
                pages = values.get("pages", "")
                r.state, r.finished_at, r.next_attempt_at = "ok", now, None
                r.pages_sent = int(pages) if pages.isascii() and pages.isdigit() else None
                final = True
            elif r.attempts <= fax.send_retries:
                r.state = "retry"
                r.next_attempt_at = now + timedelta(seconds=fax.retry_delay_s)
            else:
                r.state, r.finished_at, r.next_attempt_at = "failed", now, None
                final = True

        row = await self._update(job, apply)
        if row is not None:
            log.info("sent FAX %s: attempt %d %s", job, row.attempts, row.state)
        if final:
            await asyncio.to_thread(overwrite_and_unlink, self.tiff_of(job))
        return row

    async def poll(self, now: datetime | None = None) -> None:
        """Results the event did not bring, attempts due, attempts a restart interrupted."""
        now = now or self.service.clock()
        async with self.service.db.sessions() as session:
            rows = list((await session.scalars(
                select(FaxSent).where(FaxSent.state.in_(ACTIVE)))).all())
        for row in rows:
            if row.state == "sending":
                if self.result_of(row.id).is_file():
                    await self.result(row.id)
                elif row.next_attempt_at is not None and row.next_attempt_at <= now:
                    async with self._lock:
                        await self._apply(row.id, {"status": "FAILED",
                                                   "error": "no result from the PBX"})
            elif row.state == "queued" or (
                    row.next_attempt_at is not None and row.next_attempt_at <= now):
                await self.attempt(row.id)
