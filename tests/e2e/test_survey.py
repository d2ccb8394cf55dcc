"""The post-call survey against real Asterisk and SIPp: the caller stays on the line when the
operator hangs up, hears the questions in their language and answers with keys; the answers
reach /api/kpi and /metrics, and the call's talk time ends at the operator's hang-up.

Two ways to mark a call: the operator's request over the API while talking (city, English,
answers 4 and 5: (3/4 + 4/4) ÷ 2 × 100 = 87.5 points), and the flow's queue node (water,
Japanese: a wrong key, asked again, answered 3; the second question left to time out).
What the caller heard is read from Asterisk's own AGIExec events on the monitor login.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ivr.tts import Tts

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    SIP_PORT,
    SIPP_DIR,
    Stack,
    ami_watch,
    phone_media,
    phone_port,
    sipp_done,
    wait_for,
)

pytestmark = pytest.mark.asterisk
TOKYO = ZoneInfo("Asia/Tokyo")
TALK_MS = 6000  # the SIPp operator talks this long, then hangs up
# the caller's first survey key, after its language key at 7 s: answered at about 8 s, the
# operator hangs up at about 14 s, the survey's intro and first question run from there
FIRST_KEY_AFTER_MS = 14000


def _operator() -> subprocess.Popen[bytes]:
    """Operator 7001's SIPp phone: rings 300 ms, answers, talks TALK_MS, hangs up."""
    return subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "operator_hangup.xml"), "-i", "127.0.0.1", "-p",
         str(phone_port(1)), "-mp", str(phone_media(1)), "-m", "1", "-d", str(TALK_MS),
         "-nostdin", "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _caller(did: str, number: str, language_key: str, key1: str,
            key2: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_survey.xml"), "-s",
         did, "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA), "-m", "1",
         "-d", str(FIRST_KEY_AFTER_MS), "-key", "caller", number, "-key", "dtmf",
         f"/usr/share/sip-tester/dtmf_2833_{language_key}.pcap", "-key", "key1", key1,
         "-key", "key2", key2, "-nostdin", "-timeout", "120s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _citizen(stack: Stack, service: str) -> dict[str, object]:
    today = datetime.now(TOKYO).date().isoformat()
    data = stack.json(f"/api/kpi?service={service}&from={today}&to={today}")
    assert isinstance(data, dict)
    citizen = data["satisfaction"]["citizen"]
    assert isinstance(citizen, dict)
    return citizen


def _points(citizen: dict[str, object]) -> float:
    score, answers = citizen["score"], citizen["answers"]
    assert isinstance(answers, int)
    return 0.0 if score is None else float(str(score)) * answers


def _answers_metric(stack: Stack, service: str, key: str) -> float:
    return stack.metric("madoguchi_survey_answers_total", answer=key, service=service)


def _row(stack: Stack, number: str) -> dict[str, object]:
    rows: list[dict[str, object]] = []

    def stored() -> bool:
        rows[:] = stack.call_rows(number)
        return len(rows) == 1

    wait_for(f"the call record of {number}", stored, 20)
    return rows[0]


def _answers(stack: Stack, call_id: str) -> list[tuple[str, int, int | None]]:
    """The survey answers stored for a call: (question, position, key or None)."""
    sql = "SELECT question, position, answer FROM survey_answers WHERE call_id = {} " \
          "ORDER BY position"
    if stack.database_url is not None:
        return asyncio.run(_pg_answers(stack.database_url, sql.format("$1"), call_id))
    with sqlite3.connect(stack.state / "madoguchi.db") as db:
        return [tuple(r) for r in db.execute(sql.format("?"), (call_id,))]


async def _pg_answers(url: str, sql: str, call_id: str) -> list[tuple[str, int, int | None]]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return [tuple(r) for r in await conn.fetch(sql, call_id)]
    finally:
        await conn.close()


def _prompt_file(stack: Stack, prompt: str, lang: str) -> str:
    texts = yaml.safe_load((stack.config / "prompts.yaml").read_text(encoding="utf-8"))
    key = Tts(Path("/nonexistent")).key(texts["prompts"][prompt][lang], lang)
    assert key is not None, f"no TTS for {lang}"
    return f"tts/{key}"


