"""The handover archive (§14(1)イ): call records, every table linked to them, recordings,
checksums and a manifest, in one tar file.

Layout inside the tar:
  tables/<table>.jsonl   one JSON object per row (times in ISO 8601, UTC)
  recordings/<YYYY/MM/DD/id>.wav
  SHA256SUMS             `sha256sum -c` format, every file above
  manifest.json          range, counts, schema, problems; its own checksum is in the CLI output
Each recording's checksum is verified against the index while it is copied, in one pass.
SHA256SUMS vouches for the index: a recording's line holds the checksum the index recorded
when the call was archived, not one computed from the copy, so a file that changed since
fails `sha256sum -c`; it is also named in the manifest's "mismatched" list and the export
reports it as a problem (the CLI exits non-zero).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, select

from store.models import AuditEntry, Base, CallRecord, DeletionReport, Recording, SurveyAnswer

from .files import RecordingFileError, safe_path
from .service import RecordingService

FORMAT_VERSION = 1
Progress = Callable[[int, int], None]  # (done, total)
SEND_TIMEOUT_S = 300  # a receiver that takes no data for this long is given up on


class ExportAborted(Exception):
    """The receiver of a streamed export went away."""


@dataclass
class ExportSummary:
    out: Path | None = None
    tables: dict[str, int] = field(default_factory=dict)
    recordings: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    # recordings whose bytes differ from the index: {"id", "member", "index_sha256",
    # "file_sha256"}
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    manifest_sha256: str = ""


class _HashingReader:
    """Hands a file to tarfile while hashing what tarfile reads (one pass over the audio).
    A file that shrank after tarfile took its size is padded with zeros to that size: the
    tar stays whole (a short member would shift every later one), and the checksum fails."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f = f
        self.left = size
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            data += bytes(n - len(data))
        self.left -= n
        self.digest.update(data)
        return data


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _links_to(table: Table, target: str) -> str | None:
    for fk in table.foreign_keys:
        if fk.column.table.name == target:
            return str(fk.parent.name)
    return None


