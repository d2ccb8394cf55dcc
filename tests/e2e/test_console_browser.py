"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright (no
browser download), against the real stack. Login for each role and denial of other roles'
pages; the wallboard updating live (states, and today's counts within 2 s of a real call
ending); a real recorded call found and played with seek; the operator desk; an event status
edited in the admin view and then heard on a real call; names instead of ids on every page of
every role, and no error in the browser's console. Screenshots of each view go to
docs/screenshots/ (referenced by the README)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ivr.tts import Tts

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    CITY_PBX_MEDIA,
    CITY_PBX_PORT,
    SIP_PORT,
    SIPP_DIR,
    Stack,
    ami_watch,
    phone_port,
    sipp_caller,
    sipp_keys,
    sipp_operator,
    sipp_unregister,
)

pytestmark = pytest.mark.asterisk
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "e2e console password"
USERS = {"kanri": ("admin", None), "sv": ("supervisor", None), "op1": ("operator", "7001"),
         "city": ("city_viewer", None)}
HOME = {"kanri": "/console/admin", "sv": "/console/wallboard", "op1": "/console/desk",
        "city": "/console/viewer"}
PAGES = {"/console/desk": {"kanri", "sv", "op1"}, "/console/wallboard": {"kanri", "sv"},
         "/console/viewer": {"kanri", "sv", "city"}, "/console/admin": {"kanri"}}
