"""The ACD against real Asterisk with several SIPp operator phones: even spread, arrival
order, away and missed operators, a blind transfer to the city PBX, and an engine restart in
the middle of calls."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    CITY_PBX_MEDIA,
    CITY_PBX_PORT,
    SIP_PORT,
    SIPP_DIR,
    Stack,
    phone_media,
    phone_port,
    sipp_register,
)

pytestmark = pytest.mark.asterisk


def _phone(scenario: str, n: int, duration_ms: int, calls: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(phone_port(n)),
         "-mp", str(phone_media(n)), "-m", str(calls), "-d", str(duration_ms), "-nostdin",
         "-timeout", "180s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _waiting_callers(service: str, caller: str, dtmf: str, calls: int,
                     period_ms: int) -> subprocess.Popen[bytes]:
    """`calls` callers, one every period_ms, each staying on until the operator hangs up."""
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_wait.xml"),
         "-s", service, "-i", "127.0.0.1", "-p", str(CALLER_PORT + 100 + int(dtmf)),
         "-mp", str(CALLER_MEDIA + 500), "-m", str(calls), "-r", "1", "-rp", str(period_ms),
         "-key", "caller", caller, "-key", "dtmf",
         f"/usr/share/sip-tester/dtmf_2833_{dtmf}.pcap", "-nostdin", "-timeout", "240s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _finish(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int | None]:
    """Exit codes of the SIPp processes; a failure's last words go to the test log."""
    deadline = time.monotonic() + timeout
    codes: list[int | None] = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if p.returncode:
            print(f"{p.args[2]} exited {p.returncode}: {err.decode(errors='replace')[-1500:]}")
        codes.append(p.returncode)
    return codes


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


def _register(stack: Stack, *numbers: int) -> None:
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    for n in numbers:
        ext = f"700{n}"
        reg = sipp_register(ext, secrets["sip_passwords"][ext], phone_port(n))
        assert reg.returncode == 0, reg.stderr.decode(errors="replace")[-2000:]


def _db(stack: Stack) -> sqlite3.Connection:
    db = sqlite3.connect(stack.state / "madoguchi.db")
    db.row_factory = sqlite3.Row
    return db


def _calls(stack: Stack, caller: str, expected: int, timeout: float) -> list[sqlite3.Row]:
    deadline = time.monotonic() + timeout
    while True:
        with _db(stack) as db:
            rows = db.execute("SELECT * FROM calls WHERE caller = ? ORDER BY queued_at",
                              (caller,)).fetchall()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


@pytest.fixture
def phones() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    _kill(procs)


def test_thirty_calls_spread_evenly_in_arrival_order(
        stack: Stack, phones: list[subprocess.Popen[bytes]]) -> None:
    _register(stack, 2, 3)
    phones.extend(_phone("operator_hangup.xml", n, duration_ms=2000, calls=30)
                  for n in (1, 2, 3))
    stack.set_ready("7001", "7002", "7003")
    callers = _waiting_callers("2000", "0355500000", "1", calls=30, period_ms=1500)
    assert _finish([callers], timeout=200) == [0], callers.stderr
    rows = _calls(stack, "0355500000", 30, timeout=20)
    assert len(rows) == 30
    assert all(r["outcome"] == "answered" for r in rows), Counter(r["outcome"] for r in rows)
    per_agent = Counter(r["agent_id"] for r in rows)
    assert set(per_agent) == {"7001", "7002", "7003"}
    assert max(per_agent.values()) - min(per_agent.values()) <= 1, per_agent
    answered = [datetime.fromisoformat(r["answered_at"]) for r in rows]
    assert answered == sorted(answered), "callers were not served in arrival order"
    # fairness is visible through the API too
    # the API counts Tokyo days, whatever this machine's own time zone and hour
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    stats = stack.json(f"/api/operator-stats?date={today.isoformat()}")
    assert isinstance(stats, dict)
    for agent_id in ("7001", "7002", "7003"):
        assert stats["operators"][agent_id]["calls"] >= per_agent[agent_id]


