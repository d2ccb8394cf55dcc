"""Sending: the upload checked before anything is kept or dialled, the job's attempts and
retries read from its `.result` file (by the event or the poll, across a restart), the PDF
kept with the record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.identity import Actor
from core.settings import TransferSettings
from fax.errors import BadUpload, NotAPdf, NumberRefused, SendUnavailable, UploadTooLarge
from fax.models import FaxSent
from fax.sending import Outbox
from fax.service import FaxService
from store.models import AuditEntry
from tests.fax_files import AT, fax_service, pdf_bytes

TRANSFERS = TransferSettings("127.0.0.1", 5090, "81", (3, 5), ("0120", "090"))
NUMBER = "0120-123-456"
ACTOR = Actor("sato", "127.0.0.1", user_id="sato", role="operator", agent_id="7001")


class FakeSender:
    """Places nothing: remembers each attempt; can refuse like an AMI that is away."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Path, str]] = []
        self.refuse = False

    async def send(self, job_id: str, tiff: Path, number: str) -> None:
        self.calls.append((job_id, tiff, number))
        if self.refuse:
            raise ConnectionError("AMI is not connected")


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def service(tmp_path: Path, database_url: str) -> AsyncIterator[FaxService]:
    svc = await fax_service(database_url, tmp_path, send_retries=2, retry_delay_s=120,
                            max_upload_bytes=64 * 1024)
    svc.clock = Clock()
    try:
        yield svc
    finally:
        await svc.db.close()


def _result(service: FaxService, job: str, **values: str) -> None:
    path = service.paths.spool_out / f"{job}.result"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()) + "ended=1764630000\n")


async def _count(service: FaxService) -> int:
    async with service.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(FaxSent)) or 0)


async def test_a_pdf_is_kept_converted_and_dialled(service: FaxService) -> None:
    sender = FakeSender()
    outbox = Outbox(service, TRANSFERS, sender)
    row = await outbox.submit(pdf_bytes(2), NUMBER, ACTOR)
    await outbox.settle()
    assert (row.state, row.attempts, row.pages, row.number) == ("sending", 1, 2, "0120123456")
    ((job, tif, number),) = sender.calls
    assert job == row.id and number == "0120123456"
    assert tif == service.paths.spool_out / f"{job}.tif"
    assert tif.read_bytes()[:4] in (b"II*\x00", b"MM\x00*")  # a TIFF for SendFAX
    assert tif.stat().st_mode & 0o777 == 0o600
    pdf = service.paths.archive / row.file
    assert row.file == f"sent/2026/11/02/{job}.pdf" and pdf.stat().st_mode & 0o777 == 0o600
    async with service.db.sessions() as session:
        (entry,) = (await session.scalars(select(AuditEntry))).all()
    assert (entry.action, entry.actor, entry.call_id) == ("fax_send", "sato", job)
    _result(service, job, status="SUCCESS", pages="2", dialstatus="ANSWER")
    done = await outbox.result(job)
    assert done is not None and (done.state, done.pages_sent) == ("ok", 2)
    assert not tif.exists() and pdf.is_file()  # the PDF stays with the record


@pytest.mark.parametrize(("number", "why"), [
    ("0312345678", "neither"), ("7001", "not an outside number"), ("0120;1", "digits"),
    ("", "digits")])
async def test_a_number_outside_the_rules_queues_nothing(
        service: FaxService, number: str, why: str) -> None:
    sender = FakeSender()
    outbox = Outbox(service, TRANSFERS, sender)
    with pytest.raises(NumberRefused, match=why) as refused:
        await outbox.submit(pdf_bytes(), number, ACTOR)
    assert refused.value.status == 422
    assert sender.calls == [] and await _count(service) == 0
    assert not service.paths.archive.exists() and not service.paths.spool_out.exists()


