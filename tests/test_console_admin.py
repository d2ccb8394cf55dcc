"""Admin view actions: users' role and disable (their sessions end at once), dated closures
written into schedules.yaml and reloaded through the flow-set validation, the recordings'
retention and the handover export, and the TTS preview of an edited event."""

from __future__ import annotations

import asyncio
import io
import json
import re
import tarfile
from datetime import date
from pathlib import Path

import pytest
from aiohttp import WSMsgType

from console.auth import COOKIE
from ivr.closures import ClosureError, DatedClosure, add_closure, remove_closure
from madoguchi.engine import Engine
from recordings.config import RETENTION_FILE, saved_retention
from recordings.service import RecordingService
from tests.console_users import App, admin_session, login


async def _actions(engine: Engine) -> list[tuple[str, str, str]]:
    return [(r.actor, r.action, r.detail or "") for r in await engine.recordings.audit_rows()]


async def test_role_change_and_disable_end_the_users_sessions_at_once(app_client: App) -> None:
    client, engine, console = app_client
    s, headers = admin_session(console)
    status, _ = await login(client, "sv")
    assert status == 303
    sv_sessions = [x for x in console.sessions._by_id.values() if x.user == "sv"]
    assert len(sv_sessions) == 1
    sv_cookie = {"Cookie": f"{COOKIE}={sv_sessions[0].id}"}
    client.session.cookie_jar.clear()  # from here on each request names its session
    assert (await client.get("/api/kpi", headers=sv_cookie)).status == 200

    # without the CSRF token nothing changes
    resp = await client.post("/console/admin/users/sv", headers={"Cookie": headers["Cookie"]},
                             data={"action": "role", "role": "city_viewer"})
    assert resp.status == 403
    # an operator needs an extension: refused with the reason, nothing changed
    resp = await client.post("/console/admin/users/sv", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "role", "role": "operator"},
                             allow_redirects=False)
    assert resp.status == 400 and "extension" in await resp.text()
    assert (await client.get("/api/kpi", headers=sv_cookie)).status == 200

    ws = await client.ws_connect("/api/events", headers=sv_cookie)
    resp = await client.post("/console/admin/users/sv", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "role", "role": "city_viewer"},
                             allow_redirects=False)
    assert resp.status == 303
    # the wallboard's open socket ends with the session, not at its next request
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR), msg
    await ws.close()
    # the old session is gone: no page keeps the supervisor's rights
    assert (await client.get("/api/kpi", headers=sv_cookie)).status == 401
    users = {u.name: u for u in await console.users.all()}
    assert users["sv"].role == "city_viewer"
    client.session.cookie_jar.clear()
    status, _ = await login(client, "sv")
    assert status == 303
    client.session.cookie_jar.clear()
    new = next(x for x in console.sessions._by_id.values() if x.user == "sv")
    assert new.role == "city_viewer"

    resp = await client.post("/console/admin/users/sv", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "disable"},
                             allow_redirects=False)
    assert resp.status == 303
    assert console.sessions.get(new.id) is None
    client.session.cookie_jar.clear()
    status, _ = await login(client, "sv")
    assert status == 401  # a disabled user cannot log in
    resp = await client.post("/console/admin/users/sv", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "enable"},
                             allow_redirects=False)
    assert resp.status == 303
    status, _ = await login(client, "sv")
    assert status == 303
    client.session.cookie_jar.clear()

    # an admin cannot lock themself out
    resp = await client.post("/console/admin/users/admin",
                             headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "disable"})
    assert resp.status == 400 and "your own account" in await resp.text()
    resp = await client.post("/console/admin/users/nobody",
                             headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "disable"})
    assert resp.status == 400 and "no user nobody" in await resp.text()
    done = await _actions(engine)
    assert ("admin", "user-role", "sv role supervisor->city_viewer; 1 session(s) ended") in done
    assert ("admin", "user-disable", "sv; 1 session(s) ended") in done
    assert ("admin", "user-enable", "sv; 0 session(s) ended") in done
    page = await client.get("/console/admin", headers={"Cookie": headers["Cookie"]})
    assert 'id="user-sv"' in await page.text()


