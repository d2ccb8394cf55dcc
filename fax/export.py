"""The FAX hand-over archive: the FAX tables, their interaction records, every PDF (or
TIFF kept as it came), checksums and a manifest, in one tar file.

Layout inside the tar:
  tables/<table>.jsonl   one JSON object per row (times in ISO 8601, UTC)
  fax/<received|sent>/<YYYY/MM/DD>/<id>.pdf
  SHA256SUMS             `sha256sum -c` format: the index's checksum for each FAX file
  manifest.json          range, counts, problems
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from store.models import InteractionRecord

from .files import FaxFileError, safe_path, sha256_file
from .models import FaxReceived, FaxSent
from .service import CHANNEL, FaxService

FORMAT_VERSION = 1
INTERACTIONS = "fax_interactions"


@dataclass
class FaxExport:
    out: Path
    tables: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    manifest_sha256: str = ""


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: _plain(getattr(obj, c.key)) for c in obj.__table__.columns}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


async def export(service: FaxService, start: datetime, end: datetime, out: Path) -> FaxExport:
    """FAXes received or sent in [start, end) into the tar file `out` (0600)."""
    async with service.db.sessions() as session:
        received = list((await session.scalars(select(FaxReceived).where(
            FaxReceived.started_at >= start, FaxReceived.started_at < end)
            .order_by(FaxReceived.started_at, FaxReceived.id))).all())
        sent = list((await session.scalars(select(FaxSent).where(
            FaxSent.created_at >= start, FaxSent.created_at < end)
            .order_by(FaxSent.created_at, FaxSent.id))).all())
        ids = [r.id for r in received] + [s.id for s in sent]
        records = list((await session.scalars(select(InteractionRecord).where(
            InteractionRecord.channel == CHANNEL, InteractionRecord.call_id.in_(ids))
            .order_by(InteractionRecord.id))).all()) if ids else []
    tables = {FaxReceived.__tablename__: [_row(r) for r in received],
              FaxSent.__tablename__: [_row(s) for s in sent],
              INTERACTIONS: [_row(i) for i in records]}
    files = [(r.file, r.sha256) for r in received if r.file] + [(s.file, s.sha256)
                                                                 for s in sent]
    return await asyncio.to_thread(_write, service, out, start, end, tables, files)


def _write(service: FaxService, out: Path, start: datetime, end: datetime,
           tables: dict[str, list[dict[str, Any]]],
           files: list[tuple[str, str]]) -> FaxExport:
    summary = FaxExport(out=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sums: list[str] = []
    tmp = out.with_name(f".{out.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        for name, rows in tables.items():
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
            member = f"tables/{name}.jsonl"
            _add_bytes(tar, member, data)
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {member}")
            summary.tables[name] = len(rows)
        for relative, indexed in files:
            member = f"fax/{relative}"
            try:
                path = safe_path(service.paths.archive, relative)
                actual = sha256_file(path)
                tar.add(path, arcname=member, recursive=False)
            except (FaxFileError, OSError) as exc:
                summary.problems.append(f"{relative}: {exc}")
                continue
            if actual != indexed:
                summary.mismatched.append(member)
                summary.problems.append(f"{member}: checksum differs from the index")
            sums.append(f"{indexed}  {member}")
            summary.files += 1
            summary.bytes += path.stat().st_size
        _add_bytes(tar, "SHA256SUMS", ("\n".join(sums) + "\n").encode())
        manifest = {"format": FORMAT_VERSION, "kind": "fax", "from": start.isoformat(),
                    "to": end.isoformat(), "made_at": datetime.now(UTC).isoformat(),
                    "tables": summary.tables, "files": summary.files,
                    "bytes": summary.bytes, "mismatched": summary.mismatched,
                    "problems": summary.problems}
        data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        _add_bytes(tar, "manifest.json", data)
        summary.manifest_sha256 = hashlib.sha256(data).hexdigest()
    tmp.replace(out)
    return summary