CALLER = "0366660001"
DESK_CALLER = "0366660002"
TRANSFER_CALLER = "0366660003"
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def users(stack: Stack) -> dict[str, str]:
    """Console users made with the CLI, as an installer would (no default password)."""
    for name, (role, agent) in USERS.items():
        cmd = [sys.executable, "-m", "madoguchi.cli", "--config", str(stack.config),
               "--state", str(stack.state), "users", "add", "--role", role,
               "--password-stdin", "--replace", name]
        if agent:
            cmd += ["--agent", agent]
        done = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    # 2345 is the one extension the SIPp city PBX (tests/sipp/citypbx.xml) accepts
    staff = stack.state.parent / "staff.csv"  # the admin's file, not the engine's state
    staff.write_text("section,name,extension,note\n環境課,山田 太郎,2345,ごみ収集\n",
                     encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "madoguchi.cli", "--config", str(stack.config),
                           "--state", str(stack.state), "import", "directory", str(staff)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return {name: role for name, (role, _) in USERS.items()}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo",
                                  viewport={"width": 1280, "height": 800})
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def login(page: Page, stack: Stack, name: str) -> None:
    page.goto(stack.http + "/console/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(stack.http + HOME[name])


def wait_js(page: Page, expression: str, timeout: float = 10) -> None:
    """Poll an expression from Python: wait_for_function evaluates a string inside the page,
    which the console's Content-Security-Policy (no eval) rightly forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.1)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_each_role_logs_in_to_its_view_and_is_denied_the_others(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    page.goto(stack.http + "/console/login")
    assert page.locator("html").get_attribute("lang") == "ja"
    shot(page, "login")
    page.fill("#name", "sv")
    page.fill("#password", "not the password")
    page.click("#submit")
    assert "違います" in page.inner_text("#error")
    for name in users:
        login(page, stack, name)
        for path, allowed in PAGES.items():
            resp = page.goto(stack.http + path)
            assert resp is not None
            assert resp.status == (200 if name in allowed else 403), (name, path)
        page.goto(stack.http + HOME[name])
        page.click("#logout")
        page.wait_for_url(stack.http + "/console/login")
        resp = page.goto(stack.http + HOME[name])  # logged out: back to the login form
        assert resp is not None and page.url.startswith(stack.http + "/console/login")
    audit = stack.json("/api/audit?limit=200")
    assert isinstance(audit, dict)
    logins = {(a["actor"], a["action"]) for a in audit["items"]}
    assert {(n, "login") for n in users} <= logins and ("sv", "login-failed") in logins


def test_wallboard_updates_within_two_seconds(stack: Stack, users: dict[str, str],
                                              page: Page) -> None:
    stack.set_ready("7001")
    login(page, stack, "sv")
    page.wait_for_selector("#ws-state.connected")
    page.wait_for_selector("#agent-7001 [data-state=available]")
    page.wait_for_selector("#kpi-answer_rate")  # today's KPIs against their targets
    assert "一次解決率" in page.inner_text("#kpis")
    # the satisfaction scores against their targets, — while there is no score
    assert "市民満足度" in page.inner_text("#kpi-citizen_satisfaction")
    assert "70点" in page.inner_text("#kpi-citizen_satisfaction .target")
    assert "80点" in page.inner_text("#kpi-staff_satisfaction .target")
    # operators by name; a phone that is not registered is shown as such, never 受付可
    assert "オペレーター1 (7001)" in page.inner_text("#agent-7001")
    page.wait_for_selector("#agent-7001[data-reachable=yes]")
    # 7004's phone shuts down (earlier tests may have registered it): the page follows
    other = "7004"
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    done = sipp_unregister(other, secrets["sip_passwords"][other], phone_port(4))
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    page.wait_for_selector(f"#agent-{other}[data-reachable=no]")
    unregistered = sorted(a for a, v in stack.agents().items() if not v["reachable"])
    assert other in unregistered and "7001" not in unregistered
    assert "未登録" in page.inner_text(f"#agent-{other} .phone")
    assert "受付可" not in page.inner_text(f"#agent-{other}")
    assert f"電話機未登録 {len(unregistered)}" in page.inner_text("#staffing")
    assert page.inner_text("#occupancy") == "0.0%"  # 7001 idle; the others are left out
    for action, state in (("away", "away"), ("back", "available")):
        body: dict[str, object] = {"action": action}
        if action == "away":
            body["reason"] = "meeting"
        started = time.monotonic()
        status, answer = stack.post("/api/agents/7001/state", body)
        assert status == 200, answer
        page.wait_for_selector(f"#agent-7001 [data-state={state}]", timeout=2000)
        assert time.monotonic() - started < 2.0
        if state == "away":
            assert "打合せ" in page.inner_text("#agent-7001")
            shot(page, "wallboard")
    page.click("#lang")  # the English toggle
    page.wait_for_selector("#agent-7001 [data-state=available]")
    assert "available" in page.inner_text("#agent-7001")


def test_operator_desk_shows_the_call_and_writes_its_record(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    stack.set_ready("7001")
    login(page, stack, "op1")
    page.wait_for_selector("#state[data-state=available]")
    page.wait_for_selector("#ws-state.connected")  # the desk follows the live events too
    # only what the transition table allows from available
    enabled = {b: page.is_enabled(f"button[data-action={b}]")
               for b in ("login", "back", "away", "end_wrap_up", "logout")}
    assert enabled == {"login": False, "back": False, "away": True, "end_wrap_up": False,
                       "logout": True}, enabled
    assert page.is_hidden("#call-live")  # ライブ means a live call, not the socket
    page.select_option("#reason", "break")
    page.click("button[data-action=away]")
    page.wait_for_selector("#state[data-state=away]")
    assert (stack.agents()["7001"]["state"], stack.agents()["7001"]["reason"]) == ("away",
                                                                                  "break")
    page.click("button[data-action=back]")
    page.wait_for_selector("#state[data-state=available]")

    # a real call to this operator: the desk shows it while it lasts
    operator = sipp_operator(ring_ms=1000)
    caller: list[subprocess.CompletedProcess[bytes]] = []
    thread = threading.Thread(target=lambda: caller.append(
        sipp_caller("1000", DESK_CALLER, dtmf="1", talk_ms=6000)))
    thread.start()
    try:
        page.wait_for_selector(f"#call-caller:has-text('{DESK_CALLER}')", timeout=30000)
        page.wait_for_selector("#state[data-state=on_call]")
        page.wait_for_selector("#call-live:not([hidden])")
        assert page.inner_text("#call-live") == "ライブ"
        # names, not ids: the IVR path's nodes, the service, the language, the topic
        assert "言語選択" in page.inner_text("#call-flow")
        assert "choose-language" not in page.inner_text("#call-flow")
        assert page.inner_text("#call-service") == "市コールセンター"
        assert page.inner_text("#call-language") == "日本語"
        assert page.inner_text("#call-topic") == "一般のお問い合わせ"
        assert all(page.is_disabled(f"button[data-action={b}]")
                   for b in ("login", "back", "away", "end_wrap_up", "logout"))
        # the caller's wait stopped at the answer and stays put while the call goes on
        page.wait_for_selector("#call-wait[data-live=stopped]")
        waited = page.inner_text("#call-wait")
        assert re.fullmatch(r"\d+:\d\d", waited), waited
        time.sleep(1.2)
        assert page.inner_text("#call-wait") == waited
        shot(page, "desk")
    finally:
        thread.join(timeout=60)
        operator.communicate(timeout=30)
    assert caller and caller[0].returncode == 0, caller
    page.wait_for_selector("#state[data-state=wrap_up]")
    assert page.is_hidden("#call-live")
    assert page.is_enabled("button[data-action=end_wrap_up]")
    call_id = page.input_value("#record-call")
    assert call_id
    page.fill("#record-topic", "ごみ収集")
    page.select_option("#record-class", "完了")
    page.fill("#record-text", "収集日を案内")
    # switching the language keeps what is typed in the record form
    page.click("#lang")
    page.wait_for_selector("html[lang=en]")
    page.wait_for_selector("#state[data-state=wrap_up]")
    assert (page.input_value("#record-call"), page.input_value("#record-topic"),
            page.input_value("#record-text")) == (call_id, "ごみ収集", "収集日を案内")
    page.click("#lang")
    page.wait_for_selector("html[lang=ja]")
    assert page.input_value("#record-text") == "収集日を案内"
    page.click("#record-save")
    page.wait_for_selector("#record-result:has-text('保存しました')")
    try:
        page.click("button[data-action=end_wrap_up]", timeout=2000)
    except PlaywrightTimeout:
        pass  # the wrap-up reached its maximum (8 s on this stack) and ended by itself
    page.wait_for_selector("#state[data-state=available]")
    today = datetime.now(TOKYO).date().isoformat()
    found = stack.json(f"/api/interactions?from={today}&to={today}")
    assert isinstance(found, dict)
    assert any(r["call_id"] == call_id for r in found["interactions"]), found


def test_desk_directory_search_transfers_a_real_call_with_one_click(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    stack.set_ready("7001")
    login(page, stack, "op1")
    page.wait_for_selector("#state[data-state=available]")
    operator = sipp_operator(ring_ms=500)
    pbx = subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "citypbx.xml"), "-i", "127.0.0.1", "-p",
         str(CITY_PBX_PORT), "-mp", str(CITY_PBX_MEDIA), "-m", "1", "-d", "500", "-nostdin",
         "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    caller = subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller.xml"), "-s", "1000",
         "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA), "-m", "1",
         "-d", "14000", "-key", "caller", TRANSFER_CALLER, "-key", "dtmf",
         "/usr/share/sip-tester/dtmf_2833_1.pcap", "-nostdin", "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    procs = [operator, pbx, caller]
    try:
        page.wait_for_selector(f"#call-caller:has-text('{TRANSFER_CALLER}')", timeout=30000)
        page.fill("#lookup-q", "環境")
        page.click("#lookup button")
        page.wait_for_selector("#directory tr.person:has-text('山田 太郎')")
        assert page.inner_text("#directory thead").split() == ["所属", "氏名", "内線", "備考",
                                                               "転送"]
        page.click("#directory tr.person button.transfer")
        # the operator is free of the call (wrap-up), the caller goes on to the city PBX
        page.wait_for_selector("#state[data-state=wrap_up]", timeout=15000)
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    deadline = time.monotonic() + 15
    rows: list[sqlite3.Row] = []
    while not rows and time.monotonic() < deadline:
        with sqlite3.connect(stack.state / "madoguchi.db") as db:
            db.row_factory = sqlite3.Row
            rows = list(db.execute("SELECT * FROM calls WHERE caller = ?", (TRANSFER_CALLER,)))
        time.sleep(0.3)
    assert len(rows) == 1
    assert [(t["from_agent"], t["to"], t["kind"]) for t in json.loads(rows[0]["transfers"])] \
        == [("7001", "2345", "blind")]


def test_city_viewer_finds_a_real_recording_and_plays_it_with_seek(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    stack.set_ready("7001")
    operator = sipp_operator(ring_ms=1000)
    try:
        caller = sipp_caller("1000", CALLER, dtmf="1", talk_ms=6000)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
        operator.communicate(timeout=30)
    finally:
        if operator.poll() is None:
            operator.kill()
    deadline = time.monotonic() + 20
    items: list[dict[str, object]] = []
    while not items and time.monotonic() < deadline:
        found = stack.json(f"/api/recordings?caller={CALLER}")
        assert isinstance(found, dict)
        items = found["items"]
        time.sleep(0.3)
    assert len(items) == 1, "the call's recording was never indexed"
    rec_id = items[0]["id"]
    status, body = stack.post("/api/interactions", {
        "call_id": items[0]["call_id"], "topic": "住民票", "outcome_class": "完了",
        "text": "窓口の場所を案内", "agent_id": "7001"})
    assert status == 201, body

    login(page, stack, "city")
    page.fill("#caller", CALLER[-6:])
    page.select_option("#agent", "7001")
    page.click("#search-button")
    page.wait_for_selector(f"#rec-{rec_id}")
    assert page.locator("#results tbody tr").count() == 1
    page.wait_for_selector(f"#interactions tr[data-call='{items[0]['call_id']}']"
                           ":has-text('窓口の場所を案内')")
    row = page.inner_text(f"#rec-{rec_id}")
    assert "オペレーター1 (7001)" in row and "市コールセンター" in row and "日本語" in row
    # the city's clock in Japanese form: 2026年12月2日 4:23
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d{1,2}:\d\d", row), row
    page.click(f"#rec-{rec_id} button.play")
    wait_js(page, "document.querySelector('#player').duration > 0")
    duration = page.evaluate("document.querySelector('#player').duration")
    assert duration > 3
    # seek by clicking the waveform three quarters of the way along
    box = page.locator("#wave").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    wait_js(page, "document.querySelector('#player').seeking === false")
    at = page.evaluate("document.querySelector('#player').currentTime")
    assert abs(at - duration * 0.75) < 0.5, (at, duration)
    shot(page, "viewer")
    # this month's staff rating from the same page: saved (or replacing the city's own)
    page.select_option("#rating-value", "4")
    page.fill("#rating-comment", "丁寧な対応")
    page.click("#rating-send")
    wait_js(page, "document.querySelector('#rating-result').textContent !== ''")
    assert page.inner_text("#rating-result") in ("評価を登録しました",
                                                 "この月の評価を差し替えました")
    wait_js(page, "document.querySelector('#month-score').textContent.endsWith('点')")
    audit = stack.json(f"/api/audit?recording={rec_id}")
    assert isinstance(audit, dict)
    by_city = {a["action"] for a in audit["items"] if a["actor"] == "city"}
    assert {"play", "waveform"} <= by_city, audit


def test_event_status_edited_in_admin_is_heard_on_a_real_call(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    now = datetime.now(TOKYO)
    board = stack.json("/api/board")
    assert isinstance(board, dict)
    for ev in board["items"]:
        assert stack.post(f"/api/board/events/{ev['id']}/delete", {})[0] == 200
    login(page, stack, "kanri")
    # a new event typed into the admin form, Japanese and English, with its publish window
    form = page.locator("#event-form")
    for name, value in (("id", "console-e2e"), ("date", now.date().isoformat()),
                        ("time", "13:00"), ("title_ja", "防災訓練"),
                        ("title_en", "the disaster drill"), ("venue_ja", "市役所"),
                        ("venue_en", "the city hall"),
                        ("publish_from", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")),
                        ("publish_until", (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))):
        form.locator(f"[name={name}]").fill(value)
    form.locator("[name=status]").select_option("held")
    page.click("#event-save")
    page.wait_for_selector("#event-console-e2e .announcement:has-text('防災訓練')")
    row = page.locator("#event-console-e2e")
    assert "防災訓練" in row.inner_text()
    row.locator("select.status").select_option("cancelled")
    row.locator("button.save").click()
    page.wait_for_selector("#event-console-e2e .announcement:has-text('中止')")
    # a broken flow: the reload is refused and the error names the file and line
    flow = stack.config / "flows" / "city.yaml"
    good = flow.read_text(encoding="utf-8")
    flow.write_text(good.replace("queue: city", "queue: nowhere"), encoding="utf-8")
    try:
        page.click("#flows-reload")
        line = flow.read_text(encoding="utf-8").splitlines().index("    queue: nowhere") + 1
        page.wait_for_selector(f"#flows-errors li:has-text('city.yaml:{line}:')")
        assert "nowhere" in page.inner_text("#flows-errors")
    finally:
        flow.write_text(good, encoding="utf-8")
    page.click("#flows-reload")
    page.wait_for_selector("#flows-result:has-text('再読込しました')")
    assert page.inner_text("#flows-errors") == ""
    now_en = stack.json("/api/board/now?lang=en")
    assert isinstance(now_en, dict)
    items = now_en["items"]
    assert [i["key"] for i in items] == ["event:console-e2e"]
    assert "has been cancelled" in str(items[0]["text"])
    audit = stack.json("/api/audit?limit=50")
    assert isinstance(audit, dict)
    done = {(a["actor"], a["action"], a["detail"]) for a in audit["items"]}
    assert ("kanri", "setting", "POST /api/board/events") in done
    assert ("kanri", "setting", "POST /api/board/events/console-e2e/status") in done

    # the after-hours menu plays the board: switch the city line to closed from the view
    page.click("#svc-city button[data-mode=closed]")
    page.wait_for_selector("#svc-city .sched-state[data-state=closed]")
    shot(page, "admin")
    try:
        with ami_watch(stack) as watch:
            result = sipp_keys("1000", "0355550077", "2", "1")
            assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
            time.sleep(0.5)
        played = watch.played("0355550077")
    finally:
        stack.post("/api/schedules/city/override", {"mode": "normal"})
        stack.post("/api/board/events/console-e2e/delete", {})
    files = [f for f, _ in played]
    assert str(items[0]["sound"]) in files, played


def test_admin_changes_a_role_and_disables_a_user_whose_session_ends_at_once(
        stack: Stack, users: dict[str, str], browser: Browser, page: Page) -> None:
    login(page, stack, "kanri")
    form = page.locator("#add-user")
    form.locator("[name=name]").fill("haken")
    form.locator("[name=role]").select_option("supervisor")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button").click()
    page.wait_for_selector("#user-haken[data-role=supervisor]")
    other = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        theirs = other.new_page()

        def their_login(expect: str) -> None:
            theirs.goto(stack.http + "/console/login")
            theirs.fill("#name", "haken")
            theirs.fill("#password", PASSWORD)
            theirs.click("#submit")
            theirs.wait_for_url(stack.http + expect)

        their_login("/console/wallboard")
        theirs.wait_for_selector("#ws-state.connected")
        # the admin makes them a city viewer: their open session ends with the change, and
        # the open wallboard (socket closed, next poll refused) goes to the login form
        row = page.locator("#user-haken")
        row.locator("select[name=role]").select_option("city_viewer")
        row.locator("button.change-role").click()
        page.wait_for_selector("#user-haken[data-role=city_viewer]")
        theirs.wait_for_url(re.compile(re.escape(stack.http) + r"/console/login.*"),
                            timeout=10000)
        their_login("/console/viewer")
        page.locator("#user-haken button.disable").click()
        page.wait_for_selector("#user-haken[data-disabled=yes]")
        shot(page, "admin-users")
        theirs.goto(stack.http + "/console/viewer")
        assert theirs.url.startswith(stack.http + "/console/login")
        theirs.fill("#name", "haken")
        theirs.fill("#password", PASSWORD)
        theirs.click("#submit")
        assert "違います" in theirs.inner_text("#error")  # disabled: no login
    finally:
        other.close()
    audit = stack.json("/api/audit?limit=50")
    assert isinstance(audit, dict)
    done = {(a["actor"], a["action"], a["detail"]) for a in audit["items"]}
    assert ("kanri", "user-role",
            "haken role supervisor->city_viewer; 1 session(s) ended") in done
    assert ("kanri", "user-disable", "haken; 1 session(s) ended") in done


def test_admin_switches_hours_with_expiry_and_adds_a_dated_closure(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    login(page, stack, "kanri")
    row = page.locator("#svc-water")
    row.locator("input.minutes").fill("30")
    row.locator("button[data-mode=forward]").click()
    page.wait_for_selector("#svc-water .sched-state[data-state=forward]")
    until = page.get_attribute("#svc-water .sched-until", "data-until")
    assert until
    left = datetime.fromisoformat(until) - datetime.now(TOKYO)
    assert timedelta(minutes=28) < left <= timedelta(minutes=30), left
    schedules = stack.config / "schedules.yaml"
    before = schedules.read_text(encoding="utf-8")
    day = (datetime.now(TOKYO).date() + timedelta(days=400)).isoformat()
    try:
        form = page.locator("#closure-form")
        form.locator("[name=date]").fill(day)
        form.locator("[name=name]").fill("庁舎点検")
        form.locator("[name=service]").select_option("water")
        page.click("#closure-add")
        page.wait_for_selector(f"#closure-{day}-water:has-text('庁舎点検')")
        assert "庁舎点検" in schedules.read_text(encoding="utf-8")
        shot(page, "admin-hours")
        # the same day again is refused with the reason, and nothing is written twice
        form.locator("[name=date]").fill(day)
        form.locator("[name=name]").fill("二重")
        form.locator("[name=service]").select_option("water")
        page.click("#closure-add")
        page.wait_for_selector("#closure-result:has-text('既に登録されています')")
        assert page.inner_text("#closure-result") == "既に登録されています"  # in Japanese only
        assert "already a closure" in (page.get_attribute("#closure-result", "title") or "")
        assert "二重" not in schedules.read_text(encoding="utf-8")
        page.locator(f"#closure-{day}-water button.remove").click()
        page.wait_for_selector(f"#closure-{day}-water", state="detached")
        assert schedules.read_text(encoding="utf-8") == before
        row.locator("button[data-mode=normal]").click()
        page.wait_for_selector("#svc-water .sched-state:not([data-state=forward])")
        # an emergency message typed in the view is spoken first on the next real call
        said = "本日は水道管工事のため、お問い合わせ窓口を休止しています。"
        row.locator("input.minutes").fill("")
        page.locator("#emergency-form [name=ja]").fill(said)
        row.locator("button[data-mode=emergency]").click()
        page.wait_for_selector("#svc-water .sched-state[data-state=emergency]")
        assert said in page.inner_text("#svc-water .sched-until")
        with ami_watch(stack) as watch:
            result = sipp_keys("2000", "0355550078", "1", "5")
            assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
            time.sleep(0.5)
        files = [f for f, _ in watch.played("0355550078")]
        key = Tts(stack.state).key(said, "ja")
        assert key is not None and any(f.endswith(f"tts/{key}") for f in files), files
        row.locator("button[data-mode=normal]").click()
        page.wait_for_selector("#svc-water .sched-state:not([data-state=emergency])")
    finally:
        stack.post("/api/schedules/water/override", {"mode": "normal"})
        if schedules.read_text(encoding="utf-8") != before:
            schedules.write_text(before, encoding="utf-8")
            stack.post("/api/flows/reload", {})


def test_admin_previews_an_announcement_and_downloads_the_export(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    login(page, stack, "kanri")
    form = page.locator("#event-form")
    for name, value in (("date", "2030-05-01"), ("time", "10:00"), ("title_ja", "花火大会"),
                        ("title_en", "the fireworks"), ("venue_ja", "河川敷"),
                        ("venue_en", "the riverside")):
        form.locator(f"[name={name}]").fill(value)
    form.locator("[name=status]").select_option("held")
    page.click("#preview-en")
    page.wait_for_selector("#preview-text:has-text('the fireworks')")
    wait_js(page, "document.querySelector('#preview-player').duration > 0", timeout=30)
    page.click("#preview-ja")
    page.wait_for_selector("#preview-text:has-text('花火大会')")
    wait_js(page, "document.querySelector('#preview-player').duration > 0", timeout=30)
    board = stack.json("/api/board")
    assert isinstance(board, dict) and "preview" not in [e["id"] for e in board["items"]]
    today = datetime.now(TOKYO).date().isoformat()
    export = page.locator("#export-form")
    export.locator("[name=from]").fill(today)
    export.locator("[name=to]").fill(today)
    with page.expect_download() as info:
        page.click("#export-submit")
    target = stack.state.parent / "console-export.tar"  # the admin's download folder
    info.value.save_as(target)
    with tarfile.open(target) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "SHA256SUMS" in names
    audit = stack.json("/api/audit?limit=20")
    assert isinstance(audit, dict)
    assert any(a["actor"] == "kanri" and a["action"] == "export" for a in audit["items"])


# ids the configuration and the API use, which a page must show by their names instead:
# services, queues, topics, languages, interaction kinds, call outcomes
RAW_CODES = ("city", "water", "events", "general", "ja", "en", "city_staff", "sales",
             "wrong_number", "one_ring", "answered", "abandoned_waiting", "ended_in_ivr",
             "overflow", "recovered")
# what a page shows, without people's user names (the header, the users table, the audit
# log's actors and its user-* rows name accounts such as "city")
VISIBLE_TEXT = """() => {
  const main = document.querySelector("main").cloneNode(true);
  main.querySelectorAll("[data-person], #audit tr[data-action^='user-']")
      .forEach((el) => el.remove());
  main.querySelectorAll("select").forEach((sel) => {
    const shown = document.createElement("span");
    shown.textContent = [...sel.options].map((o) => o.textContent).join(" / ");
    sel.replaceWith(shown);
  });
  document.body.appendChild(main);  // innerText needs the element rendered
  const text = main.innerText;
  main.remove();
  return text;
}"""


class PageWatch:
    """A page's console errors, uncaught exceptions and answers to its favicon requests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.icons: list[int] = []
        page.on("console", self._console)
        page.on("pageerror", self._exception)
        page.on("response", self._response)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"{self.page.url}: {msg.text}")

    def _exception(self, exc: Exception) -> None:
        self.errors.append(f"{self.page.url}: {exc}")

    def _response(self, resp: Response) -> None:
        if "favicon" in resp.url:
            self.icons.append(resp.status)