def test_closure_lines_are_added_and_removed_keeping_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    text = ("timezone: Asia/Tokyo\n# hours\nclosures:\n"
            "  - {name: 年末年始, from: \"12-29\", until: \"01-03\", services: [water]}\n"
            "# who may switch\nsupervisors: [\"7004\"]\n")
    added = add_closure(text, DatedClosure(date(2027, 5, 6), '臨時 "休"', ("water",)))
    assert added.splitlines()[4] == ('  - {name: "臨時 \\"休\\"", date: "2027-05-06", '
                                     'services: [water]}')
    assert added.splitlines()[5:] == ["# who may switch", 'supervisors: ["7004"]']
    path.write_text(added, encoding="utf-8")
    assert remove_closure(added, path, date(2027, 5, 6), "water", ["city", "water"]) == text
    with pytest.raises(ClosureError, match="no dated closure of city"):
        remove_closure(added, path, date(2027, 5, 6), "city", ["city", "water"])
    # an empty inline list becomes a block; a filled inline list is left to a person
    assert add_closure("closures: []\nsupervisors: []\n", DatedClosure(
        date(2027, 5, 8), "y", ())) == ('closures:\n  - {name: "y", date: "2027-05-08"}\n'
                                        'supervisors: []\n')
    path.write_text("closures: []\nsupervisors: []\n", encoding="utf-8")
    once = add_closure(path.read_text(encoding="utf-8"), DatedClosure(date(2027, 5, 8), "y", ()))
    path.write_text(once, encoding="utf-8")
    assert remove_closure(once, path, date(2027, 5, 8), "city", ["city"]) == \
        "closures: []\nsupervisors: []\n"
    with pytest.raises(ClosureError, match=r"schedules.yaml:1: 'closures' is written on one"):
        add_closure("closures: [{name: a, date: 2027-01-01}]\n",
                    DatedClosure(date(2027, 5, 8), "y", ()))
    # a closure of every service loses one service: the others stay closed
    everyone = add_closure("timezone: Asia/Tokyo\n", DatedClosure(date(2027, 5, 7), "x", ()))
    path.write_text(everyone, encoding="utf-8")
    assert remove_closure(everyone, path, date(2027, 5, 7), "city", ["city", "water"]) \
        .endswith('- {name: "x", date: "2027-05-07", services: [water]}\n')


