"""FAX data by the recordings' rules: retention purge with a deletion report, the hand-over
export (tables, PDFs, checksums), erase (also through `madoguchi erase`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import tarfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.identity import Actor
from core.interactions import OutcomeClass
from core.settings import load_settings
from fax.export import export
from fax.indexer import Indexer, fax_id_of
from fax.lifecycle import erase_all, purge
from fax.models import FaxReceived, FaxSent
from fax.sending import Outbox
from fax.service import FaxInteraction, FaxService
from fax.settings import fax_config
from kpi.report_data import month_data
from kpi.report_notes import notes
from kpi.report_text import Lang
from kpi.service import KpiService
from madoguchi.cli import main
from store.db import Database
from store.models import DeletionReport, InteractionRecord
from tests.fax_files import AT, fax_service, good_meta, pdf_bytes, write_meta, write_tiff
from tests.test_fax_sending import TRANSFERS, Clock, FakeSender

ROOT = Path(__file__).resolve().parents[1]
ACTOR = Actor("sato", "127.0.0.1", agent_id="7001")


@pytest.fixture
async def service(tmp_path: Path, database_url: str) -> AsyncIterator[FaxService]:
    svc = await fax_service(database_url, tmp_path)
    svc.clock = Clock()
    try:
        yield svc
    finally:
        await svc.db.close()


async def _fill(service: FaxService) -> tuple[str, str]:
    """One FAX received (with its interaction record) and one sent, both at AT."""
    source = "1762045200-1"
    write_tiff(service.paths.spool_in / f"{source}.tif")
    write_meta(service.paths.spool_in / f"{source}.meta", **good_meta(source))
    await Indexer(service).run()
    received = fax_id_of(source)
    await service.add_interaction(received, FaxInteraction("gomi", OutcomeClass.COMPLETE,
                                                           None, ""), ACTOR)
    outbox = Outbox(service, TRANSFERS, FakeSender())
    sent = (await outbox.submit(pdf_bytes(), "0120123456", ACTOR)).id
    await outbox.settle()
    return received, sent


async def _counts(service: FaxService) -> tuple[int, int, int]:
    async with service.db.sessions() as session:
        return tuple([int(await session.scalar(select(func.count()).select_from(t)) or 0)
                      for t in (FaxReceived, FaxSent, InteractionRecord)])  # type: ignore[return-value]


async def test_purge_keeps_the_retention_then_removes_with_a_report(
        service: FaxService) -> None:
    received, sent = await _fill(service)
    files = sorted(service.paths.archive.rglob("*.pdf"))
    assert len(files) == 2
    kept = await purge(service, now=AT + timedelta(days=61))  # 62 days by default
    assert kept.items == [] and await _counts(service) == (1, 1, 1)
    dry = await purge(service, now=AT + timedelta(days=63), dry_run=True)
    assert {i["id"] for i in dry.items} == {received, sent} and await _counts(service) == (
        1, 1, 1)
    gone = await purge(service, now=AT + timedelta(days=63))
    assert (len(gone.items), gone.files_removed, gone.interactions) == (2, 2, 1)
    assert await _counts(service) == (0, 0, 0)
    assert not any(f.exists() for f in files)
    assert gone.report_file is not None and gone.report_file.stat().st_mode & 0o777 == 0o600
    report = json.loads(gone.report_file.read_text())
    assert report["kind"] == "fax-retention"
    assert {(i["id"], len(i["sha256"])) for i in report["items"]} == {(received, 64),
                                                                      (sent, 64)}
    async with service.db.sessions() as session:
        row = (await session.scalars(select(DeletionReport))).one()
    assert (row.kind, row.recordings) == ("fax-retention", 2)
    assert row.report_sha256 == hashlib.sha256(gone.report_file.read_bytes()).hexdigest()


async def test_the_export_holds_tables_pdfs_and_checksums(service: FaxService,
                                                          tmp_path: Path) -> None:
    received, sent = await _fill(service)
    out = tmp_path / "handover" / "fax.tar"
    summary = await export(service, AT - timedelta(hours=1), AT + timedelta(days=1), out)
    assert summary.problems == [] and summary.files == 2
    assert summary.tables == {"fax_received": 1, "fax_sent": 1, "fax_interactions": 1}
    assert out.stat().st_mode & 0o777 == 0o600
    with tarfile.open(out) as tar:
        names = tar.getnames()
        sums = tar.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
        for line in sums.splitlines():
            digest, member = line.split("  ")
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == digest, member
        rows = tar.extractfile("tables/fax_received.jsonl").read()  # type: ignore[union-attr]
    assert f"fax/received/2026/11/02/{received}.pdf" in names
    assert f"fax/sent/2026/11/02/{sent}.pdf" in names
    assert json.loads(rows)["caller"] == "0312345678"
    empty = await export(service, AT + timedelta(days=1), AT + timedelta(days=2),
                         tmp_path / "none.tar")
    assert empty.files == 0 and empty.tables["fax_received"] == 0


async def test_erase_removes_every_fax_file_and_row(service: FaxService) -> None:
    await _fill(service)
    (service.paths.spool_in / "1762045200-9.tif").write_bytes(b"half a FAX")
    d = await erase_all(service)
    assert await _counts(service) == (0, 0, 0)
    assert list(f for f in service.paths.archive.rglob("*") if f.is_file()) == []
    assert list(service.paths.spool_in.iterdir()) == []
    assert d.report_file is not None and d.files_removed >= 3


def test_madoguchi_erase_takes_the_faxes_too(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MADOGUCHI_DATABASE_URL", raising=False)
    config, state = tmp_path / "config", tmp_path / "state"
    shutil.copytree(ROOT / "config", config)
    state.mkdir(mode=0o700)
    settings = load_settings(config, state)

    async def seed() -> str:
        db = Database(settings.database_url)
        await db.create_schema()
        svc = FaxService(db, fax_config(settings))
        try:
            write_tiff(svc.paths.spool_in / "1762045200-1.tif")
            write_meta(svc.paths.spool_in / "1762045200-1.meta", **good_meta("1762045200-1"))
            await Indexer(svc).run()
            return str(svc.paths.archive)
        finally:
            await db.close()

    archive = Path(asyncio.run(seed()))
    assert len(list(archive.rglob("*.pdf"))) == 1
    base = ["--config", str(config), "--state", str(state)]
    assert main([*base, "fax", "export", "--from", "2026-11-01", "--to", "2026-11-30",
                 "--out", str(tmp_path / "fax.tar")]) == 0
    assert '"files": 1' in capsys.readouterr().out
    assert main([*base, "erase", "--all", "--confirm"]) == 0
    assert list(archive.rglob("*.pdf")) == []
    result = json.loads(capsys.readouterr().out)  # one result for the whole erase
    assert result["kind"] == "erase" and result["fax"]["kind"] == "fax-erase"


async def test_the_monthly_report_counts_faxes_outside_the_phone_figures(
        service: FaxService) -> None:
    await _fill(service)
    kpi = KpiService(service.db, clock=lambda: AT + timedelta(days=40),
                     other_channels=service.counts)
    data = await month_data(kpi, "2026-11")
    assert data.other_channels == {"fax_received_ok": 1, "fax_sent_sending": 1}
    assert data.total.records == 0  # the FAX's interaction record is not the phone's
    (ja,) = [n for n in notes(data, Lang("ja")) if n.startswith("FAX")]
    assert "受信1件(正常1件" in ja and "送信1件" in ja
    (en,) = [n for n in notes(data, Lang("en")) if n.startswith("FAX")]
    assert "1 received (1 complete" in en
    assert (await month_data(kpi, "2026-11", "city")).other_channels == {}  # centre-wide only


def test_a_fax_retention_below_two_months_stops_the_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    main_file = config / "madoguchi.yaml"
    text = main_file.read_text(encoding="utf-8")
    fax = text.index("\nfax:")
    line = re.compile(r"^  retention_days: [0-9]+.*$", re.MULTILINE)
    assert line.search(text, fax) is not None
    main_file.write_text(text[:fax] + line.sub("  retention_days: 30", text[fax:], count=1),
                         encoding="utf-8")
    assert main(["--config", str(config), "--state", str(tmp_path / "state"), "check"]) == 2
    assert "'retention_days' must be at least 60" in capsys.readouterr().err