def raw_codes(text: str) -> list[str]:
    return [c for c in RAW_CODES
            if re.search(rf"(?<![A-Za-z0-9_./-]){re.escape(c)}(?![A-Za-z0-9_/-])", text)]


def test_no_page_shows_a_raw_code_and_no_page_logs_an_error(
        stack: Stack, users: dict[str, str], browser: Browser) -> None:
    """Every role's every page, Japanese UI, with a real answered call and an interaction
    record of kind その他 (wrong number) in today's data: names only, and a clean console
    (the favicon included)."""
    stack.set_ready("7001")
    operator = sipp_operator(ring_ms=500)
    try:
        caller = sipp_caller("1000", "0366660009", dtmf="1", talk_ms=2000)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
        operator.communicate(timeout=30)
    finally:
        if operator.poll() is None:
            operator.kill()
    deadline = time.monotonic() + 20
    rows: list[dict[str, object]] = []
    while not rows and time.monotonic() < deadline:
        found = stack.json("/api/recordings?caller=0366660009")
        assert isinstance(found, dict)
        rows = found["items"]
        time.sleep(0.3)
    assert rows, "the call was never stored"
    status, body = stack.post("/api/interactions", {
        "call_id": rows[0]["call_id"], "topic": "general", "outcome_class": "その他",
        "other_kind": "wrong_number", "text": "番号違い", "agent_id": "7001"})
    assert status == 201, body

    for name in users:
        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo",
                                      viewport={"width": 1280, "height": 800})
        p = context.new_page()
        watch = PageWatch(p)
        try:
            login(p, stack, name)
            for path, allowed in PAGES.items():
                if name not in allowed:
                    continue
                p.goto(stack.http + path)
                ready = {"/console/desk": "#lookup-q",
                         "/console/wallboard": "#agents tbody tr",
                         "/console/viewer": "#search-button",
                         "/console/admin": "#audit tbody tr"}[path]
                p.wait_for_selector(ready)
                if path == "/console/desk" and name == "op1":
                    p.wait_for_selector("#state[data-state]")
                if path == "/console/viewer":
                    p.click("#search-button")
                    p.wait_for_selector("#interactions tr[data-call]:has-text('番号違い')")
                    row = p.inner_text(f"#interactions tr[data-call='{rows[0]['call_id']}']")
                    assert "間違い電話" in row and "一般のお問い合わせ" in row, row
                if path == "/console/wallboard":
                    p.wait_for_selector("#queues tbody tr")
                    p.wait_for_selector("#chart-calls svg")
                time.sleep(1.0)  # the page's other requests and the socket settle
                text = p.evaluate(VISIBLE_TEXT)
                assert not raw_codes(text), (name, path, raw_codes(text), text)
            resp = p.goto(stack.http + "/favicon.ico")
            assert resp is not None and resp.status == 200
        finally:
            context.close()
        assert not watch.errors, (name, watch.errors)
        assert all(s == 200 for s in watch.icons), (name, watch.icons)


