"""Recordings without Asterisk: legs → two-channel archive, index and search, retention
with a fake clock, the reconciler, export and erase, config limits, HTTP refusals."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import time
import wave
from datetime import timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.calls import Call, TransferStep
from core.errors import api_errors
from core.yamlconf import ConfigError, Location, Node, load_yaml
from recordings.config import load_recording_settings
from recordings.export import export, export_stream
from recordings.files import (
    archive_legs,
    inspect_wav,
    leg_name,
    mixmonitor_args,
    overwrite_and_unlink,
    relative_name,
    repair_header,
)
from recordings.http import RECORDINGS, add_routes
from recordings.lifecycle import erase_all, purge
from recordings.reconcile import Reconciler
from recordings.service import RecordingQuery, RecordingService
from tests.recorded_calls import T0, answered_call, mono


async def test_two_legs_become_one_two_channel_archive_file(service: RecordingService) -> None:
    call = answered_call(service, "0312345678", T0)
    call.transfers = [TransferStep("7001", "7002", "attended", T0 + timedelta(seconds=9))]
    rec = await service.close_call(call, wait_timeout=1)
    assert rec is not None and rec.channels == 2 and rec.duration_s == pytest.approx(2.0)
    assert rec.wait_s == pytest.approx(3.0) and rec.talk_s == pytest.approx(2.0)
    path = service.path_of(rec)
    with wave.open(str(path)) as w:
        frames = w.readframes(3)
        assert w.getnchannels() == 2
    assert struct.unpack("<6h", frames) == (3000, -2000) * 3
    assert sha256(path.read_bytes()).hexdigest() == rec.sha256
    assert not any(service.paths.spool.rglob("*.wav"))  # legs removed once indexed
    details = await service.details(rec.id)
    assert details is not None and details[2] == ["7001", "7002"]
    assert json.loads(details[1].transfers)[0]["kind"] == "attended"


async def test_unanswered_call_keeps_only_its_row(service: RecordingService) -> None:
    call = Call("2.2", "PJSIP/trunk-2", "city", "1000", "0300000000", T0)
    call.ended_at = T0 + timedelta(seconds=3)
    call.recording = relative_name(call.id, T0)
    for leg in service.legs(call.recording):
        mono(leg, [])
    assert await service.close_call(call, wait_timeout=1) is None
    assert not any(service.paths.spool.rglob("*.wav"))
    assert await service.search(RecordingQuery()) == ([], False)


async def test_search_filters_sorting_and_paging(service: RecordingService) -> None:
    a = await service.close_call(answered_call(service, "0312345678", T0, 2.0), 1)
    b = await service.close_call(answered_call(service, "0901234567", T0 + timedelta(hours=1),
                                               4.0, agent="7002"), 1)
    assert a is not None and b is not None

    async def ids(**kw: object) -> list[int]:
        rows, _ = await service.search(RecordingQuery(**kw))  # type: ignore[arg-type]
        return [r.id for r in rows]

    assert await ids() == [b.id, a.id]
    assert await ids(sort="started_at") == [a.id, b.id]
    assert await ids(sort="-duration") == [b.id, a.id]
    assert await ids(caller="0312") == [a.id]
    assert await ids(caller_contains="1234") == [b.id, a.id]
    assert await ids(caller_contains="%") == []  # wildcards are literal
    assert await ids(agent="7002") == [b.id]
    assert await ids(start=T0 + timedelta(minutes=30)) == [b.id]
    assert await ids(end=T0 + timedelta(minutes=30)) == [a.id]
    assert await ids(min_duration=3.0) == [b.id]
    assert await ids(max_duration=3.0) == [a.id]
    assert await ids(outcome="answered", service="city") == [b.id, a.id]
    assert await ids(service="water") == []
    rows, more = await service.search(RecordingQuery(limit=1))
    assert [r.id for r in rows] == [b.id] and more
    rows, more = await service.search(RecordingQuery(limit=1, offset=1))
    assert [r.id for r in rows] == [a.id] and not more


async def test_purge_with_a_fake_clock(service: RecordingService) -> None:
    rec = await service.close_call(answered_call(service, "0312345678", T0), 1)
    assert rec is not None
    path = service.path_of(rec)
    service.clock = lambda: T0 + timedelta(days=61)
    assert (await purge(service)).recordings == [] and path.is_file()
    service.clock = lambda: T0 + timedelta(days=63)
    dry = await purge(service, dry_run=True)
    assert [r["id"] for r in dry.recordings] == [rec.id] and path.is_file()
    assert dry.report_file is None
    done = await purge(service)
    assert [r["sha256"] for r in done.recordings] == [rec.sha256] and done.calls == 1
    assert not path.exists() and await service.get(rec.id) is None
    assert done.report_file is not None
    report = json.loads(done.report_file.read_text(encoding="utf-8"))
    assert report["recordings_count"] == 1 and report["bytes"] == rec.size_bytes


async def test_reconciler_repairs_what_it_can_and_reports_the_rest(
        service: RecordingService) -> None:
    service.settings = type(service.settings)(stale_after_s=30)
    # legs left behind by a crash (old, header never finalised), no call row at all
    crashed = relative_name("c" * 32, T0)
    caller_leg = service.paths.spool / leg_name(crashed, "in")
    other_leg = service.paths.spool / leg_name(crashed, "out")
    mono(caller_leg, [100] * 800)
    mono(other_leg, [200] * 800)
    data = bytearray(caller_leg.read_bytes())
    data[40:44] = struct.pack("<I", 0)  # as Asterisk leaves it when killed
    caller_leg.write_bytes(bytes(data))
    # a fail-open recording made while the engine was down
    failopen = service.paths.spool / "failopen" / "1764000000.42.wav"
    mono(failopen, [300] * 1600)
    old = time.time() - 3600
    for p in (caller_leg, other_leg, failopen):
        os.utime(p, (old, old))
    # a live call's legs are left alone, however old
    live = relative_name("d" * 32, T0)
    mono(service.paths.spool / leg_name(live, "in"), [1] * 10)
    os.utime(service.paths.spool / leg_name(live, "in"), (old, old))
    # an indexed recording whose file then vanished, and a stray file
    gone = await service.close_call(answered_call(service, "0312345678", T0), 1)
    assert gone is not None
    service.path_of(gone).unlink()
    (service.paths.archive / "2026" / "stray.txt").write_text("?")

    report = await Reconciler(service, lambda: ["d" * 32]).run()
    assert report.counts()["stray_file"] == 1
    assert report.counts()["row_without_file"] == 1
    assert len(report.repaired) == 2
    rows, _ = await service.search(RecordingQuery(outcome="recovered"))
    assert [(r.call_id, r.channels) for r in rows] == [("c" * 32, 2)]
    rows, _ = await service.search(RecordingQuery(outcome="failopen"))
    assert len(rows) == 1 and rows[0].duration_s == pytest.approx(0.2)
    assert (await service.get(gone.id)).status == "missing"  # type: ignore[union-attr]
    assert (service.paths.spool / leg_name(live, "in")).exists()
    assert not caller_leg.exists() and not failopen.exists()
    again = await Reconciler(service, lambda: ["d" * 32]).run()
    assert again.repaired == [] and again.counts()["row_without_file"] == 1


async def test_export_and_erase_round_trip(service: RecordingService, tmp_path: Path) -> None:
    rec = await service.close_call(answered_call(service, "0312345678", T0), 1)
    assert rec is not None
    await service.peaks(rec, 20)  # a cached derivative must go too
    out = tmp_path / "out.tar"
    summary = await export(service, T0 - timedelta(days=1), T0 + timedelta(days=1), out)
    assert summary.problems == [] and summary.recordings == 1
    with tarfile.open(out) as tar:
        sums = tar.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
        audio = tar.extractfile(f"recordings/{rec.file}").read()  # type: ignore[union-attr]
        names = tar.getnames()
    assert f"{rec.sha256}  recordings/{rec.file}" in sums
    assert sha256(audio).hexdigest() == rec.sha256

    # the console's streamed copy: the same members, sent in chunks as it is made
    chunks: list[bytes] = []

    async def receive(data: bytes) -> None:
        chunks.append(data)

    streamed = await export_stream(service, T0 - timedelta(days=1), T0 + timedelta(days=1),
                                   receive)
    assert streamed.out is None and streamed.recordings == 1
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.getnames() == names
        assert tar.extractfile(f"recordings/{rec.file}").read() == audio  # type: ignore[union-attr]

    # a receiver that goes away stops the export with the error it raised
    async def gone(data: bytes) -> None:
        raise ConnectionResetError("client left")

    with pytest.raises(ConnectionResetError):
        await export_stream(service, T0 - timedelta(days=1), T0 + timedelta(days=1), gone)

    deletion = await erase_all(service)
    assert [r["sha256"] for r in deletion.recordings] == [rec.sha256]
    assert not [p for p in service.paths.archive.rglob("*") if p.is_file()]
    assert not [p for p in service.paths.cache.rglob("*") if p.is_file()]
    assert await service.search(RecordingQuery()) == ([], False)


def test_files_helpers(tmp_path: Path) -> None:
    rel = relative_name("a" * 32, T0)
    assert leg_name(rel, "in") == f"2026/11/02/{'a' * 32}-in.wav"
    assert mixmonitor_args("/r", rel) == (f",br(/r/2026/11/02/{'a' * 32}-in.wav)"
                                          f"t(/r/2026/11/02/{'a' * 32}-out.wav)")
    left, right = tmp_path / "l.wav", tmp_path / "r.wav"
    mono(left, [1, 2, 3])
    mono(right, [4, 5, 6], rate=16000)
    with pytest.raises(Exception, match="sample rate"):
        archive_legs(left, right, tmp_path / "x.wav")
    broken = tmp_path / "b.wav"
    mono(broken, [7] * 100)
    data = bytearray(broken.read_bytes())
    data[40:44] = b"\0\0\0\0"
    broken.write_bytes(bytes(data) + b"\1")  # odd trailing byte: cut to whole frames
    assert inspect_wav(broken) is None and repair_header(broken)
    assert inspect_wav(broken).duration_s == pytest.approx(100 / 8000)  # type: ignore[union-attr]
    assert overwrite_and_unlink(broken) == 244 and not broken.exists()


def test_retention_below_60_days_is_refused_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("recordings:\n  retention_days: 59\n", encoding="utf-8")
    root = Node(load_yaml(f), Location(str(f), 1, 1), "r")
    with pytest.raises(ConfigError, match=rf"{f}:2:19: 'retention_days' must be at least 60"):
        load_recording_settings(root.child("recordings"))
    f.write_text("recordings: {}\n", encoding="utf-8")
    root = Node(load_yaml(f), Location(str(f), 1, 1), "r")
    assert load_recording_settings(root.child("recordings")).retention_days == 62


async def test_http_refuses_unknown_ids_traversal_and_bad_formats(
        service: RecordingService) -> None:
    rec = await service.close_call(answered_call(service, "0312345678", T0), 1)
    assert rec is not None
    app = web.Application(middlewares=[api_errors])
    app[RECORDINGS] = service
    add_routes(app)
    async with TestClient(TestServer(app)) as client:
        for path in ("/api/recordings/999/audio", "/api/recordings/..%2F..%2Fdb.sqlite/audio",
                     "/api/recordings/1e3/audio", "/api/recordings/999/peaks"):
            resp = await client.get(path)
            assert resp.status == 404, path
        resp = await client.get(f"/api/recordings/{rec.id}/audio?format=exe")
        assert resp.status == 400
        resp = await client.get(f"/api/recordings/{rec.id}/audio",
                                headers={"Range": "bytes=0-43"})
        assert resp.status == 206 and (await resp.read())[:4] == b"RIFF"
        resp = await client.get(f"/api/recordings/{rec.id}/peaks?buckets=10")
        peaks = await resp.json()
        assert peaks["channels"][0][0] == pytest.approx(3000 / 32768, abs=1e-3)
    actions = [a.action for a in await service.audit_rows(rec.id)]
    assert actions == ["waveform", "play"]
    with wave.open(io.BytesIO(service.path_of(rec).read_bytes())) as w:
        assert w.getnchannels() == 2
