"""The spool's receptions into the index: each `<spool>/in/<name>.tif` with its `.meta`
becomes one PDF in the archive (named by our id), checksummed and indexed; a failed or
partial reception is indexed and marked, never dropped. Runs at start-up and on a timer.

Idempotent: a reception's id is derived from its spool name, so a pass that died half-way
writes the same archive file again, and a row already indexed only has its spool files
cleared. The `.meta` is written last by the dialplan: until it exists the reception is in
progress, unless its `.tif` has not moved for STALE_TIF_S (Asterisk died mid-reception).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.fax import META_SUFFIX, META_VALUE, TIFF_SUFFIX

from .files import (
    FaxFileError,
    archive_name,
    pdf_pages,
    private_dir,
    safe_path,
    sha256_file,
    tiff_to_pdf,
    write_private,
)
from .models import FaxReceived
from .service import FaxResult, FaxService, FaxStatus

log = logging.getLogger(__name__)

# the dialplan's name for a reception: Asterisk's unique id with '.' written '-'
SOURCE = re.compile(r"[0-9]{1,20}-[0-9]{1,10}")
META_KEYS = frozenset({"id", "did", "callerid", "started", "ended", "status", "statusstr",
                       "error", "pages", "resolution", "rate", "remotestationid"})
MAX_META_BYTES = 8192
MAX_VALUE = 64
_EPOCH = re.compile(r"[0-9]{9,11}")
_PAGES = re.compile(r"[0-9]{1,4}")
_DID = re.compile(r"[0-9]{0,16}")
_NUMBER = re.compile(r"[0-9A-Za-z+._:-]{0,32}")  # digits, or "anonymous" and the like
_RESOLUTION = re.compile(r"([0-9]{1,6})x([0-9]{1,6})")


@dataclass(frozen=True)
class Meta:
    """A `.meta` file's values, each checked; what failed a check is named in `odd`."""

    did: str = ""
    caller: str = ""
    remote_station: str = ""
    started: datetime | None = None
    ended: datetime | None = None
    status: str = ""  # SUCCESS | FAILED | ""
    error: str = ""
    pages: int = 0
    resolution: str = ""  # standard | fine | superfine | ""
    odd: tuple[str, ...] = ()


def _epoch(raw: str) -> datetime | None:
    return datetime.fromtimestamp(int(raw), UTC) if _EPOCH.fullmatch(raw) else None


def resolution_class(raw: str) -> str | None:
    """Asterisk reports pixels per metre (8031x3850 standard, 8031x7700 fine); dots per
    inch (204x98, 204x196) are taken too. None when it is neither."""
    found = _RESOLUTION.fullmatch(raw)
    if found is None:
        return None
    y = int(found.group(2))
    dpi = y * 0.0254 if y >= 1000 else float(y)
    if dpi < 50:
        return None
    return "standard" if dpi < 150 else "fine" if dpi < 300 else "superfine"


def parse_meta(text: str) -> Meta:
    """Strict: a value outside the dialplan's characters, too long, or of the wrong shape is
    dropped and named in `odd`; unknown keys and malformed lines are named too."""
    values: dict[str, str] = {}
    odd: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines()[:64]:
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        name = key if re.fullmatch(r"[a-z]{1,32}", key) else "?"
        if not sep or name not in META_KEYS:
            odd.append(name)
        elif name in seen:  # written twice: neither is trusted
            odd.append(name)
            values.pop(name, None)
        elif len(value) > MAX_VALUE or not META_VALUE.fullmatch(value):
            odd.append(name)
        else:
            values[name] = value.strip()
        seen.add(name)

    def checked(name: str, pattern: re.Pattern[str]) -> str:
        raw = values.get(name, "")
        if pattern.fullmatch(raw):
            return raw
        odd.append(name)
        return ""

    did = checked("did", _DID)
    caller = checked("callerid", _NUMBER)
    pages = checked("pages", re.compile(f"(?:{_PAGES.pattern})?"))
    status = values.get("status", "")
    if status not in ("SUCCESS", "FAILED", ""):
        odd.append("status")
        status = "FAILED"
    started = _epoch(values.get("started", ""))
    ended = _epoch(values.get("ended", ""))
    if values.get("started") and started is None:
        odd.append("started")
    if values.get("ended") and ended is None:
        odd.append("ended")
    resolution = ""
    if values.get("resolution"):
        resolution = resolution_class(values["resolution"]) or ""
        if not resolution:
            odd.append("resolution")
    error = values.get("error") or values.get("statusstr") or ""
    return Meta(did=did, caller=caller, remote_station=values.get("remotestationid", "")[:32],
                started=started, ended=ended, status=status, error=error[:64],
                pages=int(pages) if pages else 0, resolution=resolution,
                odd=tuple(dict.fromkeys(odd)))


def fax_id_of(source: str) -> str:
    """Our id for a reception, the same on every pass (idempotent archive names)."""
    return hashlib.sha256(f"fax-received:{source}".encode()).hexdigest()[:32]


@dataclass
class IndexReport:
    indexed: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)  # already indexed: spool files removed
    waiting: list[str] = field(default_factory=list)  # receptions still in progress
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reception:
    source: str
    tif: Path | None
    meta: Path | None
    tif_age_s: float
    meta_age_s: float = 0.0
    meta_ended: bool = False  # its last line (`ended`) is written: the dialplan is done


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