def test_wallboard_counts_follow_a_real_call_within_two_seconds(
        stack: Stack, users: dict[str, str], page: Page) -> None:
    stack.set_ready("7001")
    login(page, stack, "sv")
    page.wait_for_selector("#ws-state.connected")
    page.wait_for_selector("#agent-7001 [data-state=available]")
    page.wait_for_selector("#kpi-answer_rate")
    offered = int(page.inner_text("#kpi-offered"))
    answered = int(page.inner_text("#kpi-answered"))
    calls = int(page.inner_text("#agent-7001 .today-calls"))
    slots = {half_hour(datetime.now(TOKYO))}
    operator = sipp_operator(ring_ms=500)
    try:
        caller = sipp_caller("1000", "0366660010", dtmf="1", talk_ms=2000)
        ended = time.monotonic()  # the caller has hung up
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
        operator.communicate(timeout=30)
    finally:
        if operator.poll() is None:
            operator.kill()
    wait_js(page, f"document.querySelector('#kpi-offered').textContent === '{offered + 1}'",
            timeout=2.0)
    assert time.monotonic() - ended < 2.0
    wait_js(page, f"document.querySelector('#kpi-answered').textContent === '{answered + 1}'",
            timeout=0.5)
    wait_js(page, "document.querySelector('#agent-7001 .today-calls').textContent === "
            f"'{calls + 1}'", timeout=0.5)
    # today's half-hour charts: the slot of this call has its bars
    slots.add(half_hour(datetime.now(TOKYO)))
    for chart, bar in (("chart-calls", "offered"), ("chart-quick", "quick")):
        page.wait_for_selector(", ".join(f"#{chart} rect.{bar}[data-slot='{key}']"
                                         for key in slots))


def half_hour(t: datetime) -> str:
    """The key of /api/kpi?by=halfhour's group holding t (Tokyo)."""
    return t.strftime("%Y-%m-%dT%H:") + ("30" if t.minute >= 30 else "00")
