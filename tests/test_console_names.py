"""What a person reads in the console: names instead of ids (services, queues, topics, flow
nodes, languages, operators, interaction classes and kinds), Japanese first; dates in the
city's time and the page's language; every error id in words; the operators' allowed actions
on the desk; the audit log described; the favicon; and the call event the wallboard follows."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from acd.agents import TRANSITIONS, AgentState
from acd.service import OPERATOR_ACTIONS
from console.audit_text import action_text, detail_text
from console.dates import day_text, time_text
from console.http import NAMES
from console.i18n import AUDIT_ACTIONS, CLASS_LABELS, KIND_LABELS, LANGS, TEXTS, texts
from console.labels import LabelFile, Labels, load_labels
from console.names import build_names
from core.clock import CITY_TZ
from core.identity import Actor
from core.interactions import OtherKind, OutcomeClass
from core.settings import load_settings
from core.yamlconf import ConfigError
from harness.offline_engine import offline_config
from tests.console_users import App, admin_session

ROOT = Path(__file__).resolve().parents[1]


def _script(html: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>',
                      html, re.S)
    assert found is not None, element_id
    return json.loads(found.group(1))


async def test_pages_carry_names_in_the_pages_language(app_client: App) -> None:
    client, _, console = app_client
    _, headers = admin_session(console)
    page = await (await client.get("/console/desk?agent=7001", headers=headers)).text()
    names = _script(page, "names")
    assert names["services"] == {"city": "市コールセンター", "water": "上下水道局代表",
                                 "events": "イベント案内"}
    assert names["queues"] == {"city": "市コールセンター受付"}
    assert names["topics"]["general"] == "一般のお問い合わせ"
    assert names["nodes"]["choose-language"] == "言語選択"
    assert names["languages"] == {"ja": "日本語", "en": "英語"}
    assert names["agents"]["7001"] == "オペレーター1"
    assert names["kinds"] == {"city_staff": "市職員", "sales": "営業",
                              "wrong_number": "間違い電話", "one_ring": "ワン切り"}
    assert set(names["classes"]) == {c.value for c in OutcomeClass}
    # the desk: the operator by name, the record form's choices in words, topics offered
    assert 'id="agent-name">オペレーター1</span>' in page
    assert '<option value="one_ring">ワン切り</option>' in page
    assert '<option value="転送F">転送F(FAQの指示で転送)</option>' in page
    assert not re.search(r">\s*(city_staff|one_ring|wrong_number|sales)\s*<", page)
    assert '<option value="一般のお問い合わせ">' in page
    # the directory and FAQ results have headers
    assert "<th>所属</th><th>氏名</th>" in page and "<th>質問</th>" in page

    page = await (await client.get("/console/viewer", headers=headers)).text()
    # the city viewer's service filter is a list of names, and so is the operator filter
    assert re.search(r'<select name="service" id="service">.*'
                     r'<option value="city">市コールセンター</option>', page, re.S)
    assert '<option value="7002">オペレーター2 (7002)</option>' in page
    assert 'name="service" id="service" size' not in page

    page = await (await client.get("/console/admin", headers=headers)).text()
    assert '<td>上下水道局代表</td>' in page and "<td>water</td>" not in page
    assert '<option value="events">イベント案内</option>' in page

    page = await (await client.get("/console/wallboard?lang=en", headers=headers)).text()
    names = _script(page, "names")
    assert names["services"]["city"] == "City Call Center"
    assert names["queues"]["city"] == "City call center line"
    assert names["languages"] == {"ja": "Japanese", "en": "English"}
    assert names["kinds"]["city_staff"] == "City staff"
    assert names["agents"]["7001"] == "オペレーター1"  # a person's name is not translated

    # no names before a login
    page = await (await client.get("/console/login")).text()
    assert _script(page, "names") == {}


async def test_a_queue_without_a_label_is_named_by_its_services(app_client: App) -> None:
    client, _, console = app_client
    labels = console_labels(client)
    (labels.path).write_text("services: {city: {en: City}}\n", encoding="utf-8")
    _, headers = admin_session(console)
    page = await (await client.get("/console/wallboard", headers=headers)).text()
    names = _script(page, "names")
    assert names["queues"]["city"] == "市コールセンター・上下水道局代表・イベント案内"
    assert names["topics"]["general"] == "general"  # no label: shown as it is


def console_labels(client: Any) -> LabelFile:
    book = client.app[NAMES]
    assert isinstance(book.labels, LabelFile)
    return book.labels


async def test_the_shipped_labels_name_every_topic_and_node_of_the_flows(
        app_client: App) -> None:
    client, _, _ = app_client
    book = client.app[NAMES]
    labels = book.labels.current()
    center = book.ports.center
    assert center.topics() == ["general", "water"]
    for section, ids in (("topics", center.topics()), ("nodes", center.flow_nodes())):
        for key in ids:
            for lang in LANGS:
                assert labels.get(section, key, lang), (section, key, lang)
    for service in book.ports.settings.services:
        assert labels.get("services", service.id, "en"), service.id


def test_labels_file_is_checked_with_file_and_line(tmp_path: Path) -> None:
    config = offline_config(tmp_path)
    settings = load_settings(config, tmp_path / "state")
    services, queues = [s.id for s in settings.services], [q.id for q in settings.queues]
    path = tmp_path / "labels.yaml"
    assert load_labels(path, services, queues).sections == {}  # no file, no labels
    path.write_text("services:\n  city: {en: City}\n  sewer: {en: Sewer}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels.yaml:3:\d+: unknown service 'sewer'"):
        load_labels(path, services, queues)
    path.write_text("topics:\n  general: {fr: Général}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown field 'fr'"):
        load_labels(path, services, queues)
    path.write_text("nodes:\n  greeting: {ja: " + "あ" * 81 + "}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="at most 80"):
        load_labels(path, services, queues)
    path.write_text("colours: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown field 'colours'"):
        load_labels(path, services, queues)


def test_labels_are_read_again_when_changed_and_a_broken_edit_keeps_the_last(
        tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("topics:\n  general: {ja: 一般}\n", encoding="utf-8")
    book = LabelFile(path, ["city"], ["city"])
    assert book.current().get("topics", "general", "ja") == "一般"
    path.write_text("topics:\n  general: {ja: 一般のお問い合わせ, en: General}\n",
                    encoding="utf-8")
    assert book.current().get("topics", "general", "en") == "General"
    path.write_text("topics: [broken\n", encoding="utf-8")
    assert book.current().get("topics", "general", "en") == "General"


def test_dates_are_in_the_citys_time_and_the_pages_language() -> None:
    at = datetime(2026, 12, 1, 19, 23, tzinfo=UTC)  # 2 December, 4:23 in Tokyo
    assert time_text(at, "ja") == "2026年12月2日 4:23"
    assert time_text(at, "en") == "2 December 2026, 04:23"
    assert time_text(at.astimezone(CITY_TZ), "ja") == "2026年12月2日 4:23"
    assert day_text(date(2026, 1, 9), "ja") == "2026年1月9日"
    assert day_text(date(2026, 1, 9), "en") == "9 January 2026"


def _error_ids() -> set[str]:
    """Every error id the API can answer with: the ApiError classes' and the literal ones."""
    ids: set[str] = set()
    patterns = [r'error_id\s*=\s*"([a-z_]+)"', r'json_error\(\s*\d{3},\s*"([a-z_]+)"',
                r'Error\(\s*\d{3},\s*"([a-z_]+)"', r'"error":\s*"([a-z_]+)"']
    for package in ("acd", "console", "core", "ivr", "kpi", "madoguchi", "recordings",
                    "survey", "fax"):
        for path in (ROOT / package).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in patterns:
                ids.update(re.findall(pattern, text))
    return ids


