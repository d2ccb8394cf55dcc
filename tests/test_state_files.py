"""Damaged files in the state folder (secrets.json, ivr/events.json, ivr/overrides.json, the
saved retention): a one-line error naming the file and what is wrong, the CLI exits non-zero
without a traceback, and a damaged secrets.json is never replaced by new secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from core.secrets import fastagi_secret_watch, load_or_create, rotate_fastagi_secret
from core.statefile import read_json
from core.yamlconf import ConfigError
from harness.offline_engine import offline_config
from ivr.schedule import OverrideMode, OverrideStore
from madoguchi.cli import main
from recordings.config import RETENTION_FILE, saved_retention

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
AGENTS = ["7001", "7002"]
GOOD_OVERRIDE = {"service": "city", "mode": "closed", "set_at": "2026-11-25T02:00:00+00:00",
                 "set_by": "api", "until": None, "message": {}}


def _write(path: Path, content: str | bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    return data


# ---- the reader every state file goes through ---------------------------------------------

@pytest.mark.parametrize(("content", "reason"), [
    ('{"a": 1,\n  "b": }', ":2:8: invalid JSON: Expecting value"),
    (b'{"a": "x"}\n{"b": "\xff"}', ":2:8: invalid UTF-8 (byte 0xff)"),
    ("", ":1:1: invalid JSON: Expecting value"),
    ("[" * 100_000, ": invalid JSON: nested too deeply"),
    ("1" * 5000, ": invalid JSON: Exceeds the limit"),
])
def test_unreadable_json_names_the_file_and_where(tmp_path: Path, content: str | bytes,
                                                  reason: str) -> None:
    path = tmp_path / "x.json"
    _write(path, content)
    with pytest.raises(ConfigError) as err:
        read_json(path)
    assert str(err.value).startswith(f"{path}:")
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_a_folder_where_the_file_should_be_is_reported(tmp_path: Path) -> None:
    (tmp_path / "x.json").mkdir()
    with pytest.raises(ConfigError, match=r"x\.json: cannot read: Is a directory"):
        read_json(tmp_path / "x.json")


# ---- secrets.json ------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "reason"), [
    ('{"api_token": ', "invalid JSON"),
    ("[]", "must hold a JSON object, not list"),
    ("null", "must hold a JSON object, not NoneType"),
    ('{"api_token": 5}', "'api_token' must be a non-empty string"),
    ('{"ami_secret": ""}', "'ami_secret' must be a non-empty string"),
    ('{"metrics_token": ["x"]}', "'metrics_token' must be a non-empty string"),
    ('{"fastagi_secret": "short"}', "'fastagi_secret' must be"),
    ('{"fastagi_secret": "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"}', "'fastagi_secret' must be"),
    ('{"sip_passwords": []}', "'sip_passwords' must map extensions to non-empty strings"),
    ('{"sip_passwords": {"7001": 5}}', "'sip_passwords' must map extensions"),
    (b'{"api_token": "\xc3"}', "invalid UTF-8"),
])
def test_a_damaged_secrets_file_is_reported_and_kept(tmp_path: Path, content: str | bytes,
                                                     reason: str) -> None:
    path = tmp_path / "secrets.json"
    before = _write(path, content)
    with pytest.raises(ConfigError) as err:
        load_or_create(tmp_path, AGENTS)
    assert str(err.value).startswith(f"{path}")
    assert reason in str(err.value)
    with pytest.raises(ConfigError):
        rotate_fastagi_secret(tmp_path)
    assert path.read_bytes() == before  # never silently replaced
    assert not list(tmp_path.glob("secrets.tmp"))


def test_missing_entries_are_still_generated_and_the_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    _write(path, json.dumps({"api_token": "kept-token", "sip_passwords": {"7001": "pw1"},
                             "note": "left alone"}))
    secrets = load_or_create(tmp_path, AGENTS)
    assert secrets.api_token == "kept-token" and secrets.sip_passwords["7001"] == "pw1"
    assert secrets.sip_passwords["7002"] and secrets.metrics_token and secrets.fastagi_secret
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["api_token"] == "kept-token" and data["note"] == "left alone"
    assert load_or_create(tmp_path, AGENTS) == secrets


def test_a_damaged_secrets_file_does_not_change_the_running_fastagi_secret(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_or_create(tmp_path, AGENTS)
    watch = fastagi_secret_watch(tmp_path)
    path = tmp_path / "secrets.json"
    good = path.read_bytes()
    _write(path, good[:-5])  # cut short
    with caplog.at_level(logging.WARNING, logger="core.secrets"):
        assert watch() is None
    assert f"FastAGI secret not reloaded: {path}" in caplog.text
    _write(path, good)
    assert watch() == json.loads(good)["fastagi_secret"]


@pytest.mark.parametrize("command", [["secrets"], ["secrets", "--rotate"], ["check"]])
def test_the_cli_stops_on_a_damaged_secrets_file_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    config, state = offline_config(tmp_path), tmp_path / "state"
    path = state / "secrets.json"
    before = _write(path, '{"api_token": "x", "sip_passwords": {"7001": null}}')
    assert main(["--config", str(config), "--state", str(state), *command]) == 2
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        f"madoguchi: invalid configuration: {path}: 'sip_passwords' must map extensions to "
        "non-empty strings; fix it, or delete the entry to have a new one generated"]
    assert "Traceback" not in out.out + out.err
    assert path.read_bytes() == before


# ---- ivr/events.json and ivr/overrides.json: checked when the engine starts ----------------

def _start_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                  monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`madoguchi run` on the offline config; returns stderr's lines. Serving is not
    expected: the start must stop before."""
    def serve(app: web.Application, *_args: Any, **_kwargs: Any) -> None:
        async def start_up() -> None:  # what run_app does before it listens: start the engine
            runner = web.AppRunner(app)
            await runner.setup()
            await runner.cleanup()

        asyncio.run(start_up())
        raise AssertionError("the engine started serving")

    monkeypatch.setattr("madoguchi.cli.web.run_app", serve)
    config = tmp_path / "config"
    if not config.exists():
        offline_config(tmp_path)
    assert main(["--config", str(config), "--state", str(tmp_path / "state"), "run"]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return out.err.splitlines()


@pytest.mark.parametrize(("content", "reason"), [
    ("[{", ":1:3: invalid JSON: Expecting property name enclosed in double quotes"),
    ('{"events": []}', ": must hold a JSON list of events"),
    ("[5]", ": event 1: an event must be an object"),
    ('[{"id": "fair", "date": "2026-12-01", "status": "no-such-status"}]',
     ": event 1: unknown status 'no-such-status'"),
    ('[{"id": "Bad Id"}]', ": event 1: 'id' must be 1-48"),
    ('[{"id": "fair", "date": "2026-12-01", "status": "held", "title": "x", "venue": "y"},'
     ' {"id": "fair", "date": "2026-12-02", "status": "held", "title": "x", "venue": "y"}]',
     ": event 2: id 'fair' appears twice"),
    ("[" + ",".join(["{}"] * 101) + "]", ": more than 100 events"),
])
def test_a_damaged_event_board_stops_the_start_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        content: str, reason: str) -> None:
    path = tmp_path / "state" / "ivr" / "events.json"
    before = _write(path, content)
    err = _start_engine(tmp_path, capsys, monkeypatch)
    assert len(err) == 1 and err[0].startswith(f"madoguchi: invalid configuration: {path}")
    assert reason in err[0], err
    assert path.read_bytes() == before


