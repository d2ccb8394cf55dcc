"""Service levels against real Asterisk and SIPp: one call answered at once, one caller who
gives up while waiting, one answered after more than 9 s of waiting. The counters, the
time-to-answer histogram's 9 s bucket, the call records and the KPIs must all agree."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.stack_setup import madoguchi_cmd

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    SIP_PORT,
    SIPP_DIR,
    Stack,
    phone_media,
    phone_port,
)

pytestmark = pytest.mark.asterisk
SERVICE, QUEUE = "water", "water"  # DID 2000, key 1 → the water queue (wrap-up 1 s)
DTMF = "/usr/share/sip-tester/dtmf_2833_1.pcap"


def _caller(scenario: str, number: str, slot: int, extra: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / scenario), "-s", "2000",
         "-i", "127.0.0.1", "-p", str(CALLER_PORT + 300 + slot), "-mp",
         str(CALLER_MEDIA + 800 + 50 * slot), "-m", "1", "-key", "caller", number,
         "-key", "dtmf", DTMF, *extra, "-nostdin", "-timeout", "120s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _board(stack: Stack) -> float:
    """Event-board announcements started, all languages."""
    _, _, body = stack.get("/metrics")
    lines = [line for line in body.decode().splitlines()
             if line.startswith("madoguchi_event_board_played_total{")]
    return sum(float(line.split()[-1]) for line in lines)


def _row(stack: Stack, number: str) -> dict[str, object]:
    rows: list[dict[str, object]] = []

    def stored() -> bool:
        rows[:] = stack.call_rows(number)
        return len(rows) == 1

    _wait_for(f"the call record of {number}", stored, 20)
    return rows[0]


def _done(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if proc.returncode:
        print(f"sipp {proc.args[2]} exited {proc.returncode}: "
              f"{err.decode(errors='replace')[-1500:]}")
    return proc.returncode


def test_answered_abandoned_and_slow_calls_move_counters_and_kpis(stack: Stack) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    before = {
        "answered": stack.metric("madoguchi_calls_answered_total", service=SERVICE),
        "abandoned": stack.metric("madoguchi_calls_abandoned_total", service=SERVICE),
        "quick": stack.metric("madoguchi_time_to_answer_seconds_bucket", le="9.0",
                              service=SERVICE),
        "timed": stack.metric("madoguchi_time_to_answer_seconds_count", service=SERVICE),
        "ended": stack.metric("madoguchi_calls_ended_total", outcome="abandoned_waiting",
                              service=SERVICE),  # labels as exposed: sorted
    }
    board_before = _board(stack)
    stack.set_ready()  # nobody ready: the first two callers wait
    operator = subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "operator_hangup.xml"), "-i", "127.0.0.1", "-p",
         str(phone_port(1)), "-mp", str(phone_media(1)), "-m", "2", "-d", "3000", "-nostdin",
         "-timeout", "180s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    procs = [operator]
    try:
        slow = _caller("caller_wait.xml", "0377700003", 0, [])
        # presses 1 at 7 s, queued a moment later, hangs up by itself ~9 s after the key
        gives_up = _caller("caller.xml", "0377700002", 1, ["-d", "7000"])
        procs += [slow, gives_up]
        assert _done(gives_up, 60) == 0
        # the slow caller has waited more than 9 s: the gauge reads the live line
        _wait_for("a 10 s wait", lambda: stack.metric(
            "madoguchi_queue_longest_wait_seconds", queue=QUEUE) > 10, 30)
        # and, after the congestion announcement, hears the event board
        _wait_for("the event board", lambda: _board(stack) > board_before, 60)
        stack.set_ready("7001")
        _wait_for("the slow caller's answer", lambda: stack.agents()["7001"]["state"]
                  in ("on_call", "wrap_up"), 20)
        assert _done(slow, 60) == 0
        _wait_for("7001 ready again", lambda: stack.agents()["7001"]["state"] == "available",
                  20)
        quick = _caller("caller_wait.xml", "0377700001", 2, [])
        procs.append(quick)
        assert _done(quick, 60) == 0
        assert _done(operator, 30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()

    a, b, c = (_row(stack, n) for n in ("0377700001", "0377700002", "0377700003"))
    assert (a["outcome"], b["outcome"], c["outcome"]) == ("answered", "abandoned_waiting",
                                                         "answered")
    assert isinstance(a["wait_s"], float) and a["wait_s"] <= 9
    assert isinstance(c["wait_s"], float) and c["wait_s"] > 9
    assert isinstance(b["wait_s"], float) and b["wait_s"] > 5  # not a short abandon
    print(f"waits: answered {a['wait_s']:.2f} s, gave up after {b['wait_s']:.2f} s, "
          f"slow answer {c['wait_s']:.2f} s")

    after = {
        "answered": stack.metric("madoguchi_calls_answered_total", service=SERVICE),
        "abandoned": stack.metric("madoguchi_calls_abandoned_total", service=SERVICE),
        "quick": stack.metric("madoguchi_time_to_answer_seconds_bucket", le="9.0",
                              service=SERVICE),
        "timed": stack.metric("madoguchi_time_to_answer_seconds_count", service=SERVICE),
        "ended": stack.metric("madoguchi_calls_ended_total", outcome="abandoned_waiting",
                              service=SERVICE),  # labels as exposed: sorted
    }
    assert {k: after[k] - before[k] for k in before} == {
        "answered": 2, "abandoned": 1, "quick": 1, "timed": 2, "ended": 1}

    # interaction records: the quick call resolved, the slow one a call from city staff
    status, body = stack.post("/api/interactions", {
        "call_id": a["id"], "topic": "water-bill", "outcome_class": "完了",
        "faq_refs": ["faq-water-3"]})
    assert status == 201, body
    status, body = stack.post("/api/interactions", {
        "call_id": c["id"], "topic": "internal", "outcome_class": "その他",
        "other_kind": "city_staff"})
    assert status == 201, body
    status, body = stack.post("/api/interactions", {
        "call_id": b["id"], "topic": "x", "outcome_class": "完了"})
    assert status == 422, body  # nobody answered it

    since = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    kpi = stack.json(f"/api/kpi?service={SERVICE}&from={since}")
    assert isinstance(kpi, dict)
    t = kpi["total"]
    assert (t["offered"], t["answered"], t["quick"], t["abandoned"]) == (3, 2, 1, 1)
    assert t["answer_rate"] == round(2 / 3, 4) and t["quick_answer_rate"] == 0.5
    assert t["fcr"] == 1.0  # 1 resolved ÷ (2 answered − 1 city staff)
    assert t["met"] == {"answer_rate": False, "quick_answer_rate": False, "fcr": True}

    out = subprocess.run(madoguchi_cmd(stack.config, stack.state, "kpi", "--service", SERVICE,
                                    "--from", since, "--json"),
                         capture_output=True, timeout=60, check=True)
    assert json.loads(out.stdout)["total"]["answer_rate"] == t["answer_rate"]
    report = subprocess.run(madoguchi_cmd(stack.config, stack.state, "report", "--month",
                                       started.strftime("%Y-%m"), "--out",
                                       str(stack.state / "reports")),
                            capture_output=True, timeout=120, check=True)
    files = json.loads(report.stdout)
    assert Path(files["pdf"]).stat().st_size > 10_000
    assert "<h2>改善提案</h2>" in Path(files["html"]).read_text(encoding="utf-8")  # ja default
