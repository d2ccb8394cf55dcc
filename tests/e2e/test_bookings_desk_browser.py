"""A course booked from the operator desk during a real call: Debian's Chromium, headless,
driven by Playwright (no browser download), against the real stack. A SIPp citizen calls
the city line and reaches operator 7001, logged in to the console in Japanese; the desk
shows the caller, the operator follows the desk's booking link (a new tab), finds the
caller's number filled in, books a seat on the session while the call goes on, and the
booking is stored with that number, channel desk and the call's id. Then the caller hangs
up. The event is seeded through the bookings API and removed afterwards; the caller's
number is this file's own."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from core.clock import CITY_TZ

from .conftest import Stack, sipp_caller, sipp_operator

pytestmark = pytest.mark.asterisk
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
OPERATOR = "op-kouza"  # a console operator at extension 7001, the SIPp phone's
PASSWORD = "e2e desk booking password"
EVENT = "e2e-desk-yoga"
CALLER = "0366660021"
# the caller talks this long after reaching the operator's queue: room for the booking on a
# loaded machine, checked below (the call must still be live when the booking is stored)
TALK_MS = 40_000


@pytest.fixture(scope="module")
def operator_user(stack: Stack) -> str:
    """The operator's console account, made with the CLI as an installer would."""
    done = subprocess.run(
        [sys.executable, "-m", "madoguchi.cli", "--config", str(stack.config), "--state",
         str(stack.state), "users", "add", "--role", "operator", "--agent", "7001",
         "--password-stdin", "--replace", OPERATOR],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return OPERATOR


def _bookings(stack: Stack) -> list[dict[str, Any]]:
    data = stack.json(f"/api/bookings/search?phone={CALLER}")
    assert isinstance(data, dict)
    return [b for b in data["bookings"] if b["event"] == EVENT]


@pytest.fixture
def course(stack: Stack) -> Iterator[int]:
    """A first-come course open for booking now, with one session; its session id."""
    now = datetime.now(CITY_TZ)
    starts = (now + timedelta(days=10)).replace(hour=10, minute=0, second=0, microsecond=0)
    status, body = stack.post("/api/bookings/events", {
        "id": EVENT, "title_ja": "窓口予約の試験教室", "title_en": "Desk booking test class",
        "opens_at": (now - timedelta(hours=1)).isoformat(),
        "closes_at": (now + timedelta(days=7)).isoformat(),
        "sessions": [{"starts_at": starts.isoformat(),
                      "ends_at": (starts + timedelta(hours=2)).isoformat(),
                      "venue_ja": "市民会館", "venue_en": "Civic hall", "capacity": 5}]})
    assert status == 201, body
    assert isinstance(body, dict)
    try:
        yield int(body["sessions"][0]["id"])
    finally:
        for b in _bookings(stack):
            if b["status"] in ("confirmed", "waiting", "applied"):
                stack.post(f"/api/bookings/{b['number']}/cancel", {})
        status, body = stack.post(f"/api/bookings/events/{EVENT}/delete", {})
        assert status in (200, 204), body


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _watch(page: Page, errors: list[str]) -> None:
    """Collect the page's console errors and uncaught exceptions."""
    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"{page.url}: {msg.text}")

    def exception(exc: Exception) -> None:
        errors.append(f"{page.url}: {exc}")

    page.on("console", console)
    page.on("pageerror", exception)


def test_an_operator_books_a_course_for_the_caller_on_the_line(
        stack: Stack, operator_user: str, course: int, browser: Browser) -> None:
    stack.set_ready("7001")
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo",
                                  viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    phone = sipp_operator(ring_ms=500)
    caller: list[subprocess.CompletedProcess[bytes]] = []
    thread = threading.Thread(target=lambda: caller.append(
        sipp_caller("1000", CALLER, dtmf="1", talk_ms=TALK_MS)))
    try:
        desk = context.new_page()
        _watch(desk, errors)
        desk.goto(stack.http + "/console/login")
        assert desk.locator("html").get_attribute("lang") == "ja"
        desk.fill("#name", operator_user)
        desk.fill("#password", PASSWORD)
        desk.click("#submit")
        desk.wait_for_url(stack.http + "/console/desk")
        desk.wait_for_selector("#state[data-state=available]")
        desk.wait_for_selector("#ws-state.connected")
        assert desk.is_hidden("#call-book")  # no call, nobody to book for

        thread.start()
        desk.wait_for_selector(f"#call-caller:has-text('{CALLER}')", timeout=45_000)
        desk.wait_for_selector("#state[data-state=on_call]", timeout=30_000)
        link = desk.locator("#call-book")
        link.wait_for(state="visible")
        assert link.inner_text() == "講座の申込"
        call_id = desk.input_value("#record-call")
        assert call_id
        query = parse_qs(urlsplit(link.get_attribute("href") or "").query)
        assert query == {"caller": [CALLER], "call": [call_id]}, query

        with context.expect_page() as opened:
            link.click()
        form = opened.value
        _watch(form, errors)
        form.wait_for_load_state("domcontentloaded")
        assert urlsplit(form.url).path == "/console/bookings"
        assert form.locator("body").get_attribute("data-call") == call_id
        assert form.input_value("#bk-phone") == CALLER  # the caller's number, filled in
        form.wait_for_selector(f"#bk-session option[value='{course}']", state="attached")
        form.select_option("#bk-session", str(course))
        form.fill("#bk-name", "窓口 花子")
        form.fill("#bk-furigana", "まどぐち はなこ")
        form.click("#bk-book-button")
        form.wait_for_selector("#bk-book-result:has-text('申込番号')", timeout=15_000)
        result = form.inner_text("#bk-book-result")
        # booked while the citizen is still on the line
        assert desk.get_attribute("#state", "data-state") == "on_call"
        assert thread.is_alive()

        booked = _bookings(stack)
        assert len(booked) == 1, booked
        b = booked[0]
        assert (b["status"], b["channel"], b["phone"], b["call_id"], b["session_id"],
                b["name"], b["party"]) == ("confirmed", "desk", CALLER, call_id, course,
                                           "窓口 花子", 1), b
        assert b["display"] in result, (b["display"], result)
        form.close()

        # the caller hangs up: the desk goes to wrap-up and the link goes with the call
        thread.join(timeout=TALK_MS / 1000 + 90)
        assert caller and caller[0].returncode == 0, \
            caller[0].stderr.decode(errors="replace")[-2000:] if caller else "no caller"
        # (the wrap-up lasts 8 s on this stack: on a slow machine it may be over already)
        desk.wait_for_selector("#state[data-state=wrap_up], #state[data-state=available]",
                               timeout=30_000)
        desk.locator("#call-book").wait_for(state="hidden")
    finally:
        context.close()
        if thread.is_alive():
            thread.join(timeout=TALK_MS / 1000 + 90)
        try:
            phone.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            phone.kill()
            phone.communicate()
    assert stack.call_row(CALLER)["id"] == call_id  # the call the booking names
    assert not errors, errors