async def test_uploads_that_are_not_a_pdf_or_too_large_are_refused(
        service: FaxService) -> None:
    sender = FakeSender()
    outbox = Outbox(service, TRANSFERS, sender)
    for data, error in ((b"GIF89a...", NotAPdf), (b"%PDF-" + b"0" * 70 * 1024, UploadTooLarge),
                        (b"", BadUpload), (b"%PDF-1.4 but nothing else", BadUpload)):
        with pytest.raises(error) as refused:
            await outbox.submit(data, NUMBER, ACTOR)
        assert refused.value.status in (400, 413)
    assert sender.calls == [] and await _count(service) == 0
    assert list(service.paths.archive.rglob("*.pdf")) == []


async def test_busy_is_retried_after_the_delay_then_failed(service: FaxService) -> None:
    sender = FakeSender()
    outbox = Outbox(service, TRANSFERS, sender)
    row = await outbox.submit(pdf_bytes(), NUMBER, ACTOR)
    await outbox.settle()
    job = row.id
    clock = service.clock
    assert isinstance(clock, Clock)
    for attempt in (1, 2, 3):  # the first and send_retries (2) more
        assert len(sender.calls) == attempt
        _result(service, job, status="FAILED", dialstatus="BUSY", pages="0")
        await outbox.poll()  # the poll finds what no event announced (a restart)
        row = await service.sent(job)
        if attempt < 3:
            assert row.state == "retry"
            assert row.next_attempt_at == clock.now + timedelta(seconds=120)
            clock.now += timedelta(seconds=119)
            await outbox.poll()
            assert len(sender.calls) == attempt  # not yet due
            clock.now += timedelta(seconds=1)
            await outbox.poll()
            await outbox.settle()
    assert (row.state, row.attempts, row.finished_at) == ("failed", 3, clock.now)
    assert '"dialstatus": "BUSY"' in row.result
    assert not (service.paths.spool_out / f"{job}.tif").exists()
    await outbox.poll()
    assert len(sender.calls) == 3  # nothing more


async def test_an_attempt_that_was_not_placed_is_retried(service: FaxService) -> None:
    sender = FakeSender()
    sender.refuse = True
    outbox = Outbox(service, TRANSFERS, sender)
    row = await outbox.submit(pdf_bytes(), NUMBER, ACTOR)
    await outbox.settle()
    row = await service.sent(row.id)
    assert (row.state, row.attempts) == ("retry", 1)
    assert "not placed" in row.result


async def test_a_restart_reads_the_result_it_missed(service: FaxService) -> None:
    first = Outbox(service, TRANSFERS, FakeSender())
    row = await first.submit(pdf_bytes(), NUMBER, ACTOR)
    await first.settle()
    _result(service, row.id, status="SUCCESS", pages="1")
    again = Outbox(service, TRANSFERS, FakeSender())  # a new engine: no event for it
    await again.poll()
    assert (await service.sent(row.id)).state == "ok"
    assert not (service.paths.spool_out / f"{row.id}.result").exists()


async def test_a_result_still_being_written_waits(service: FaxService) -> None:
    outbox = Outbox(service, TRANSFERS, FakeSender())
    row = await outbox.submit(pdf_bytes(), NUMBER, ACTOR)
    await outbox.settle()
    (service.paths.spool_out / f"{row.id}.result").write_text("status=SUCCESS\n")
    assert await outbox.result(row.id) is None
    assert (await service.sent(row.id)).state == "sending"
    assert await outbox.result("../../etc/passwd") is None  # our ids only


async def test_without_our_fax_number_nothing_is_sent(tmp_path: Path, database_url: str) -> None:
    svc = await fax_service(database_url, tmp_path, number="")
    try:
        sender = FakeSender()
        with pytest.raises(SendUnavailable) as refused:
            await Outbox(svc, TRANSFERS, sender).submit(pdf_bytes(), NUMBER, ACTOR)
        assert refused.value.status == 503 and sender.calls == [] and await _count(svc) == 0
    finally:
        await svc.db.close()