def test_every_error_id_has_a_message_in_both_languages() -> None:
    ids = _error_ids()
    # the scan finds the ids of every feature (a sanity check of the scan itself)
    assert {"illegal_transition", "exists", "invalid_flows", "not_on_call", "bad_query",
            "interaction_exists", "conversion_unavailable", "csrf"} <= ids
    missing = sorted(i for i in ids if f"err_{i}" not in TEXTS)
    assert not missing, missing
    for i in ids:
        ja, en = TEXTS[f"err_{i}"]
        assert ja and en and ja != en, i
    # console.js shows these words, and the server's message only for an unknown id
    js = (ROOT / "console" / "static" / "console.js").read_text(encoding="utf-8")
    assert 'const known = T["err_" + r.data.error];' in js


def test_one_term_per_kpi() -> None:
    words = " ".join(ja for ja, _ in TEXTS.values())
    assert "一次完結率" not in words
    assert texts("ja")["kpi_fcr"] == "一次解決率"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "一次完結率" not in readme


async def test_the_desk_offers_only_the_actions_the_transition_table_allows(
        app_client: App) -> None:
    client, _, console = app_client
    _, headers = admin_session(console)
    page = await (await client.get("/console/desk?agent=7001", headers=headers)).text()
    allowed = _script(page, "transitions")
    assert allowed == {
        "logged_out": ["login"], "available": ["logout", "away"], "ringing": [],
        "on_call": [], "wrap_up": ["logout", "away", "end_wrap_up"],
        "away": ["logout", "away", "back"]}
    # the same as the ACD's own table, whatever it becomes
    for state in AgentState:
        assert set(allowed[state.value]) == {a for a, e in OPERATOR_ACTIONS.items()
                                             if (state, e) in TRANSITIONS}
    # the buttons start disabled: the page enables them once it knows the state
    assert re.search(r'<button data-action="login" disabled>', page)


async def test_favicon_is_served_to_anyone_and_linked_from_every_page(app_client: App) -> None:
    client, _, _ = app_client
    client.session.cookie_jar.clear()
    resp = await client.get("/favicon.ico")
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/svg+xml"
    assert (await resp.text()).startswith("<svg")
    page = await (await client.get("/console/login")).text()
    assert '<link rel="icon" href="/favicon.ico" type="image/svg+xml">' in page


