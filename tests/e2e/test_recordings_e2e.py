"""Recordings end to end: a real call recorded on two channels, found by every filter,
replayed with Range, converted, audited; the reconciler, the retention purge with a fake
clock, and export then erase, on real files made by Asterisk.

Purge and erase run on a copy of the stack's state so the shared stack keeps its data.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
import uuid
import wave
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest

from .conftest import Stack, sipp_caller, sipp_operator

pytestmark = pytest.mark.asterisk
CALLER = "0398765432"


def _rms(samples: array[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def _items(stack: Stack, query: str) -> list[dict[str, object]]:
    data = stack.json(f"/api/recordings?{query}")
    assert isinstance(data, dict)
    items = data["items"]
    assert isinstance(items, list)
    return items


@pytest.fixture(scope="module")
def recorded(stack: Stack) -> dict[str, object]:
    """One real call: English, operator 7001 answers after 1.5 s, both sides talk."""
    stack.set_ready("7001")
    operator = sipp_operator(ring_ms=1500)
    try:
        caller = sipp_caller("1000", CALLER, dtmf="2", talk_ms=7000)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-3000:]
        operator.communicate(timeout=30)
        assert operator.returncode == 0
    finally:
        if operator.poll() is None:
            operator.kill()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = _items(stack, f"caller={CALLER}")
        if items:
            assert len(items) == 1
            return items[0]
        time.sleep(0.3)
    raise AssertionError("the call's recording was never indexed")


def test_recording_has_both_sides_and_the_call_duration(stack: Stack,
                                                        recorded: dict[str, object]) -> None:
    status, headers, body = stack.get(str(recorded["audio_url"]))
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    assert int(headers["Content-Length"]) == len(body) == recorded["size_bytes"]
    assert sha256(body).hexdigest() == recorded["sha256"]
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        samples = array("h", wav.readframes(wav.getnframes()))
        duration = wav.getnframes() / wav.getframerate()
    caller_side, operator_side = samples[0::2], samples[1::2]
    assert _rms(caller_side) > 100, "the caller's channel is silence"
    assert _rms(operator_side) > 100, "the operator's channel is silence"
    talk = float(recorded["talk_s"])  # type: ignore[arg-type]
    assert 6.0 < talk < 14.0
    assert abs(duration - talk) < 1.5, (duration, talk)
    assert recorded["channels"] == 2 and recorded["status"] == "ok"
    assert recorded["outcome"] == "answered" and recorded["language"] == "en"
    wait = float(recorded["wait_s"])  # type: ignore[arg-type]
    assert 1.0 <= wait < 10.0  # the operator rang 1.5 s before answering

    details = stack.json(f"/api/recordings/{recorded['id']}")
    assert isinstance(details, dict)
    assert details["agents"] == ["7001"]
    assert details["call"]["flow_path"][:1] == ["greeting"]
    assert details["call"]["transfers"] == []


def test_search_filters(stack: Stack, recorded: dict[str, object]) -> None:
    rid = recorded["id"]
    started = datetime.fromisoformat(str(recorded["started_at"]))

    def ids(query: str) -> list[object]:
        return [i["id"] for i in _items(stack, query)]

    around = (f"from={(started - timedelta(minutes=1)).isoformat()}"
              f"&to={(started + timedelta(minutes=1)).isoformat()}").replace("+", "%2B")
    later = f"from={(started + timedelta(minutes=1)).isoformat()}".replace("+", "%2B")
    assert rid in ids(around) and rid not in ids(later)
    assert rid in ids("caller=039876") and rid not in ids("caller=039877")
    assert rid in ids("caller_contains=987654") and rid not in ids("caller_contains=55555")
    assert rid in ids("agent=7001") and rid not in ids("agent=7003")
    assert rid in ids("service=city") and rid not in ids("service=water")
    assert rid in ids("outcome=answered") and rid not in ids("outcome=recovered")
    assert rid in ids("min_duration=3&max_duration=30") and rid not in ids("min_duration=100")
    assert rid in ids(f"caller={CALLER}&agent=7001&service=city&sort=-duration&" + around)
    page = stack.json("/api/recordings?limit=1&sort=started_at")
    assert isinstance(page, dict) and len(page["items"]) == 1
    for bad in ("sort=caller", "outcome=x", "agent=7001%27", "min_duration=-1",
                "caller_contains=12a", "limit=0"):
        status, _, body = stack.get(f"/api/recordings?{bad}")
        assert status == 400, (bad, body)


def test_range_requests_and_conversion(stack: Stack, recorded: dict[str, object]) -> None:
    url = str(recorded["audio_url"])
    size = int(recorded["size_bytes"])  # type: ignore[call-overload]
    _, _, whole = stack.get(url)
    status, headers, part = stack.get(url, {"Range": "bytes=44-1043"})
    assert status == 206 and part == whole[44:1044]
    assert headers["Content-Range"] == f"bytes 44-1043/{size}"
    status, _, tail = stack.get(url, {"Range": "bytes=-500"})
    assert status == 206 and tail == whole[-500:]
    status, _, _ = stack.get(url, {"Range": f"bytes={size + 10}-"})
    assert status == 416

    status, headers, mp3 = stack.get(f"{url}?format=mp3")
    assert status == 200 and headers["Content-Type"] == "audio/mpeg"
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    assert len(mp3) < size / 4  # far smaller than the WAV
    status, _, mp3_part = stack.get(f"{url}?format=mp3", {"Range": "bytes=0-99"})
    assert status == 206 and mp3_part == mp3[:100]
    status, headers, _ = stack.get(f"{url}?download=1")
    assert headers["Content-Disposition"] == \
        f'attachment; filename="recording-{recorded["id"]}.wav"'

    peaks = stack.json(f"/api/recordings/{recorded['id']}/peaks?buckets=50")
    assert isinstance(peaks, dict) and peaks["buckets"] == 50
    assert len(peaks["channels"]) == 2
    assert all(max(ch) > 0.01 for ch in peaks["channels"])


def test_every_access_is_audited(stack: Stack, recorded: dict[str, object]) -> None:
    rid = recorded["id"]
    stack.get(f"/api/recordings/{rid}/audio", {"Range": "bytes=0-9"})
    stack.get(f"/api/recordings/{rid}/audio?download=1")
    data = stack.json(f"/api/audit?recording={rid}")
    assert isinstance(data, dict)
    rows = data["items"]
    actions = {r["action"] for r in rows}
    assert {"play", "download"} <= actions
    play = next(r for r in rows if r["action"] == "play")
    assert play["actor"] == "api-token" and play["client"] == "127.0.0.1"
    assert play["user_id"] is None and play["call_id"] == recorded["call_id"]
    assert "range=bytes=0-9" in play["detail"]
    searches = stack.json("/api/audit?limit=1000")
    assert isinstance(searches, dict)
    assert any(r["action"] == "search" and f"caller={CALLER}" in r["detail"]
               for r in searches["items"])


def test_traversal_unknown_ids_and_bad_tokens_refused(stack: Stack,
                                                      recorded: dict[str, object]) -> None:
    for path in ("/api/recordings/..%2F..%2Fsecrets.json/audio",
                 "/api/recordings/1%2F..%2F..%2Fmadoguchi.db/audio",
                 "/api/recordings/%2Fetc%2Fpasswd/audio", "/api/recordings/-1/audio",
                 "/api/recordings/99999999/audio", "/api/recordings/99999999/peaks",
                 "/api/recordings/99999999"):
        status, _, body = stack.get(path)
        assert status == 404, (path, body)
        assert b"root:" not in body and b"api_token" not in body
    status, _, _ = stack.get(f"/api/recordings/{recorded['id']}/audio?format=..%2F..%2Fx")
    assert status == 400
    other = Stack(stack.config, stack.state, "another-users-token", stack.http)
    for path in (str(recorded["audio_url"]), f"/api/recordings/{recorded['id']}",
                 f"/api/recordings/{recorded['id']}/peaks", "/api/audit",
                 "/api/recordings"):
        status, _, body = other.get(path)
        assert status == 401 and b"unauthorized" in body, path

    # a row tampered to point outside the archive is refused, not followed
    call_id = uuid.uuid4().hex
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(stack.state / "madoguchi.db") as db:
        db.execute("INSERT INTO calls (id, asterisk_uniqueid, service, did, caller, flow_path,"
                   " offered_at, ended_at, outcome, transfers) VALUES (?, '', 'city', '1000',"
                   " '0000', '', ?, ?, 'answered', '[]')", (call_id, now, now))
        cur = db.execute("INSERT INTO recordings (call_id, service, did, caller, started_at,"
                         " ended_at, duration_s, outcome, file, channels, size_bytes, sha256,"
                         " status) VALUES (?, 'city', '1000', '0000', ?, ?, 1, 'answered',"
                         " '../../secrets.json', 2, 1, '', 'ok')", (call_id, now, now))
        bad_id = cur.lastrowid
    try:
        for suffix in ("/audio", "/audio?format=mp3", "/peaks"):
            status, _, body = stack.get(f"/api/recordings/{bad_id}{suffix}")
            assert status == 404 and b"api_token" not in body, suffix
    finally:
        with sqlite3.connect(stack.state / "madoguchi.db") as db:
            db.execute("DELETE FROM recordings WHERE id = ?", (bad_id,))
            db.execute("DELETE FROM calls WHERE id = ?", (call_id,))


def _wait_metric(stack: Stack, kind: str, want: float, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while stack.metric("madoguchi_recordings_problems", kind=kind) != want:
        assert time.monotonic() < deadline, f"problems{{kind={kind}}} never reached {want}"
        time.sleep(0.5)


def test_reconciler_reports_a_removed_file_and_a_stray_file(
        stack: Stack, recorded: dict[str, object]) -> None:
    archive = stack.state / "archive"
    (row,) = [r for r in stack.call_rows(CALLER)]
    with sqlite3.connect(stack.state / "madoguchi.db") as db:
        (rel,) = db.execute("SELECT file FROM recordings WHERE call_id = ?",
                            (row["id"],)).fetchone()
    audio = archive / rel
    kept = stack.state / "kept.wav"
    shutil.move(audio, kept)
    stray = archive / "2020" / "notes.bin"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"not ours")
    # an archive file with our naming and no row (as after a crash): indexed, not dropped
    orphan_id = uuid.uuid4().hex
    orphan = archive / "2020" / "01" / "02" / f"{orphan_id}.wav"
    orphan.parent.mkdir(parents=True)
    shutil.copy(kept, orphan)
    repaired_before = stack.metric("madoguchi_recordings_repaired_total")
    try:
        deadline = time.monotonic() + 40
        while stack.json(f"/api/recordings/{recorded['id']}")["status"] != "missing":  # type: ignore[index]
            assert time.monotonic() < deadline, "the removed file was never reported"
            time.sleep(0.5)
        _wait_metric(stack, "row_without_file", 1)
        _wait_metric(stack, "stray_file", 1)
        status, _, _ = stack.get(str(recorded["audio_url"]))
        assert status == 404
        assert stack.metric("madoguchi_recordings_repaired_total") > repaired_before
        found = _items(stack, "outcome=recovered&limit=1000")
        assert any(i["call_id"] == orphan_id and i["channels"] == 2 for i in found)
        log = (stack.state.parent / "logs" / "engine.log").read_text(errors="replace")
        assert "stray_file" in log and "row_without_file" in log
    finally:
        shutil.move(kept, audio)
        shutil.rmtree(stray.parent)
        with sqlite3.connect(stack.state / "madoguchi.db") as db:
            db.execute("DELETE FROM recordings WHERE call_id = ?", (orphan_id,))
            db.execute("DELETE FROM calls WHERE id = ?", (orphan_id,))
    _wait_metric(stack, "row_without_file", 0)
    _wait_metric(stack, "stray_file", 0)
    item = stack.json(f"/api/recordings/{recorded['id']}")
    assert isinstance(item, dict) and item["status"] == "ok"


@pytest.fixture
def state_copy(stack: Stack, recorded: dict[str, object],
               tmp_path: Path) -> Iterator[Path]:
    """The stack's database and archive, copied (SQLite's online backup) for destructive
    tests."""
    copy = tmp_path / "state"
    copy.mkdir()
    src = sqlite3.connect(stack.state / "madoguchi.db")
    dst = sqlite3.connect(copy / "madoguchi.db")
    with src, dst:
        src.backup(dst)
    src.close()
    dst.close()
    shutil.copytree(stack.state / "archive", copy / "archive")
    shutil.copy(stack.state / "secrets.json", copy / "secrets.json")
    yield copy


async def test_purge_keeps_day_61_and_removes_day_63(stack: Stack, recorded: dict[str, object],
                                                    state_copy: Path) -> None:
    from core.settings import load_settings
    from recordings.config import recording_settings
    from recordings.lifecycle import purge
    from recordings.service import RecordingService
    from store.db import Database

    settings = load_settings(stack.config, state_copy)
    assert recording_settings(settings).retention_days == 62
    started = datetime.fromisoformat(str(recorded["started_at"]))
    db = Database(settings.database_url)
    try:
        service = RecordingService.for_settings(db, state_copy / "spool", settings)
        audio = service.paths.archive / str(
            (await service.get(int(recorded["id"]))).file)  # type: ignore[arg-type, union-attr]
        assert audio.is_file()
        service.clock = lambda: started + timedelta(days=61)
        day61 = await purge(service)
        assert recorded["id"] not in [r["id"] for r in day61.recordings]
        assert audio.is_file()
        service.clock = lambda: started + timedelta(days=63)
        dry = await purge(service, dry_run=True)
        assert recorded["id"] in [r["id"] for r in dry.recordings] and audio.is_file()
        day63 = await purge(service)
        assert recorded["id"] in [r["id"] for r in day63.recordings]
        assert not audio.exists()
        assert await service.get(int(recorded["id"])) is None  # type: ignore[call-overload]
        assert day63.report_file is not None
        report = json.loads(day63.report_file.read_text(encoding="utf-8"))
        assert report["kind"] == "retention"
        gone = next(r for r in report["recordings"] if r["id"] == recorded["id"])
        assert gone["sha256"] == recorded["sha256"]
        assert report["calls"] >= 1 and report["bytes"] >= int(recorded["size_bytes"])  # type: ignore[call-overload]
    finally:
        await db.close()
    with sqlite3.connect(state_copy / "madoguchi.db") as conn:
        rows = conn.execute("SELECT kind, recordings, report_sha256 FROM deletion_reports"
                            ).fetchall()
    assert [r[0] for r in rows] == ["retention"]
    assert rows[0][2] == sha256(day63.report_file.read_bytes()).hexdigest()


def _cli(stack: Stack, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madoguchi.cli", "--config",
                           str(stack.config), "--state", str(state), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_export_then_erase_round_trip(stack: Stack, recorded: dict[str, object],
                                      state_copy: Path, tmp_path: Path) -> None:
    day = datetime.fromisoformat(str(recorded["started_at"])).date()
    out = tmp_path / "handover.tar"
    done = _cli(stack, state_copy, "export", "--from", str(day - timedelta(days=1)), "--to",
                str(day + timedelta(days=1)), str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["problems"] == [] and summary["recordings"] >= 1
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tar.getmembers() if m.isfile()}
    manifest = json.loads(files["manifest.json"])
    assert sha256(files["manifest.json"]).hexdigest() == summary["manifest_sha256"]
    assert manifest["sha256sums_sha256"] == sha256(files["SHA256SUMS"]).hexdigest()
    sums = [line.split("  ", 1) for line in files["SHA256SUMS"].decode().splitlines()]
    assert len(sums) == manifest["files"] == len(files) - 2
    for digest, name in sums:
        assert sha256(files[name]).hexdigest() == digest, name
    recs = [json.loads(line) for line in files["tables/recordings.jsonl"].splitlines()]
    ours = next(r for r in recs if r["id"] == recorded["id"])
    assert sha256(files[f"recordings/{ours['file']}"]).hexdigest() == recorded["sha256"]
    calls = [json.loads(line) for line in files["tables/calls.jsonl"].splitlines()]
    assert any(c["caller"] == CALLER for c in calls)
    assert "audit_log" in manifest["tables"]

    refused = _cli(stack, state_copy, "erase", "--all")
    assert refused.returncode == 2
    assert (state_copy / "archive" / ours["file"]).is_file()
    erased = _cli(stack, state_copy, "erase", "--all", "--confirm")
    assert erased.returncode == 0, erased.stderr
    result = json.loads(erased.stdout)  # one result; the FAX part under "fax"
    assert "report_file" in result["fax"]
    report = json.loads(Path(result["report_file"]).read_text(encoding="utf-8"))
    assert report["kind"] == "erase"
    assert {r["sha256"] for r in report["recordings"]} == {r["sha256"] for r in recs}
    assert not [p for p in (state_copy / "archive").rglob("*") if p.is_file()]
    with sqlite3.connect(state_copy / "madoguchi.db") as conn:
        for table in ("calls", "recordings", "recording_agents", "audit_log"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        # the FAXes (the e2e stack received some) are erased first, with their own report
        kinds = sorted(k for (k,) in conn.execute("SELECT kind FROM deletion_reports"))
        assert kinds in (["erase"], ["erase", "fax-erase"]), kinds
    raw = (state_copy / "madoguchi.db").read_bytes()
    assert CALLER.encode() not in raw, "the caller's number survives in the database file"