def test_away_operator_is_never_rung_and_a_silent_one_goes_away_missed(
        stack: Stack, phones: list[subprocess.Popen[bytes]]) -> None:
    _register(stack, 2, 3)
    silent = _phone("ring_forever.xml", 3, duration_ms=0)
    answering = _phone("operator_hangup.xml", 1, duration_ms=2000)
    phones.extend([silent, answering])
    # 7003 has been idle longest, then 7002; 7002 goes on a break
    stack.set_ready("7003", "7002", "7001")
    status, body = stack.post("/api/agents/7002/state", {"action": "away", "reason": "break"})
    assert status == 200 and isinstance(body, dict) and body["state"] == "away"
    started = datetime.now().astimezone()
    callers = _waiting_callers("1000", "0366600000", "2", calls=1, period_ms=1000)
    assert _finish([callers, answering, silent], timeout=90) == [0, 0, 0]
    rows = _calls(stack, "0366600000", 1, timeout=15)
    assert [r["agent_id"] for r in rows] == ["7001"]
    agents = stack.agents()
    assert (agents["7003"]["state"], agents["7003"]["reason"]) == ("away", "missed")
    assert (agents["7002"]["state"], agents["7002"]["reason"]) == ("away", "break")
    with _db(stack) as db:
        offers = db.execute("SELECT agent_id, old_state FROM agent_state_changes "
                            "WHERE event = 'offer' AND at >= ?",
                            (started.astimezone().replace(tzinfo=None).isoformat(" "),)
                            ).fetchall()
    assert ("7002",) not in [(r["agent_id"],) for r in offers]
    assert all(r["old_state"] == "available" for r in offers)


def test_blind_transfer_through_the_api_reaches_the_city_pbx_with_the_prefix(
        stack: Stack, phones: list[subprocess.Popen[bytes]]) -> None:
    operator = _phone("operator.xml", 1, duration_ms=300)
    pbx = subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "citypbx.xml"), "-i", "127.0.0.1", "-p",
         str(CITY_PBX_PORT), "-mp", str(CITY_PBX_MEDIA), "-m", "1", "-d", "500", "-nostdin",
         "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    phones.extend([operator, pbx])
    stack.set_ready("7001")
    caller = subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller.xml"), "-s", "1000",
         "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA), "-m", "1",
         "-d", "14000", "-key", "caller", "0377700000", "-key", "dtmf",
         "/usr/share/sip-tester/dtmf_2833_1.pcap", "-nostdin", "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    phones.append(caller)
    deadline = time.monotonic() + 30
    while (call := stack.agents()["7001"]["call"]) is None:
        assert time.monotonic() < deadline, "the operator never got the call"
        time.sleep(0.3)
    assert isinstance(call, dict)
    status, body = stack.post(f"/api/calls/{call['call_id']}/transfer", {"target": "0312345678"})
    assert status == 403 and isinstance(body, dict) and body["error"] == "transfer_refused"
    time.sleep(2)  # let them talk a little first
    status, body = stack.post(f"/api/calls/{call['call_id']}/transfer", {"target": "2345"})
    assert status == 200, body
    assert _finish([operator], timeout=15) == [0], "the operator's leg did not end"
    assert stack.agents()["7001"]["state"] == "wrap_up"  # free of the call, doing its notes
    assert _finish([caller, pbx], timeout=60) == [0, 0]
    rows = _calls(stack, "0377700000", 1, timeout=15)
    assert rows[0]["agent_id"] == "7001" and rows[0]["outcome"] == "answered"
    if "transfers" in rows[0].keys():
        chain = json.loads(rows[0]["transfers"])
        assert [(t["from_agent"], t["to"], t["kind"]) for t in chain] == [
            ("7001", "2345", "blind")]


def _waiting(stack: Stack, queue: str) -> int:
    queues = stack.json("/api/queues")
    assert isinstance(queues, dict)
    return int({q["id"]: q["waiting"] for q in queues["queues"]}[queue])