def _override(**change: Any) -> str:
    return json.dumps([{**GOOD_OVERRIDE, **change}])


@pytest.mark.parametrize(("content", "reason"), [
    ('[{"service": "city"', "invalid JSON"),
    ('{"city": "closed"}', "must hold a JSON list of overrides"),
    ("[null]", "override 1 must be a JSON object"),
    (_override(service=5), "override 1: 'service' must be a non-empty string"),
    (_override(set_by=None), "override 1: 'set_by' must be a non-empty string"),
    (_override(mode="party"), "override 1: 'mode' must be one of normal, closed, emergency, "
     "forward, open, got 'party'"),
    # a naive time cannot be compared with the clock: it would fail on the first call
    (_override(set_at="2026-11-25T02:00:00"), "override 1: 'set_at' must be an ISO 8601 time "
     "with a UTC offset"),
    (_override(until="soon"), "override 1: 'until' must be an ISO 8601 time"),
    (_override(until=5), "override 1: 'until' must be an ISO 8601 time"),
    (_override(message=["closed today"]), "override 1: 'message' must map languages"),
    (_override(message={"fr": "fermé"}), "override 1: 'message' must map languages"),
    (_override(message={"ja": 5}), "override 1: 'message' must map languages"),
])
def test_a_damaged_overrides_file_is_reported_and_kept(
        tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "overrides.json"
    before = _write(path, content)
    with pytest.raises(ConfigError) as err:
        OverrideStore(path, lambda: NOW)
    assert str(err.value).startswith(f"{path}") and reason in str(err.value)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_the_engine_does_not_start_on_a_damaged_overrides_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state" / "ivr" / "overrides.json"
    before = _write(path, _override(mode=None))
    err = _start_engine(tmp_path, capsys, monkeypatch)
    assert err == [f"madoguchi: invalid configuration: {path}: override 1: 'mode' must be one "
                   "of normal, closed, emergency, forward, open, got None"]
    assert path.read_bytes() == before


def test_a_good_overrides_file_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    _write(path, _override(until="2026-11-25T04:00:00+00:00", message={"ja": "本日休業"}))
    ov = OverrideStore(path, lambda: NOW).get("city")
    assert ov is not None and ov.mode.value == "closed" and ov.message == {"ja": "本日休業"}
    assert ov.until == datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def test_the_override_history_skips_a_line_cut_short(tmp_path: Path) -> None:
    store = OverrideStore(tmp_path / "overrides.json", lambda: NOW)
    store.set("city", OverrideMode.CLOSED, "a")
    with store.log_file.open("a", encoding="utf-8") as fh:
        fh.write('{"service": "water", "mo\n[1, 2]\n')
    store.set("city", OverrideMode.NORMAL, "b")
    assert [(h["mode"], h["by"]) for h in store.history()] == [("closed", "a"), ("normal", "b")]


# ---- the retention saved from the admin page ---------------------------------------------

@pytest.mark.parametrize(("content", "reason"), [
    (b'{"retention_days": \xff}', "invalid UTF-8"),
    ("[" * 100_000, "nested too deeply"),
    ('{"retention_days": "90"}', "unreadable retention (not an integer)"),
    ("[90]", "unreadable retention"),
])
def test_a_damaged_retention_file_stops_the_start(tmp_path: Path, content: str | bytes,
                                                  reason: str) -> None:
    path = tmp_path / RETENTION_FILE
    _write(path, content)
    with pytest.raises(ConfigError) as err:
        saved_retention(tmp_path)
    assert str(err.value).startswith(f"{path}") and reason in str(err.value)