async def _rows(service: RecordingService, start: datetime,
                end: datetime) -> dict[str, list[dict[str, Any]]]:
    """Rows to hand over: calls offered in [start, end), every row linked to those calls or
    their recordings, the survey answers of those calls, audit and deletion entries of the
    period, other tables whole."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with service.db.sessions() as session:
        call_ids = set((await session.scalars(select(CallRecord.id).where(
            CallRecord.offered_at >= start, CallRecord.offered_at < end))).all())
        rec_ids = set((await session.scalars(select(Recording.id).where(
            Recording.call_id.in_(call_ids)))).all()) if call_ids else set()
        for table in Base.metadata.sorted_tables:
            stmt = select(table)
            if table.name == CallRecord.__tablename__:
                stmt = stmt.where(table.c.offered_at >= start, table.c.offered_at < end)
            elif (col := _links_to(table, CallRecord.__tablename__)) is not None:
                stmt = stmt.where(table.c[col].in_(call_ids))
            elif (col := _links_to(table, Recording.__tablename__)) is not None:
                stmt = stmt.where(table.c[col].in_(rec_ids))
            elif table.name in (AuditEntry.__tablename__, DeletionReport.__tablename__):
                stmt = stmt.where(table.c.at >= start, table.c.at < end)
            elif table.name == SurveyAnswer.__tablename__:  # the calls' answers, no key
                stmt = stmt.where(table.c.call_offered_at >= start,
                                  table.c.call_offered_at < end)
            result = await session.execute(stmt)
            out[table.name] = [{k: _plain(v) for k, v in row._mapping.items()}
                               for row in result]
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _write_tar(service: RecordingService, sink: IO[bytes] | _LoopSink, start: datetime,
               end: datetime, rows: dict[str, list[dict[str, Any]]],
               progress: Progress) -> ExportSummary:
    summary = ExportSummary()
    sums: list[tuple[str, str]] = []
    recs = rows.get(Recording.__tablename__, [])
    total = len(rows) + len(recs)
    done = 0
    # plain tar, written as a stream: WAV audio does not compress, any tool can read it,
    # and nothing needs to be staged on disk before it is sent
    with tarfile.open(fileobj=sink, mode="w|") as tar:  # type: ignore[call-overload]
        for name, table_rows in rows.items():
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n"
                           for r in table_rows).encode()
            member = f"tables/{name}.jsonl"
            _add_bytes(tar, member, data)
            sums.append((hashlib.sha256(data).hexdigest(), member))
            summary.tables[name] = len(table_rows)
            done += 1
            progress(done, total)
        for rec in recs:
            member = f"recordings/{rec['file']}"
            try:
                path = safe_path(service.paths.archive, rec["file"])
                with open(path, "rb") as f:
                    info = tar.gettarinfo(fileobj=f, arcname=member)
                    info.mode = 0o600
                    reader = _HashingReader(f, info.size)
                    tar.addfile(info, reader)
                digest = reader.digest.hexdigest()
                if digest != rec["sha256"]:
                    summary.mismatched.append({"id": rec["id"], "member": member,
                                               "index_sha256": rec["sha256"],
                                               "file_sha256": digest})
                    summary.problems.append(f"{member} (recording {rec['id']}): checksum "
                                            f"{digest} differs from the index {rec['sha256']}")
                # the index's checksum, not the copy's: a changed file fails `sha256sum -c`
                sums.append((rec["sha256"], member))
                summary.recordings += 1
                summary.bytes += info.size
            except (OSError, RecordingFileError) as exc:
                summary.problems.append(f"recording {rec['id']}: {exc}")
            done += 1
            progress(done, total)
        sums_data = "".join(f"{d}  {m}\n" for d, m in sums).encode()
        _add_bytes(tar, "SHA256SUMS", sums_data)
        schema = {t.name: {c.name: str(c.type) for c in t.columns}
                  for t in Base.metadata.sorted_tables}
        manifest = {
            "format": "madoguchi-handover", "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(), "from": start.isoformat(),
            "to": end.isoformat(), "tables": summary.tables, "recordings": summary.recordings,
            "recording_bytes": summary.bytes, "files": len(sums),
            "sha256sums_sha256": hashlib.sha256(sums_data).hexdigest(),
            "mismatched": summary.mismatched, "problems": summary.problems,
            "schema": schema,
        }
        manifest_data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        _add_bytes(tar, "manifest.json", manifest_data)
        summary.manifest_sha256 = hashlib.sha256(manifest_data).hexdigest()
    return summary


def _write(service: RecordingService, out: Path, start: datetime, end: datetime,
           rows: dict[str, list[dict[str, Any]]], progress: Progress) -> ExportSummary:
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as f:
        summary = _write_tar(service, f, start, end, rows, progress)
    tmp.replace(out)
    summary.out = out
    return summary


class _LoopSink:
    """The tar writer thread's file: hands 1 MiB chunks to an async writer and waits for
    each, so a slow reader slows the export instead of filling memory."""

    CHUNK = 1 << 20

    def __init__(self, write: Callable[[bytes], Coroutine[Any, Any, None]],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._write = write
        self._loop = loop
        self._buf = bytearray()
        self.aborted = False

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= self.CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.aborted:
            raise ExportAborted("the download was abandoned")
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            asyncio.run_coroutine_threadsafe(self._write(data), self._loop).result(SEND_TIMEOUT_S)


async def export(service: RecordingService, start: datetime, end: datetime, out: Path,
                 progress: Progress = lambda _d, _t: None) -> ExportSummary:
    rows = await _rows(service, start, end)
    return await asyncio.to_thread(_write, service, out, start, end, rows, progress)


async def export_stream(service: RecordingService, start: datetime, end: datetime,
                        write: Callable[[bytes], Coroutine[Any, Any, None]]) -> ExportSummary:
    """Write the handover tar to `write` (an HTTP response) as it is made."""
    rows = await _rows(service, start, end)
    sink = _LoopSink(write, asyncio.get_running_loop())

    def run() -> ExportSummary:
        summary = _write_tar(service, sink, start, end, rows, lambda _d, _t: None)
        sink.flush()
        return summary

    try:
        return await asyncio.to_thread(run)
    finally:
        sink.aborted = True  # a cancelled request stops the thread at its next chunk