async def test_audit_log_is_described_in_the_pages_language(app_client: App) -> None:
    client, _, console = app_client
    _, headers = admin_session(console)
    kanri = Actor("kanri", "127.0.0.1", "kanri")
    for action, detail in (
            ("login", "role=supervisor"),
            ("user-role", "haken role supervisor->operator ext=7002; 1 session(s) ended"),
            ("setting", "POST /api/schedules/water/override"),
            ("setting", "retention_days 62 -> 90"),
            ("export", "2026-01-01..2026-01-31: 3 recordings, 2097152 bytes, "
                       "manifest 0123456789abcdef, 0 problem(s)"),
            ("search", "service=city&agent=7001&from=2026-12-01T15:00:00%2B00:00"),
            ("supervise-listen", "agent 7001, supervisor 7003")):
        await console.audit(kanri, action, detail)
    await console.audit(Actor("api-token", "127.0.0.1"), "setting", "POST /api/flows/reload")

    resp = await client.get("/api/console/audit?limit=20&lang=ja", headers=headers)
    assert resp.status == 200
    items = (await resp.json())["items"]
    by_action = {(i["action"], i["detail_text"]) for i in items}
    assert ("login", "ロール: スーパーバイザー") in by_action
    assert ("user-role", "haken: スーパーバイザー → オペレーター、内線 オペレーター2 (7002)、"
                         "1件のセッションを終了") in by_action
    assert ("setting", "受付時間の切替: 上下水道局代表") in by_action
    assert ("setting", "録音の保存期間: 62日 → 90日") in by_action
    assert ("export", "2026年1月1日〜2026年1月31日: 録音3件、2.0 MiB、チェックサム "
                      "0123456789abcdef、問題0件") in by_action
    assert ("search", "サービス: 市コールセンター、オペレーター: オペレーター1 (7001)、"
                      "開始: 2026年12月2日 0:00") in by_action
    assert ("supervise-listen", "オペレーター: オペレーター1 (7001)、スーパーバイザーの内線: "
                                "7003") in by_action
    assert ("setting", "IVRフローの再読込") in by_action
    assert {i["action_text"] for i in items} >= {"ログイン", "ロール変更", "設定変更", "モニター"}
    assert "APIトークン" in {i["actor"] for i in items}

    resp = await client.get("/api/console/audit?limit=20&lang=en", headers=headers)
    items = (await resp.json())["items"]
    assert ("setting", "Hours override: Water and Sewerage Bureau") in {
        (i["action"], i["detail_text"]) for i in items}
    assert (await client.get("/api/console/audit?limit=0", headers=headers)).status == 400
    # GET /api/audit keeps the rows as stored
    resp = await client.get("/api/audit?limit=20", headers=headers)
    assert "POST /api/schedules/water/override" in {i["detail"] for i in
                                                    (await resp.json())["items"]}


def test_every_audit_action_has_words_and_unknown_details_pass_through() -> None:
    for action, (ja, en) in AUDIT_ACTIONS.items():
        assert action_text(action, "ja") == ja and action_text(action, "en") == en
    assert action_text("something-new", "ja") == "something-new"


def test_unrecognised_details_are_shown_as_stored(tmp_path: Path) -> None:
    settings = load_settings(offline_config(tmp_path), tmp_path / "state")
    names = build_names("ja", settings, Labels(), [], [])
    assert detail_text("setting", "PUT /elsewhere", None, names) == "PUT /elsewhere"
    assert detail_text("play", "format=mp3", 12, names) == "録音 #12、形式 mp3"
    assert detail_text("waveform", "buckets=400", 12, names) == "録音 #12"


async def test_a_stored_call_is_announced_on_the_live_events(app_client: App) -> None:
    """The wallboard refetches today's KPIs on this event: it comes once the call's row is
    stored, so the refetch counts the call."""
    client, engine, console = app_client
    _, headers = admin_session(console)
    events = engine.bus.subscribe()
    call = engine.tracker.offer("1.1", "PJSIP/trunk-1", "city", "1000", "0312345678")
    call.enter_queue(engine.tracker.clock() - timedelta(seconds=20))
    ended = engine.tracker.end("1.1")
    assert ended is not None
    engine._close_call(ended)
    message = await asyncio.wait_for(events.get(), 10)
    while message.get("type") != "call":
        message = await asyncio.wait_for(events.get(), 10)
    assert message == {"type": "call", "call": call.id, "service": "city",
                       "outcome": "abandoned_waiting"}
    today = datetime.now(CITY_TZ).date().isoformat()
    resp = await client.get(f"/api/kpi?from={today}&to={today}&by=halfhour", headers=headers)
    body = await resp.json()
    assert body["total"]["offered"] == 1 and body["total"]["abandoned"] == 1
    assert body["groups"] and body["groups"][0]["key"].startswith(today)
    engine.bus.unsubscribe(events)


def test_other_kinds_and_classes_all_have_words() -> None:
    assert set(CLASS_LABELS) == set(OutcomeClass)
    assert set(KIND_LABELS) == set(OtherKind)