def test_engine_restart_adopts_a_conversation_and_a_waiting_caller(
        stack: Stack, phones: list[subprocess.Popen[bytes]]) -> None:
    # the first conversation must outlast the restart, however slow the machine
    operator = _phone("operator_hangup.xml", 1, duration_ms=20000, calls=2)
    phones.append(operator)
    stack.set_ready("7001")
    first = _waiting_callers("2000", "0388800000", "1", calls=1, period_ms=1000)
    deadline = time.monotonic() + 30
    while (call := stack.agents()["7001"]["call"]) is None:
        assert time.monotonic() < deadline, "the operator never got the first call"
        time.sleep(0.3)
    assert isinstance(call, dict)
    second = subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_wait.xml"),
         "-s", "2000", "-i", "127.0.0.1", "-p", str(CALLER_PORT + 200), "-mp",
         str(CALLER_MEDIA + 700), "-m", "1", "-key", "caller", "0388800001", "-key", "dtmf",
         "/usr/share/sip-tester/dtmf_2833_1.pcap", "-nostdin", "-timeout", "120s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    phones.extend([first, second])
    deadline = time.monotonic() + 30
    while _waiting(stack, "water") != 1:  # the second caller waits behind the busy operator
        assert time.monotonic() < deadline, "the second caller never reached the waiting line"
        time.sleep(0.3)
    assert stack.stop_engine() == 0
    stack.start_engine()
    # /healthz turns green at the AMI login; adoption runs right after it
    deadline = time.monotonic() + 10
    while (agent := stack.agents()["7001"])["state"] != "on_call":
        assert time.monotonic() < deadline, f"not adopted: {agent}"
        time.sleep(0.2)
    assert isinstance(agent["call"], dict) and agent["call"]["call_id"] == call["call_id"]
    assert _waiting(stack, "water") == 1
    assert _finish([first, second, operator], timeout=90) == [0, 0, 0]
    rows = _calls(stack, "0388800000", 1, timeout=15) + _calls(stack, "0388800001", 1, 15)
    assert [(r["id"], r["agent_id"], r["outcome"]) for r in rows] == [
        (call["call_id"], "7001", "answered"), (rows[1]["id"], "7001", "answered")]
    with _db(stack) as db:
        recorded = db.execute("SELECT count(*) FROM recordings WHERE call_id IN (?, ?)",
                              (rows[0]["id"], rows[1]["id"])).fetchone()[0]
    assert recorded == 2


def test_feature_code_moves_a_registered_operator_away_and_back(stack: Stack) -> None:
    _register(stack, 4)
    stack.set_ready("7004")
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    for code, state in (("*23", "away"), ("*24", "available")):
        result = subprocess.run(
            ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "dial_feature.xml"),
             "-s", code, "-au", "7004", "-ap", secrets["sip_passwords"]["7004"],
             "-key", "ext", "7004", "-i", "127.0.0.1", "-p", str(phone_port(4)), "-m", "1",
             "-nostdin", "-timeout", "30s"],
            cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=40,
            check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
        deadline = time.monotonic() + 5
        while stack.agents()["7004"]["state"] != state:
            assert time.monotonic() < deadline, f"{code} did not make 7004 {state}"
            time.sleep(0.2)


def test_supervisor_listens_to_a_live_call_and_it_is_audited(
        stack: Stack, phones: list[subprocess.Popen[bytes]]) -> None:
    _register(stack, 4)
    operator = _phone("operator_hangup.xml", 1, duration_ms=8000)
    supervisor = _phone("operator.xml", 4, duration_ms=300)  # answers, listens until the end
    phones.extend([operator, supervisor])
    stack.set_ready("7001")
    caller = _waiting_callers("1000", "0399900000", "2", calls=1, period_ms=1000)
    phones.append(caller)
    deadline = time.monotonic() + 30
    while (call := stack.agents()["7001"]["call"]) is None:
        assert time.monotonic() < deadline, "the operator never got the call"
        time.sleep(0.3)
    assert isinstance(call, dict)
    status, body = stack.post("/api/agents/7001/monitor",
                              {"mode": "listen", "supervisor": "7004"})
    assert status == 200, body
    status, body = stack.post("/api/agents/7002/monitor",
                              {"mode": "listen", "supervisor": "7004"})
    assert status == 409  # 7002 is not on a call
    # the supervisor's phone rang, answered, and was let go when the operator's leg ended
    assert _finish([caller, operator, supervisor], timeout=60) == [0, 0, 0]
    with _db(stack) as db:
        rows = db.execute("SELECT actor, action, detail FROM audit_log WHERE call_id = ?",
                          (call["call_id"],)).fetchall()
    assert [(r["actor"], r["action"]) for r in rows] == [("api-token", "supervise-listen")]