def _finish(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_a_call_the_operator_marks_hears_the_survey_and_moves_the_score(
        stack: Stack) -> None:
    number = "0377700041"
    before = _citizen(stack, "city")
    before_4, before_5 = (_answers_metric(stack, "city", k) for k in ("4", "5"))
    stack.set_ready("7001")
    procs: list[subprocess.Popen[bytes]] = []
    call_id: list[str] = []

    def talking() -> bool:
        call = stack.agents()["7001"].get("call")
        if isinstance(call, dict):
            call_id[:] = [str(call["call_id"])]
        return bool(call_id)

    try:
        with ami_watch(stack) as watch:
            procs.append(operator := _operator())
            started = time.monotonic()
            procs.append(caller := _caller("1000", number, "2", "4", "5"))  # 2: English
            # the operator answers; while they talk, the call is marked for the survey
            wait_for("7001 talking to the caller", talking, 30)
            status, body = stack.post(f"/api/calls/{call_id[0]}/survey", {})
            assert status == 200 and isinstance(body, dict), body
            assert body == {"call_id": call_id[0], "survey": True, "agent_id": "7001"}
            # the operator hangs up; the caller is not hung up on: the survey has them
            assert sipp_done(operator, 40) == 0
            wait_for("7001 in wrap-up", lambda: stack.agents()["7001"]["state"]
                      in ("wrap_up", "available"), 10)
            time.sleep(1.0)
            assert caller.poll() is None, "the caller was hung up with the operator"
            # keys 4 and 5, then the closing words, then Asterisk hangs up
            assert sipp_done(caller, 60) == 0
            lasted = time.monotonic() - started
            time.sleep(0.5)
        heard = watch.played(number)
    finally:
        _finish(procs)

    intro, overall, clarity, thanks = (_prompt_file(stack, p, "en") for p in (
        "survey-intro", "survey-overall", "survey-clarity", "survey-thanks"))
    # the intro, the first question, the second, then the thanks (GET DATA plays one file)
    files = [f for f, _ in heard]
    at = next(i for i, f in enumerate(files) if intro in f)
    assert overall in files[at + 1] and clarity in files[at + 2] and thanks in files[at + 3], \
        files
    assert all(result.startswith("200 Success") for _, result in heard[at:at + 4]), heard

    after = _citizen(stack, "city")
    assert after["answers"] == int(str(before["answers"])) + 2
    assert _points(after) - _points(before) == pytest.approx(75 + 100)  # 87.5 on average
    if before["answers"] == 0:
        assert after["score"] == 87.5 and after["met"] is True
    assert _answers_metric(stack, "city", "4") == before_4 + 1
    assert _answers_metric(stack, "city", "5") == before_5 + 1

    row = _row(stack, number)
    assert row["outcome"] == "answered" and row["agent_id"] == "7001"
    assert row["id"] == call_id[0]
    assert _answers(stack, call_id[0]) == [("overall", 1, 4), ("clarity", 2, 5)]
    talk = row["talk_s"]
    assert isinstance(talk, float)
    # the talk time is the conversation: it ended when the operator hung up, not when the
    # survey ended the call (about 20 s later)
    assert TALK_MS / 1000 - 1 < talk < TALK_MS / 1000 + 3, talk
    assert lasted > 7 + talk + 10, (lasted, talk)


@contextmanager
def _surveyed_water_flow(stack: Stack) -> Iterator[None]:
    """The water flow's queue node asks for the survey, until the block ends."""
    path = stack.config / "flows" / "water.yaml"
    old = path.read_text(encoding="utf-8")
    node = "  to-queue:\n    type: queue\n    queue: water\n"
    assert node in old
    path.write_text(old.replace(node, node + "    survey: true\n"), encoding="utf-8")
    try:
        status, body = stack.post("/api/flows/reload", {})
        assert status == 200, body
        yield
    finally:
        path.write_text(old, encoding="utf-8")
        status, body = stack.post("/api/flows/reload", {})
        assert status == 200, body


def test_a_flow_that_asks_for_the_survey_marks_the_calls_it_queues(stack: Stack) -> None:
    number = "0377700042"
    before = _citizen(stack, "water")
    before_3 = _answers_metric(stack, "water", "3")
    stack.set_ready("7001")
    procs: list[subprocess.Popen[bytes]] = []
    with _surveyed_water_flow(stack):
        try:
            with ami_watch(stack) as watch:
                procs.append(operator := _operator())
                # 1: Japanese; then a wrong key (7), asked again and answered 3; the second
                # question is left to time out
                procs.append(caller := _caller("2000", number, "1", "7", "3"))
                assert sipp_done(operator, 40) == 0
                assert sipp_done(caller, 80) == 0
                time.sleep(0.5)
            heard = watch.played(number)
        finally:
            _finish(procs)

    intro, overall, invalid, clarity, thanks = (_prompt_file(stack, p, "ja") for p in (
        "survey-intro", "survey-overall", "survey-invalid", "survey-clarity",
        "survey-thanks"))
    # in Japanese: the first question, asked again after the wrong key, then the second
    files = [f for f, _ in heard]
    at = next(i for i, f in enumerate(files) if intro in f)
    rest = files[at + 1:]
    # the wrong key lands in the (longer, Japanese) intro or in the first question: either way
    # the question is asked again after the 'invalid' words
    wrong = next(i for i, f in enumerate(rest) if invalid in f)
    assert wrong <= 1 and all(overall in f for f in rest[:wrong]), files
    assert overall in rest[wrong + 1] and clarity in rest[wrong + 2], files
    assert thanks in rest[wrong + 3], files
    row = _row(stack, number)
    assert row["outcome"] == "answered" and row["language"] == "ja"
    assert _answers(stack, str(row["id"])) == [("overall", 1, 3), ("clarity", 2, None)]

    after = _citizen(stack, "water")
    assert after["answers"] == int(str(before["answers"])) + 1
    assert after["unanswered"] == int(str(before["unanswered"])) + 1
    assert _points(after) - _points(before) == pytest.approx(50)
    assert _answers_metric(stack, "water", "3") == before_3 + 1
