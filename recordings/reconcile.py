"""The reconciler: files without rows and rows without files, at start-up and on a timer.

It repairs what it can — finishes archiving legs a crash left in the spool folder, fixes a
WAV header whose writer died, indexes an archive file that has no row, indexes fail-open
recordings made while the engine was down, marks rows whose file vanished — and reports the
rest by kind (metric + log). It never deletes audio it cannot account for.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from core.calls import Outcome
from core.files import write_durably
from store.models import CallRecord, Recording

from .files import (
    ARCHIVE_FILE,
    LEG_FILE,
    RecordingFileError,
    WavInfo,
    archive_legs,
    inspect_wav,
    relative_name,
    repair_header,
    safe_path,
    sha256_file,
    walk_files,
)
from .service import RecordingService, recording_row

log = logging.getLogger(__name__)

FAILOPEN_FILE = re.compile(r"^failopen/(?P<uid>[0-9]+\.[0-9]+)\.wav$")
PROBLEM_KINDS = ("stray_file", "bad_file", "partial_file", "row_without_file", "mismatch")
BATCH = 500


@dataclass
class ReconcileReport:
    repaired: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in
                                                                     PROBLEM_KINDS})

    def problem(self, kind: str, what: str) -> None:
        self.problems[kind].append(what)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.problems.items()}


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _channels(path: Path) -> int:
    with open(path, "rb") as f:
        return int.from_bytes(f.read(24)[22:24], "little")


def _complete(path: Path, stale: bool) -> WavInfo | None:
    info = inspect_wav(path)
    if info is None and stale and repair_header(path):
        log.warning("%s: header repaired from the file size", path.name)
        info = inspect_wav(path)
    return info


class Reconciler:
    def __init__(self, service: RecordingService,
                 live_call_ids: Callable[[], Iterable[str]] = frozenset) -> None:
        self.service = service
        self.live_call_ids = live_call_ids
        self.last: ReconcileReport | None = None

    async def run(self) -> ReconcileReport:
        report = ReconcileReport()
        await self._spool(report)
        await self._archive_files(report)
        await self._rows(report)
        self.last = report
        for kind, items in report.problems.items():
            if items:
                log.error("reconciler: %d %s: %s%s", len(items), kind, ", ".join(items[:5]),
                          " …" if len(items) > 5 else "")
        for line in report.repaired:
            log.warning("reconciler repaired: %s", line)
        return report

    # ---- helpers ---------------------------------------------------------------------------
    async def _indexed_call_ids(self, call_ids: list[str]) -> set[str]:
        found: set[str] = set()
        async with self.service.db.sessions() as session:
            for i in range(0, len(call_ids), BATCH):
                chunk = call_ids[i:i + BATCH]
                found.update((await session.scalars(
                    select(Recording.call_id).where(Recording.call_id.in_(chunk)))).all())
        return found

    async def _index(self, call_id: str, relative: str, info: WavInfo, channels: int,
                     ended: datetime, outcome: str, uniqueid: str = "") -> None:
        """Write the recording row, and a recovered call row when the call has none."""
        async with self.service.db.sessions() as session, session.begin():
            call = await session.get(CallRecord, call_id)
            if call is None:
                start = ended - timedelta(seconds=info.duration_s)
                call = CallRecord(
                    id=call_id, asterisk_uniqueid=uniqueid, service="unknown", did="",
                    caller="unknown", language=None, flow_path="", queue=None, agent_id=None,
                    offered_at=start, queued_at=None, ring_at=None, answered_at=start,
                    ended_at=ended, outcome=outcome, wait_s=None,
                    talk_s=round(info.duration_s, 3), transfers="[]")
                session.add(call)
                await session.flush()
            rec = recording_row(call, relative, info, channels)
            session.add(rec)
            await session.flush()
            if call.agent_id:
                self.service._add_agents(session.add, rec, [call.agent_id])

    # ---- spool: what Asterisk wrote ------------------------------------------------------------
    async def _spool(self, report: ReconcileReport) -> None:
        spool = self.service.paths.spool
        stale_after = self.service.settings.stale_after_s
        live = set(self.live_call_ids())
        legs: dict[str, dict[str, Path]] = {}
        for path in await asyncio.to_thread(lambda: list(walk_files(spool))):
            rel = _rel(spool, path)
            m = LEG_FILE.match(path.name)
            if m and len(rel.split("/")) == 4:
                legs.setdefault(m["id"], {})[m["leg"]] = path
            elif FAILOPEN_FILE.match(rel):
                if _age_s(path) >= stale_after:
                    await self._failopen(path, report)
            elif ARCHIVE_FILE.match(path.name) and len(rel.split("/")) == 4:
                # a mono mix from before two-leg recording: archive it as it is
                if _age_s(path) >= stale_after:
                    await self._adopt_mono(path, ARCHIVE_FILE.match(path.name)["id"],  # type: ignore[index]
                                           rel, report)
            else:
                report.problem("stray_file", f"spool/{rel}")
        pending = {cid: p for cid, p in legs.items()
                   if cid not in live and all(_age_s(x) >= stale_after for x in p.values())}
        if not pending:
            return
        indexed = await self._indexed_call_ids(sorted(pending))
        for call_id, parts in sorted(pending.items()):
            any_leg = next(iter(parts.values()))
            relative = _rel(spool, any_leg).rsplit("/", 1)[0] + f"/{call_id}.wav"
            if call_id in indexed:
                for p in parts.values():
                    await asyncio.to_thread(p.unlink, missing_ok=True)
                report.repaired.append(f"{call_id}: removed legs already archived")
                continue
            await self._archive_pending(call_id, relative, parts, report)

    async def _archive_pending(self, call_id: str, relative: str, parts: dict[str, Path],
                               report: ReconcileReport) -> None:
        infos = {leg: await asyncio.to_thread(_complete, p, True) for leg, p in parts.items()}
        if any(i is None for i in infos.values()):
            report.problem("bad_file", f"{call_id}: leg unreadable")
            return
        dest = safe_path(self.service.paths.archive, relative)
        try:
            if len(parts) == 2:
                info = await asyncio.to_thread(archive_legs, parts["in"], parts["out"], dest)
                channels = 2
            else:  # one leg survived: keep it, mono
                only = next(iter(parts.values()))
                data = await asyncio.to_thread(only.read_bytes)
                await asyncio.to_thread(write_durably, dest, data)
                mono = await asyncio.to_thread(inspect_wav, dest)
                if mono is None:
                    raise RecordingFileError(f"{dest.name} did not read back as written")
                info, channels = mono, 1
        except (RecordingFileError, OSError) as exc:
            report.problem("bad_file", f"{call_id}: {exc}")
            return
        ended = max(_mtime(p) for p in parts.values())
        await self._index(call_id, relative, info, channels, ended, Outcome.RECOVERED)
        for p in parts.values():
            await asyncio.to_thread(p.unlink, missing_ok=True)
        self.service.counters.indexed += 1
        report.repaired.append(f"{call_id}: legs archived and indexed")

    async def _move_in(self, src: Path, call_id: str, ended: datetime,
                       report: ReconcileReport, outcome: str, uniqueid: str = "") -> None:
        info = await asyncio.to_thread(_complete, src, True)
        if info is None:
            report.problem("bad_file", f"spool/{_rel(self.service.paths.spool, src)}")
            return
        start = ended - timedelta(seconds=info.duration_s)
        relative = relative_name(call_id, start)
        dest = safe_path(self.service.paths.archive, relative)
        data = await asyncio.to_thread(src.read_bytes)
        await asyncio.to_thread(write_durably, dest, data)
        await self._index(call_id, relative, info, 1, ended, outcome, uniqueid)
        await asyncio.to_thread(src.unlink)
        self.service.counters.indexed += 1
        report.repaired.append(f"{src.name}: archived and indexed as {call_id}")

    async def _failopen(self, path: Path, report: ReconcileReport) -> None:
        """Recorded by the dialplan while the engine was down: index it under a new id."""
        ended = _mtime(path)
        await self._move_in(path, uuid.uuid4().hex, ended, report, "failopen",
                            uniqueid=path.stem)

    async def _adopt_mono(self, path: Path, call_id: str, rel: str,
                          report: ReconcileReport) -> None:
        if call_id in await self._indexed_call_ids([call_id]):
            report.problem("stray_file", f"spool/{rel}")
            return
        ended = _mtime(path)
        await self._move_in(path, call_id, ended, report, Outcome.RECOVERED)

    # ---- archive: files without rows ----------------------------------------------------------
    async def _archive_files(self, report: ReconcileReport) -> None:
        archive = self.service.paths.archive
        stale_after = self.service.settings.stale_after_s
        candidates: dict[str, Path] = {}
        for path in await asyncio.to_thread(lambda: list(walk_files(archive))):
            rel = _rel(archive, path)
            m = ARCHIVE_FILE.match(path.name)
            if m and len(rel.split("/")) == 4:
                candidates[m["id"]] = path
            elif path.name.startswith(".") and path.name.endswith(".tmp"):
                # a write cut short by a crash; the legs it came from are still in the spool
                if _age_s(path) >= stale_after:
                    await asyncio.to_thread(path.unlink, missing_ok=True)
                    report.repaired.append(f"archive/{rel}: unfinished write removed")
                else:
                    report.problem("partial_file", f"archive/{rel}")
            else:
                report.problem("stray_file", f"archive/{rel}")
        if not candidates:
            return
        indexed = await self._indexed_call_ids(sorted(candidates))
        for call_id in sorted(set(candidates) - indexed):
            path = candidates[call_id]
            info = await asyncio.to_thread(inspect_wav, path)
            if info is None:
                report.problem("bad_file", f"archive/{_rel(archive, path)}")
                continue
            channels = await asyncio.to_thread(_channels, path)
            ended = _mtime(path)
            await self._index(call_id, _rel(archive, path), info, channels, ended,
                              Outcome.RECOVERED)
            self.service.counters.indexed += 1
            report.repaired.append(f"archive/{_rel(archive, path)}: indexed")

    # ---- rows without files ------------------------------------------------------------------
    async def _rows(self, report: ReconcileReport) -> None:
        archive = self.service.paths.archive
        async with self.service.db.sessions() as session:
            rows = (await session.execute(select(
                Recording.id, Recording.file, Recording.size_bytes, Recording.sha256,
                Recording.status))).all()

        def check() -> list[tuple[int, str, str]]:
            changes: list[tuple[int, str, str]] = []  # (id, new status, file)
            for rid, rel, size, sha, status in rows:
                try:
                    path = safe_path(archive, rel)
                    actual = path.stat().st_size
                except (RecordingFileError, FileNotFoundError):
                    if status != "missing":
                        changes.append((rid, "missing", rel))
                    else:
                        report.problem("row_without_file", f"recording {rid} ({rel})")
                    continue
                if actual != size:
                    if status != "mismatch":
                        changes.append((rid, "mismatch", rel))
                    else:
                        report.problem("mismatch", f"recording {rid} ({rel})")
                elif status != "ok":
                    # the file came back (restored from a backup): trust it only if it matches
                    changes.append((rid, "ok" if sha256_file(path) == sha else "mismatch",
                                    rel))
            return changes

        changes = await asyncio.to_thread(check)
        if not changes:
            return
        async with self.service.db.sessions() as session, session.begin():
            for rid, status, rel in changes:
                await session.execute(update(Recording).where(Recording.id == rid)
                                      .values(status=status))
                if status == "ok":
                    report.repaired.append(f"recording {rid}: file is back and matches")
                else:
                    kind = "row_without_file" if status == "missing" else "mismatch"
                    report.problem(kind, f"recording {rid} ({rel})")
