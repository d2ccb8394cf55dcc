"""The handover tar vouches for what the index recorded: every table and recording is in
SHA256SUMS, a recording whose bytes changed since it was indexed fails `sha256sum -c` and the
export (file, stream and CLI), and a file that shrinks while copied leaves the tar whole."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tarfile
from datetime import timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_settings
from harness.offline_engine import offline_config
from madoguchi.cli import main
from recordings.export import export, export_stream
from recordings.service import RecordingService
from store.db import Database
from store.models import Recording
from tests.recorded_calls import T0, answered_call

FROM, TO = T0 - timedelta(days=1), T0 + timedelta(days=1)
UNLISTED = {"SHA256SUMS", "manifest.json"}  # the manifest names SHA256SUMS' checksum


def corrupt(path: Path) -> None:
    """Flip the last byte: same size, different content (bit rot, a bad restore)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def unpack(tar_bytes: bytes, dest: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Extract the tar; return SHA256SUMS as {member: checksum} and the manifest."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        names = set(tar.getnames())
        tar.extractall(dest, filter="data")
    sums = {}
    for line in (dest / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, member = line.split("  ", 1)
        sums[member] = digest
    assert set(sums) == names - UNLISTED  # every other member is vouched for
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sha256sums_sha256"] == sha256((dest / "SHA256SUMS").read_bytes()
                                                   ).hexdigest()
    return sums, manifest


def sha256sum_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True, check=False)


async def streamed(service: RecordingService) -> tuple[bytes, Any]:
    chunks: list[bytes] = []

    async def receive(data: bytes) -> None:
        chunks.append(data)

    summary = await export_stream(service, FROM, TO, receive)
    return b"".join(chunks), summary


async def test_sha256sums_vouch_for_every_table_and_recording(service: RecordingService,
                                                              tmp_path: Path) -> None:
    rec = await service.close_call(answered_call(service, "0312345678", T0), 1)
    assert rec is not None
    summary = await export(service, FROM, TO, tmp_path / "out.tar")
    assert summary.problems == [] and summary.mismatched == []
    sums, manifest = unpack((tmp_path / "out.tar").read_bytes(), tmp_path / "x")
    tables = {f"tables/{name}.jsonl" for name in summary.tables}
    assert {"tables/calls.jsonl", "tables/recordings.jsonl"} <= tables <= set(sums)
    assert sums[f"recordings/{rec.file}"] == rec.sha256
    indexed = [json.loads(line) for line in
               (tmp_path / "x/tables/recordings.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["sha256"] for r in indexed] == [rec.sha256]
    check = sha256sum_check(tmp_path / "x")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tables/recordings.jsonl: OK" in check.stdout
    assert manifest["mismatched"] == [] and manifest["files"] == len(sums)


async def test_a_recording_changed_since_indexing_fails_the_check_and_the_export(
        service: RecordingService, tmp_path: Path) -> None:
    good = await service.close_call(answered_call(service, "0312345678", T0), 1)
    bad = await service.close_call(answered_call(service, "0901234567",
                                                 T0 + timedelta(hours=1)), 1)
    assert good is not None and bad is not None
    corrupt(service.path_of(bad))
    member = f"recordings/{bad.file}"
    actual = sha256(service.path_of(bad).read_bytes()).hexdigest()
    expected = [{"id": bad.id, "member": member, "index_sha256": bad.sha256,
                 "file_sha256": actual}]

    summary = await export(service, FROM, TO, tmp_path / "out.tar")
    stream, stream_summary = await streamed(service)
    for n, (data, s) in enumerate([((tmp_path / "out.tar").read_bytes(), summary),
                                   (stream, stream_summary)]):
        assert s.mismatched == expected
        assert any(member in p for p in s.problems)
        sums, manifest = unpack(data, tmp_path / f"x{n}")
        assert manifest["mismatched"] == expected
        assert sums[member] == bad.sha256  # what the index vouched for, not the copy's
        check = sha256sum_check(tmp_path / f"x{n}")
        assert check.returncode != 0
        assert f"{member}: FAILED" in check.stdout
        assert f"recordings/{good.file}: OK" in check.stdout


async def test_a_file_that_shrinks_while_copied_leaves_the_tar_whole(
        service: RecordingService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await service.close_call(answered_call(service, "0312345678", T0), 1)
    second = await service.close_call(answered_call(service, "0901234567",
                                                    T0 + timedelta(hours=1)), 1)
    assert first is not None and second is not None
    # the size tarfile takes is larger than what the file then yields (cut meanwhile)
    taken = tarfile.TarFile.gettarinfo

    def larger(self: tarfile.TarFile, *args: Any, **kwargs: Any) -> tarfile.TarInfo:
        info = taken(self, *args, **kwargs)
        if info.name == f"recordings/{first.file}":
            info.size += 4096
        return info

    monkeypatch.setattr(tarfile.TarFile, "gettarinfo", larger)
    summary = await export(service, FROM, TO, tmp_path / "out.tar")
    assert [m["id"] for m in summary.mismatched] == [first.id]
    unpack((tmp_path / "out.tar").read_bytes(), tmp_path / "x")
    # the member after it is intact: nothing shifted
    assert sha256((tmp_path / "x" / "recordings" / second.file).read_bytes()
                  ).hexdigest() == second.sha256
    check = sha256sum_check(tmp_path / "x")
    assert f"recordings/{first.file}: FAILED" in check.stdout
    assert f"recordings/{second.file}: OK" in check.stdout and check.returncode != 0


def test_cli_export_exits_non_zero_naming_the_changed_file(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = offline_config(tmp_path)
    state = tmp_path / "state"
    settings = load_settings(config, state)
    assert settings.database_url == database_url

    async def record() -> Recording:
        db = Database(settings.database_url)
        try:
            await db.create_schema()
            svc = RecordingService.for_settings(db, tmp_path / "spool", settings)
            rec = await svc.close_call(answered_call(svc, "0312345678", T0), 1)
            assert rec is not None
            corrupt(svc.path_of(rec))
            return rec
        finally:
            await db.close()

    rec = asyncio.run(record())
    out = tmp_path / "handover.tar"
    code = main(["--config", str(config), "--state", str(state), "export", "--from",
                 FROM.isoformat(), "--to", TO.isoformat(), str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert f"recordings/{rec.file} differs from its checksum in the index" in captured.err
    result = json.loads(captured.out)
    assert [m["member"] for m in result["mismatched"]] == [f"recordings/{rec.file}"]
    unpack(out.read_bytes(), tmp_path / "x")
    assert sha256sum_check(tmp_path / "x").returncode != 0
