"""The spool's receptions into the index: good, failed and partial ones kept and marked,
idempotent passes, strict meta values, the PDF's page box for standard and fine FAXes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fax.files import sha256_file
from fax.indexer import Indexer, fax_id_of, parse_meta, resolution_class
from fax.models import FaxReceived
from fax.service import FaxService
from tests.fax_files import AT, FINE, STANDARD, age, fax_service, good_meta, write_meta, write_tiff

SOURCE = "1764630000-42"


@pytest.fixture
async def service(tmp_path: Path, database_url: str) -> AsyncIterator[FaxService]:
    svc = await fax_service(database_url, tmp_path)
    try:
        yield svc
    finally:
        await svc.db.close()


async def _rows(service: FaxService) -> list[FaxReceived]:
    async with service.db.sessions() as session:
        return list((await session.scalars(select(FaxReceived))).all())


def _page_box(pdf: Path) -> tuple[float, float]:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                         check=True).stdout
    found = re.search(r"Page size:\s+([0-9.]+) x ([0-9.]+) pts", out)
    assert found is not None, out
    return float(found.group(1)), float(found.group(2))


async def test_a_good_reception_becomes_one_private_pdf(service: FaxService) -> None:
    spool = service.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif", FINE, pages=2)
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE, pages="2"))
    report = await Indexer(service).run()
    assert report.indexed == [fax_id_of(SOURCE)] and report.problems == []
    (row,) = await _rows(service)
    assert (row.result, row.status, row.pages, row.resolution) == ("ok", "new", 2, "fine")
    assert (row.caller, row.did, row.remote_station) == ("0312345678", "4000", "+81 3 1234 5678")
    assert row.started_at == AT and (row.ended_at - AT).total_seconds() == 60
    assert re.fullmatch(r"[0-9a-f]{32}", row.id)
    assert row.file == f"received/2026/11/02/{row.id}.pdf" and row.file_type == "pdf"
    pdf = service.paths.archive / row.file
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert pdf.stat().st_mode & 0o777 == 0o600
    for folder in (pdf.parent, *pdf.parent.parents):  # received/2026/11/02 and the archive
        if folder == service.paths.archive.parent:
            break
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert row.sha256 == sha256_file(pdf) and row.size_bytes == pdf.stat().st_size
    assert list(spool.iterdir()) == []  # the spool's copies are gone once indexed


@pytest.mark.parametrize(("dpi", "name"), [(STANDARD, "standard"), (FINE, "fine")])
async def test_the_pdf_page_keeps_the_paper_shape(service: FaxService,
                                                  dpi: tuple[int, int], name: str) -> None:
    # a standard FAX has half the lines of a fine one over the same A4 sheet: the page box
    # comes from the TIFF's X/Y resolution, so both are A4-shaped, neither squashed
    spool = service.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif", dpi)
    resolution = "8031x3850" if name == "standard" else "8031x7700"
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE, resolution=resolution))
    await Indexer(service).run()
    (row,) = await _rows(service)
    assert row.resolution == name
    assert row.file is not None
    width, height = _page_box(service.paths.archive / row.file)
    assert width == pytest.approx(WIDTH_PT, rel=0.01)
    # 1728 dots at 204 dpi across (215 mm), 297 mm down: never half or twice as tall
    assert height / width == pytest.approx(11.69 / (1728 / 204), rel=0.01)


WIDTH_PT = 1728 / 204 * 72


async def test_a_failed_reception_without_an_image_is_kept_and_marked(
        service: FaxService) -> None:
    write_meta(service.paths.spool_in / f"{SOURCE}.meta",
               **good_meta(SOURCE, status="FAILED", pages="0", error="T30 PHASE B"))
    await Indexer(service).run()
    (row,) = await _rows(service)
    assert (row.result, row.file, row.file_type, row.error) == (
        "failed", None, None, "T30 PHASE B")
    assert row.caller == "0312345678"


async def test_a_failed_reception_with_pages_is_partial(service: FaxService) -> None:
    spool = service.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif")
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE, status="FAILED",
                                                     error="LINE DROPPED"))
    await Indexer(service).run()
    (row,) = await _rows(service)
    assert (row.result, row.file_type, row.error) == ("partial", "pdf", "LINE DROPPED")


async def test_an_unreadable_image_is_kept_as_it_came(service: FaxService) -> None:
    spool = service.paths.spool_in
    (spool).mkdir(parents=True)
    (spool / f"{SOURCE}.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE))
    report = await Indexer(service).run()
    (row,) = await _rows(service)
    assert (row.result, row.file_type) == ("failed", "tiff")
    assert row.file is not None and row.file.endswith(f"{row.id}.tif")
    kept = service.paths.archive / row.file
    assert kept.read_bytes().startswith(b"II*") and kept.stat().st_mode & 0o777 == 0o600
    assert any("no PDF" in p for p in report.problems)


async def test_a_tiff_without_meta_waits_then_is_partial(service: FaxService) -> None:
    tif = service.paths.spool_in / f"{SOURCE}.tif"
    write_tiff(tif)
    report = await Indexer(service).run()
    assert report.waiting == [SOURCE] and await _rows(service) == []  # still receiving
    age(tif, 16 * 60)  # Asterisk died mid-reception
    await Indexer(service).run()
    (row,) = await _rows(service)
    assert (row.result, row.file_type, row.caller) == ("partial", "pdf", "")
    assert row.error.startswith("the reception never ended")


async def test_passes_are_idempotent(service: FaxService) -> None:
    spool = service.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif")
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE))
    first = await Indexer(service).run()
    (row,) = await _rows(service)
    pdf = service.paths.archive / str(row.file)
    digest = sha256_file(pdf)
    second = await Indexer(service).run()
    assert first.indexed == [row.id] and second.indexed == []
    # a crash after the row was stored but before the spool was cleared: the next pass
    # (a restart) only clears the spool
    write_tiff(spool / f"{SOURCE}.tif")
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE))
    third = await Indexer(service).run()
    assert third.indexed == [] and third.cleared == [SOURCE]
    async with service.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FaxReceived)) == 1
    assert list(spool.iterdir()) == [] and sha256_file(pdf) == digest
    assert len(list(service.paths.archive.rglob("*.pdf"))) == 1


async def test_odd_meta_values_are_dropped_and_named(service: FaxService) -> None:
    spool = service.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif")
    meta = spool / f"{SOURCE}.meta"
    meta.write_bytes(
        b"did=4000\ncallerid=03;rm -rf /\nremotestationid=$(reboot)\nstarted=tomorrow\n"
        b"pages=99999\nstatus=SUCCESS\nresolution=8031x7700\nshell=1\nnot a line\n"
        b"callerid=0312345678\n" + b"error=" + b"x" * 200 + b"\nended=1762045260\n")
    report = await Indexer(service).run()
    (row,) = await _rows(service)
    # nothing odd reaches the index: the caller is unknown rather than half-kept
    assert (row.caller, row.remote_station, row.pages) == ("", "", 1)
    assert row.result == "ok" and row.error == ""
    (problem,) = [p for p in report.problems if "odd meta" in p]
    for name in ("callerid", "remotestationid", "started", "pages", "shell", "error"):
        assert name in problem


def test_meta_parsing_is_strict() -> None:
    meta = parse_meta("did=4000\ncallerid=+81312345678\nstarted=1764630000\n"
                      "ended=1764630060\nstatus=SUCCESS\npages=3\nresolution=204x98\n")
    assert (meta.did, meta.caller, meta.pages, meta.resolution, meta.odd) == (
        "4000", "+81312345678", 3, "standard", ())
    assert parse_meta("status=MAYBE\n").status == "FAILED"
    assert parse_meta("did=40a0\n").odd == ("did",)
    assert parse_meta("callerid=1\ncallerid=2\n").caller == ""  # twice: neither trusted
    assert resolution_class("8031x3850") == "standard"
    assert resolution_class("8031x7700") == "fine"
    assert resolution_class("16062x15400") == "superfine"
    assert resolution_class("8031x") is None and resolution_class("1x1") is None


async def test_spool_names_not_made_by_the_dialplan_are_left_alone(
        service: FaxService) -> None:
    spool = service.paths.spool_in
    write_tiff(spool / "report.tif")
    write_meta(spool / "x.meta", status="SUCCESS")
    report = await Indexer(service).run()
    assert await _rows(service) == []
    assert len(report.problems) == 2
    assert sorted(p.name for p in spool.iterdir()) == ["report.tif", "x.meta"]


async def test_a_meta_still_being_written_waits_for_its_last_line(
        service: FaxService) -> None:
    spool = service.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif")
    values = good_meta(SOURCE)
    del values["ended"]  # the h extension has not written its last line yet
    write_meta(spool / f"{SOURCE}.meta", **values)
    report = await Indexer(service).run()
    assert report.waiting == [SOURCE] and await _rows(service) == []
    age(spool / f"{SOURCE}.meta", 16 * 60)  # it never will: indexed with what is there
    await Indexer(service).run()
    (row,) = await _rows(service)
    assert (row.result, row.caller) == ("ok", "0312345678")
    assert row.started_at == AT and row.ended_at > AT  # no end known: when it was found


def test_a_withheld_caller_is_kept_as_written() -> None:
    assert parse_meta("callerid=anonymous\n").caller == "anonymous"
    assert parse_meta("callerid=03 1234\n").odd == ("callerid",)
