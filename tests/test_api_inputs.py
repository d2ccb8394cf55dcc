"""What the HTTP layer accepts before any handler or database sees it: numbers in ASCII
digits only (Unicode digits answer 4xx, never a 500 or a dial string), no control
character in a path or a query parameter, no NUL in JSON strings, and body sizes: 64 KiB
for JSON and forms, the documented 8 MiB for the CSV import, both refused with 413."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from console.auth import COOKIE, Console, ConsoleConfig
from console.directory import MAX_CSV_BYTES
from console.http import CONSOLE
from console.models import ConsoleUser
from core.errors import JSON_LIMIT, ascii_decimal, ascii_digits
from core.settings import TransferSettings
from core.transfers import TransferRefused, resolve
from harness.offline_engine import offline_engine
from madoguchi.engine import Engine
from madoguchi.web import FORM_OVERHEAD, make_app

App = tuple[TestClient, Engine, Console]
# superscript two, full-width 12, Arabic-Indic 12, Devanagari 12, mixed
UNICODE_DIGITS = ("²", "１２", "١٢", "१२", "1²")


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[App]:
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine, ConsoleConfig())))
    await client.start_server()
    try:
        yield client, engine, client.app[CONSOLE]
    finally:
        await client.close()


def _token(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {engine.secrets.api_token}"}


def _admin(console: Console) -> dict[str, str]:
    s = console.sessions.create(ConsoleUser(name="admin", role="admin", password_hash="",
                                            agent_id=None, disabled=False,
                                            created_at=datetime.now(UTC)))
    return {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}


def test_a_413_is_a_json_error_too() -> None:
    from core.errors import json_error

    assert json_error(413, "too_large", "over").status == 413


def test_the_helpers_take_ascii_digits_only() -> None:
    assert ascii_digits("0123456789") and ascii_decimal("2.5") and ascii_decimal("30")
    for bad in (*UNICODE_DIGITS, "", " 1", "1\n", "+1", "-1", "1_0", "1e3"):
        assert not ascii_digits(bad), bad
    for bad in (*UNICODE_DIGITS, "", "nan", "inf", "1e3", "1_0", ".5", "5.", "-1", " 1"):
        assert not ascii_decimal(bad), bad


# every route with a numeric query parameter: (route, parameter, the other parameters)
NUMERIC_QUERIES = [
    ("/api/recordings", "limit"), ("/api/recordings", "offset"),
    ("/api/recordings", "agent"), ("/api/recordings", "caller"),
    ("/api/recordings", "caller_contains"), ("/api/recordings", "min_duration"),
    ("/api/recordings", "max_duration"), ("/api/recordings/1/peaks", "buckets"),
    ("/api/audit", "recording"), ("/api/audit", "limit"),
    ("/api/kpi", "short_abandon_s"), ("/api/kpi/staffing", "max_occupancy"),
    ("/api/kpi/staffing", "shrinkage"),
]
# dates and months: digits inside ISO 8601
DATE_QUERIES = [("/api/operator-stats", "date", "{}-01-01"), ("/api/kpi", "from", "{}-11"),
                ("/api/kpi/staffing", "to", "{}-11-02"), ("/api/interactions", "from", "{}-11"),
                ("/api/recordings", "from", "{}-01-01T00:00:00+09:00")]
# numeric path parameters: a non-ASCII id names no resource
NUMERIC_PATHS = ["/api/recordings/{}", "/api/recordings/{}/audio",
                 "/api/recordings/{}/peaks"]


async def test_unicode_digits_in_query_parameters_are_refused(app_client: App) -> None:
    client, engine, _ = app_client
    for route, name in NUMERIC_QUERIES:
        for digits in UNICODE_DIGITS:
            resp = await client.get(f"{route}?{name}={quote(digits)}", headers=_token(engine))
            body = await resp.json()
            assert resp.status == 400, (route, name, digits, resp.status)
            assert body["error"] in ("bad_parameter", "bad_query"), body
            assert name in body["message"], body
    for route, name, template in DATE_QUERIES:
        for digits in ("２０２６", "٢٠٢٦"):
            resp = await client.get(f"{route}?{name}={quote(template.format(digits))}",
                                    headers=_token(engine))
            assert resp.status == 400, (route, name, resp.status)
            assert "error" in await resp.json()
    # ASCII digits still work on the same routes
    for route, name in NUMERIC_QUERIES:
        value = {"buckets": "100", "max_occupancy": "0.85", "shrinkage": "0.3"}.get(name, "12")
        resp = await client.get(f"{route}?{name}={value}", headers=_token(engine))
        # 404: no recording 1 for the waveform; everything else answers
        assert resp.status == (404 if "peaks" in route else 200), (route, name, resp.status)


async def test_unicode_digits_in_path_ids_name_nothing(app_client: App) -> None:
    client, engine, _ = app_client
    for template in NUMERIC_PATHS:
        for digits in UNICODE_DIGITS:
            resp = await client.get(template.format(quote(digits)), headers=_token(engine))
            assert resp.status == 404, (template, digits, resp.status)
            assert (await resp.json())["error"] == "not_found"
    for digits in UNICODE_DIGITS:
        for action in ("state", "monitor"):
            resp = await client.post(f"/api/agents/{quote(digits)}/{action}",
                                     json={"action": "login", "mode": "listen",
                                           "supervisor": "7002"}, headers=_token(engine))
            assert resp.status in (400, 404), (action, digits, resp.status)


async def test_unicode_digits_in_forms_are_refused(app_client: App) -> None:
    client, _, console = app_client
    admin = _admin(console)
    for digits in UNICODE_DIGITS:
        resp = await client.post("/console/admin/retention", data={"days": digits},
                                 headers=admin)
        assert resp.status == 400 and "whole number" in await resp.text()
        resp = await client.post("/console/admin/users", headers=admin, data={
            "name": "tanaka", "role": "operator", "password": "correct horse battery",
            "agent_id": digits})
        assert resp.status == 400 and "digits 0-9" in await resp.text()
        resp = await client.get(f"/console/desk?agent={quote(digits)}", headers=admin)
        assert resp.status == 200 and digits not in await resp.text()
    assert [u.name for u in await console.users.all()] == []


def test_transfer_targets_take_ascii_digits_only() -> None:
    settings = TransferSettings(pbx_host="127.0.0.1", pbx_port=5060, dial_in_prefix="81",
                                extension_length=(4, 4), external_prefixes=("03",))
    assert resolve(settings, "2101").dial == "PJSIP/812101@citypbx"
    for target in ("２１０１", "٢١٠１", "21²1", "21\n01"):
        with pytest.raises(TransferRefused, match="1-15 digits"):
            resolve(settings, target)


async def test_control_characters_in_paths_and_queries_answer_400(app_client: App) -> None:
    client, engine, console = app_client
    queries = ["/api/recordings?date=%00", "/api/kpi?service=%00",
               "/api/recordings?caller=03%0A1", "/api/interactions?service=a%7Fb",
               "/api/directory?q=%09x", "/api/audit?%00=1", "/api/faq?q=a%1Fb"]
    for path in queries:
        for headers in (_token(engine), _admin(console), {}):
            resp = await client.get(path, headers=headers)
            body = await resp.json()
            assert resp.status == 400, (path, resp.status)
            assert body["error"] == "control_character" and "query parameter" in body["message"]
    for path in ("/api/recordings/%00/audio", "/api/schedules/city%00",
                 "/console/admin/users/a%0Ab", "/api/tts/ja/" + "0" * 24 + "%0A"):
        resp = await client.get(path, headers=_token(engine))
        assert resp.status == 400, (path, resp.status)
        assert (await resp.json())["message"] == "the path contains a control character"
    # text that merely looks unusual still passes
    resp = await client.get("/api/kpi?service=%E5%B8%82", headers=_token(engine))
    assert resp.status == 200


async def test_nul_in_json_strings_answers_400(app_client: App) -> None:
    client, engine, _ = app_client
    bodies = [("/api/interactions", {"call_id": "c1\x00", "topic": "x",
                                     "outcome_class": "完了"}),
              ("/api/interactions", {"call_id": "c1", "topic": "x", "outcome_class": "完了",
                                     "faq_refs": ["a", "b\x00"]}),
              ("/api/board/events", {"id": "x", "texts": {"ja\x00": "y"}}),
              ("/api/closures", {"date": "2026-12-29", "name": "年末\x00",
                                 "service": "*"}),
              ("/api/schedules/city/override", {"mode": "normal", "message": {"ja": "\x00"}})]
    for route, body in bodies:
        resp = await client.post(route, json=body, headers=_token(engine))
        answer = await resp.json()
        assert resp.status == 400, (route, resp.status)
        assert answer["error"] == "bad_json" and "NUL" in answer["message"]
    # a line break in free text is fine: it is NUL that the database refuses
    resp = await client.post("/api/interactions", json={
        "call_id": "nope", "topic": "x", "outcome_class": "完了", "text": "a\nb"},
        headers=_token(engine))
    assert resp.status == 404


async def test_json_and_form_bodies_over_the_limit_answer_413(app_client: App) -> None:
    client, engine, console = app_client
    big = {"call_id": "c1", "topic": "x", "outcome_class": "完了",
           "text": "x" * JSON_LIMIT}
    resp = await client.post("/api/interactions", json=big, headers=_token(engine))
    body = await resp.json()
    assert resp.status == 413 and body["error"] == "too_large"
    assert body["message"] == "the request body is over 64 KiB"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
        yield b'{"call_id": "c1", "text": "'
        for _ in range(JSON_LIMIT // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    resp = await client.post("/api/interactions", data=chunks(), headers={
        **_token(engine), "Content-Type": "application/json"})
    assert resp.status == 413 and (await resp.json())["error"] == "too_large"
    # forms too, before any password is hashed
    resp = await client.post("/console/login", data={"name": "x" * JSON_LIMIT,
                                                     "password": "p", "csrf": "t"})
    assert resp.status == 413 and (await resp.json())["error"] == "too_large"
    resp = await client.post("/console/admin/users", headers=_admin(console),
                             data={"name": "x" * JSON_LIMIT})
    assert resp.status == 413
    # a route with a smaller limit of its own
    resp = await client.post("/api/closures", json={"name": "x" * 20_000},
                             headers=_token(engine))
    assert resp.status == 413 and "16 KiB" in (await resp.json())["message"]
    # and under the limit the body is read as before
    resp = await client.post("/api/interactions", json={**big, "text": "x" * 4000},
                             headers=_token(engine))
    assert resp.status == 404  # no call c1: the body was accepted and parsed


def _csv(size: int) -> bytes:
    """A valid staff directory CSV of exactly `size` bytes (under MAX_ROWS rows)."""
    head, prefix = b"section,name,extension,note\n", b"kacho,yamada,2101,"
    row = prefix + b"n" * 480 + b"\n"
    count, rest = divmod(size - len(head), len(row))
    data = head + row * (count - 1) + prefix + b"n" * (480 + rest) + b"\n"
    assert len(data) == size
    return data


async def _upload(client: TestClient, headers: dict[str, str], csv: bytes) -> tuple[int,
                                                                                     str]:
    form = FormData()
    form.add_field("kind", "directory")
    form.add_field("file", io.BytesIO(csv), filename="staff.csv", content_type="text/csv")
    resp = await client.post("/console/admin/import", data=form, headers=headers,
                             allow_redirects=False)
    return resp.status, await resp.text()


async def test_the_csv_import_takes_files_up_to_its_documented_limit(app_client: App) -> None:
    client, _, console = app_client
    admin = _admin(console)
    status, _ = await _upload(client, admin, _csv(MAX_CSV_BYTES))
    assert status == 303
    resp = await client.get("/api/directory?q=yamada", headers=admin)
    assert resp.status == 200 and len((await resp.json())["items"]) == 20
    status, text = await _upload(client, admin, _csv(MAX_CSV_BYTES + 1))
    assert status == 413 and "the CSV is over 8 MiB" in text
    # far over: refused from its Content-Length, before the body is read
    status, text = await _upload(client, admin, b"x" * (MAX_CSV_BYTES + FORM_OVERHEAD))
    assert status == 413 and '"the CSV file is over 8 MiB"' in text