async def test_dated_closure_added_and_removed_through_the_reload(app_client: App) -> None:
    client, engine, console = app_client
    _, headers = admin_session(console)
    path = engine.ivr_state.sources.config_dir / "schedules.yaml"
    before = path.read_text(encoding="utf-8")
    day = date(2030, 4, 2)  # a Tuesday: water is open on weekdays
    resp = await client.post("/api/closures", headers=headers,
                             json={"date": "2030-04-02", "name": "臨時休業", "service": "water"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert {"date": "2030-04-02", "name": "臨時休業", "services": ["water"]} in body["items"]
    sched = engine.ivr_state.current.schedules
    assert sched.is_city_closure(day, "water") and not sched.is_city_closure(day, "city")
    assert not sched.is_city_closure(date(2031, 4, 2), "water")  # that date only
    assert "臨時休業" in path.read_text(encoding="utf-8")
    resp = await client.post("/api/closures", headers=headers,
                             json={"date": "2030-04-02", "name": "again", "service": "water"})
    assert resp.status == 409
    for bad in ({"date": "2030-13-01", "name": "x", "service": "water"},
                {"date": "2030-04-03", "name": "", "service": "water"},
                {"date": "2030-04-03", "name": "a\u2028b", "service": "water"},
                {"date": "2030-04-03", "name": "x", "service": "nowhere"}):
        resp = await client.post("/api/closures", headers=headers, json=bad)
        assert resp.status == 400, bad

    # a broken file elsewhere in the set: refused with file:line, the YAML is left as it was
    flow = engine.ivr_state.sources.flow_dir / "city.yaml"
    good = flow.read_text(encoding="utf-8")
    flow.write_text(good.replace("queue: city", "queue: nowhere"), encoding="utf-8")
    kept = path.read_text(encoding="utf-8")
    resp = await client.post("/api/closures", headers=headers,
                             json={"date": "2030-04-03", "name": "x", "service": "city"})
    flow.write_text(good, encoding="utf-8")
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert any(re.search(r"city\.yaml:\d+:", e) for e in errors), errors
    assert path.read_text(encoding="utf-8") == kept
    assert not engine.ivr_state.current.schedules.is_city_closure(date(2030, 4, 3), "city")

    resp = await client.post("/api/closures/delete", headers=headers,
                             json={"date": "2030-04-02", "service": "water"})
    assert resp.status == 200
    assert path.read_text(encoding="utf-8") == before
    assert not engine.ivr_state.current.schedules.is_city_closure(day, "water")
    resp = await client.post("/api/closures/delete", headers=headers,
                             json={"date": "2030-04-02", "service": "water"})
    assert resp.status == 400
    done = await _actions(engine)
    assert ("admin", "setting", "POST /api/closures") in done
    assert ("admin", "setting", "POST /api/closures/delete") in done


async def test_retention_is_changed_persisted_and_never_below_60(app_client: App) -> None:
    client, engine, console = app_client
    s, headers = admin_session(console)
    cookie = {"Cookie": headers["Cookie"]}
    state = engine.ivr_state.settings.state_dir
    for bad, reason in (("59", "at least 60"), ("-5", "at least 60"), ("abc", "whole number")):
        resp = await client.post("/console/admin/retention", headers=cookie,
                                 data={"csrf": s.csrf, "days": bad})
        assert resp.status == 400 and reason in await resp.text()
    assert engine.recordings.settings.retention_days == 62
    assert not (state / RETENTION_FILE).exists()
    resp = await client.post("/console/admin/retention", headers=cookie,
                             data={"csrf": s.csrf, "days": "90"}, allow_redirects=False)
    assert resp.status == 303
    assert engine.recordings.settings.retention_days == 90
    assert saved_retention(state) == 90
    # a restart keeps it
    again = RecordingService.for_settings(engine.db, state / "spool", engine.ivr_state.settings)
    assert again.settings.retention_days == 90
    assert ("admin", "setting", "retention_days 62 -> 90") in await _actions(engine)
    page = await client.get("/console/admin", headers=cookie)
    assert 'value="90"' in await page.text()


async def test_export_streams_the_handover_tar_and_audits(app_client: App) -> None:
    client, engine, console = app_client
    s, headers = admin_session(console)
    cookie = {"Cookie": headers["Cookie"]}
    resp = await client.post("/console/admin/export", headers=cookie,
                             data={"csrf": s.csrf, "from": "2026-02-01", "to": "2026-01-01"})
    assert resp.status == 400 and "on or after" in await resp.text()
    resp = await client.post("/console/admin/export", headers=cookie,
                             data={"csrf": s.csrf, "from": "2026-01-01", "to": "2026-01-31"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/x-tar"
    assert 'filename="madoguchi-export-2026-01-01-2026-01-31.tar"' in \
        resp.headers["Content-Disposition"]
    data = await resp.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.loads(manifest_file.read())
    assert "SHA256SUMS" in names and manifest["from"].startswith("2026-01-01T00:00:00+09:00")
    # streamed as it is made: chunked, nothing staged in the state folder
    assert "Content-Length" not in resp.headers
    state = engine.ivr_state.settings.state_dir
    assert not [p for p in state.rglob("*") if p.name.endswith((".tar", ".tmp"))]
    done = await _actions(engine)
    assert any((actor, action) == ("admin", "export")
               and detail.startswith("2026-01-01..2026-01-31: 0 recordings")
               for actor, action, detail in done), done


async def test_tts_preview_renders_the_edited_event(app_client: App) -> None:
    client, engine, console = app_client
    _, headers = admin_session(console)
    event = {"id": "preview", "date": "2030-05-01", "time": "10:00", "status": "held",
             "title": {"ja": "防災訓練", "en": "the disaster drill"},
             "venue": {"ja": "市役所", "en": "the city hall"}}
    resp = await client.post("/api/tts/preview", headers=headers,
                             json={"lang": "fr", "event": event})
    assert resp.status == 400
    resp = await client.post("/api/tts/preview", headers=headers,
                             json={"lang": "en", "event": {**event, "status": "nope"}})
    assert resp.status == 400
    # espeak-ng is a dependency (`make deps`): without it this is a failure, not a skip
    assert engine.ivr_state.tts.available("en"), "English text-to-speech (espeak-ng) missing"
    resp = await client.post("/api/tts/preview", headers=headers,
                             json={"lang": "en", "event": event})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert "disaster drill" in body["text"]
    audio = await client.get(body["audio_url"], headers={"Cookie": headers["Cookie"]})
    assert audio.status == 200 and (await audio.read())[:4] == b"RIFF"
    assert (await client.get("/api/tts/en/../../x", headers=headers)).status == 404
    assert (await client.get("/api/tts/en/" + "0" * 24, headers=headers)).status == 404
    assert "preview" not in [e.id for e in engine.ivr_state.board.events]  # nothing saved


async def test_the_admin_page_refuses_an_extension_no_operator_has(app_client: App) -> None:
    client, _engine, console = app_client
    s, headers = admin_session(console)
    resp = await client.post("/console/admin/users", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "name": "ghost", "role": "operator",
                                   "password": "a long password 123", "agent_id": "7999"},
                             allow_redirects=False)
    assert resp.status == 400 and "7999" in await resp.text()
    assert "ghost" not in [u.name for u in await console.users.all()]
    resp = await client.post("/console/admin/users/sv", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "action": "role", "role": "operator",
                                   "agent_id": "7999"}, allow_redirects=False)
    assert resp.status == 400 and "no operator with extension 7999" in await resp.text()
    resp = await client.post("/console/admin/users", headers={"Cookie": headers["Cookie"]},
                             data={"csrf": s.csrf, "name": "ok-op", "role": "operator",
                                   "password": "a long password 123", "agent_id": "7002"},
                             allow_redirects=False)
    assert resp.status == 303