class Indexer:
    def __init__(self, service: FaxService) -> None:
        self.service = service
        self.last: IndexReport | None = None

    def receptions(self, report: IndexReport) -> list[Reception]:
        spool = self.service.paths.spool_in
        if not spool.is_dir():
            return []
        found: dict[str, dict[str, Path]] = {}
        for entry in sorted(os.scandir(spool), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            path = Path(entry.path)
            stem, suffix = path.stem, path.suffix
            if suffix not in (TIFF_SUFFIX, META_SUFFIX) or not SOURCE.fullmatch(stem):
                report.problems.append(f"odd spool file name {entry.name[:80]!r}")
                continue
            found.setdefault(stem, {})[suffix] = path
        out = []
        for stem, files in found.items():
            tif, meta = files.get(TIFF_SUFFIX), files.get(META_SUFFIX)
            age = time.time() - tif.stat().st_mtime if tif is not None else 0.0
            meta_age, ended = 0.0, False
            if meta is not None:
                meta_age = time.time() - meta.stat().st_mtime
                with open(meta, "rb") as f:
                    ended = re.search(rb"^ended=", f.read(MAX_META_BYTES),
                                      re.MULTILINE) is not None
            out.append(Reception(stem, tif, meta, age, meta_age, ended))
        return out

    async def run(self) -> IndexReport:
        report = IndexReport()
        receptions = await asyncio.to_thread(self.receptions, report)
        for r in receptions:
            stale = self.service.config.stale_tif_s
            # the dialplan appends the meta line by line, `ended` last: until then (or until
            # it is stale) the reception is still being written down
            if (r.meta is None and r.tif_age_s < stale) or (
                    r.meta is not None and not r.meta_ended and r.meta_age_s < stale):
                report.waiting.append(r.source)
                continue
            try:
                await self._one(r, report)
            except (OSError, FaxFileError) as exc:
                report.problems.append(f"{r.source}: {exc}")
        self.last = report
        for problem in report.problems:
            log.error("FAX indexer: %s", problem)
        return report

    async def _indexed(self, source: str) -> bool:
        async with self.service.db.sessions() as session:
            return await session.scalar(
                select(FaxReceived.id).where(FaxReceived.source == source)) is not None

    async def _one(self, r: Reception, report: IndexReport) -> None:
        if not await self._indexed(r.source):
            row = await asyncio.to_thread(self._archive, r, report)
            try:
                await self.service.db.add(row, what=f"FAX {row.id}")
            except IntegrityError:  # another pass (a command line) indexed it meanwhile
                log.info("FAX %s was indexed by another pass", r.source)
            else:
                report.indexed.append(row.id)
                log.info("FAX %s indexed (%s, %d pages)", row.id, row.result, row.pages)
        else:
            report.cleared.append(r.source)
        # indexed: the spool's copies go (the archive holds the PDF, or the TIFF itself)
        for path in (r.tif, r.meta):
            if path is not None:
                path.unlink(missing_ok=True)

    def _archive(self, r: Reception, report: IndexReport) -> FaxReceived:
        """The archive file (PDF, else the TIFF as it came) and the row, not yet stored."""
        fax_id = fax_id_of(r.source)
        meta = Meta()
        if r.meta is not None:
            with open(r.meta, "rb") as f:
                raw = f.read(MAX_META_BYTES + 1)
            if len(raw) > MAX_META_BYTES:
                report.problems.append(f"{r.source}: meta file over {MAX_META_BYTES} bytes")
            meta = parse_meta(raw[:MAX_META_BYTES].decode("ascii", errors="replace"))
            if meta.odd:
                report.problems.append(f"{r.source}: odd meta values: {', '.join(meta.odd)}")
        fallback = _mtime(r.tif if r.tif is not None else r.meta)  # type: ignore[arg-type]
        ended = meta.ended or fallback
        started = meta.started or ended
        root = self.service.paths.archive
        file: str | None = None
        file_type: str | None = None
        size, digest, pages = 0, "", meta.pages
        if r.tif is not None and r.tif.stat().st_size > 0:
            file = archive_name("received", fax_id, started, ".pdf")
            dest = safe_path(root, file)
            private_dir(dest.parent)
            try:
                tiff_to_pdf(r.tif, dest)
                file_type = "pdf"
                if not pages:
                    pages = pdf_pages(dest)
            except FaxFileError as exc:
                # unreadable as a TIFF: kept as it came, for whoever can still read it
                report.problems.append(f"{r.source}: no PDF ({exc})")
                file = archive_name("received", fax_id, started, ".tif")
                dest = safe_path(root, file)
                write_private(dest, r.tif.read_bytes())
                file_type = "tiff"
            size, digest = dest.stat().st_size, sha256_file(dest)
        if r.meta is None:
            result = FaxResult.PARTIAL
            error = meta.error or "the reception never ended (no meta file)"
        elif file_type != "pdf":
            result, error = FaxResult.FAILED, meta.error or "no usable image"
        elif meta.status == "SUCCESS":
            result, error = FaxResult.OK, ""
        else:
            result, error = FaxResult.PARTIAL, meta.error or "reception failed"
        return FaxReceived(
            id=fax_id, source=r.source, did=meta.did, caller=meta.caller,
            remote_station=meta.remote_station, pages=pages, resolution=meta.resolution,
            result=result.value, error=error[:64], started_at=started, ended_at=ended,
            indexed_at=self.service.clock(), file=file, file_type=file_type,
            size_bytes=size, sha256=digest, status=FaxStatus.NEW.value)
