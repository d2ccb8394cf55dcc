"""Bookings in a real browser: Debian's Chromium, headless, driven by Playwright (no browser
download). An admin adds an event on the console's bookings page; a citizen, with no login,
books a seat on the public page (every field found by its label), gets a booking number and
cancels with it; a script typed as the name is shown as text and never runs. The engine runs
in this process without Asterisk (harness.offline_engine): the pages need none."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from playwright.sync_api import Dialog, Page, sync_playwright

from console.auth import ConsoleConfig
from console.http import CONSOLE
from core.clock import CITY_TZ
from harness.offline_engine import offline_engine
from harness.ports import free_port
from madoguchi.web import make_app

pytestmark = pytest.mark.asterisk  # with the other browser tests (the e2e run)
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "e2e bookings password"
SCRIPT_NAME = "<script>alert('x')</script>山田"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The engine's web app on a loopback port, served from its own thread and loop."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing (make deps installs it)")
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    problems: list[BaseException] = []

    async def serve() -> None:
        engine = offline_engine(tmp_path)
        # signal handlers are for the main thread's loop; this one serves from a thread
        engine._sighup = _no_signals  # type: ignore[method-assign]
        app = make_app(engine, ConsoleConfig())
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await app[CONSOLE].users.add("kanri", "admin", PASSWORD, None)
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported by the fixture
            problems.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(60) and not problems, problems
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@asynccontextmanager
async def _no_signals() -> AsyncIterator[None]:
    yield


def _local(at: datetime) -> str:
    return at.astimezone(CITY_TZ).strftime("%Y-%m-%dT%H:%M")


def _no_dialogs(page: Page, seen: list[str]) -> None:
    def dialog(d: Dialog) -> None:
        seen.append(d.message)
        d.dismiss()
    page.on("dialog", dialog)


def test_an_admin_adds_an_event_and_a_citizen_books_and_cancels(site: str) -> None:
    now = datetime.now(CITY_TZ)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            admin = browser.new_page()
            admin.goto(site + "/console/login")
            admin.fill("#name", "kanri")
            admin.fill("#password", PASSWORD)
            admin.click("#submit")
            admin.wait_for_url(re.compile(r".*/console/.*"))
            admin.goto(site + "/console/bookings")
            admin.fill("#ev-id", "yoga-2027")
            admin.fill("#ev-title-ja", "ヨガ教室")
            admin.fill("#ev-title-en", "Yoga class")
            admin.fill("#ev-fee", "500円")
            admin.fill("#ev-opens", _local(now - timedelta(hours=1)))
            admin.fill("#ev-closes", _local(now + timedelta(days=7)))
            admin.fill("#ev-starts", _local(now + timedelta(days=10)))
            admin.fill("#ev-ends", _local(now + timedelta(days=10, hours=2)))
            admin.fill("#ev-venue", "市民会館")
            admin.fill("#ev-capacity", "5")
            admin.click("#ev-save")
            # a selector, not wait_for_function: the page's CSP forbids evaluating strings
            admin.wait_for_selector("#bk-event-result:has-text('yoga-2027')")
            admin.wait_for_selector("#bk-events tbody tr >> text=ヨガ教室")

            citizen = browser.new_context().new_page()  # no cookie, no login
            dialogs: list[str] = []
            _no_dialogs(citizen, dialogs)
            citizen.goto(site + "/book/")
            citizen.get_by_role("link", name="ヨガ教室").click()
            citizen.wait_for_url(re.compile(r".*/book/events/yoga-2027$"))
            # every field reached through its label, the form sent from the keyboard
            citizen.get_by_label("氏名").fill(SCRIPT_NAME)
            citizen.get_by_label("ふりがな").fill("やまだ")
            citizen.get_by_label("電話番号").fill("090-1234-5678")
            citizen.get_by_label("人数").fill("2")
            citizen.get_by_label("連絡事項（任意）").focus()
            citizen.keyboard.type("車椅子で伺います")
            citizen.get_by_label("人数").press("Enter")
            number = citizen.locator("#booking-number").inner_text(timeout=15_000)
            assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{5}", number), number
            assert SCRIPT_NAME in citizen.locator("dl").inner_text()  # shown as text
            assert dialogs == []  # and never run

            citizen.get_by_role("link", name=re.compile("申込の取消")).click()
            citizen.get_by_label("申込番号").fill(number)
            citizen.get_by_label("申込時の電話番号").fill("09012345678")
            citizen.get_by_role("button", name=re.compile("取り消す")).click()
            citizen.wait_for_selector("text=申込を取り消しました")
            assert dialogs == []

            # the admin sees the seats given back
            admin.click("#bk-reload")
            admin.wait_for_selector("#bk-events tbody tr >> text=ヨガ教室")
            row = admin.locator("#bk-events tbody tr", has_text="ヨガ教室").inner_text()
            assert "\t5\t0\t" in row, row
        finally:
            browser.close()
