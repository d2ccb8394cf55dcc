"""The satisfaction scores (REQUIREMENTS §9): a 1-5 answer's points, the citizens' mean over
answered questions per period, service and operator, the staff's monthly mean, and the
monthly report's satisfaction section (scores against 70 and 80 points, the answers'
spread, low answers by time and operator without a caller's number, staff comments)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.satisfaction import points, rating_points, score
from kpi.report import month_data, write_report
from kpi.report_satisfaction import MAX_LOW_CALLS, low_lines, month_satisfaction
from kpi.report_text import Lang
from kpi.satisfaction import (
    AnswerFacts,
    RatingFacts,
    by_period,
    citizen,
    citizen_by,
    low_answers,
    staff,
)
from kpi.schemas import months_of
from kpi.service import KpiService
from store.db import Database
from store.models import CallRecord, StaffRating, SurveyAnswer

DAY = datetime(2026, 11, 4, 1, 15, tzinfo=UTC)  # 10:15 Tokyo
NAMES = {"city": "市コールセンター", "water": "上下水道局代表"}


def pdf_text(path: Path) -> str:
    """The PDF's text (poppler-utils, a dependency of the tests), its lines joined again."""
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext missing: install poppler-utils (make deps)")
    out = subprocess.run([tool, str(path), "-"], check=True, capture_output=True, text=True)
    return "".join(line.strip() for line in out.stdout.splitlines())


def a(call: str, value: int | None, position: int = 1, agent: str | None = "7001",
      at: datetime = DAY, service: str = "city", question: str = "") -> AnswerFacts:
    q = question or ("overall", "clarity", "speed")[position - 1]
    return AnswerFacts(call, service, agent, q, position, value, at)


# ---- points and scores ----------------------------------------------------------------------

def test_a_key_is_worth_a_quarter_of_the_scale_per_step() -> None:
    assert [points(k) for k in range(1, 6)] == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert rating_points(4, 5) == 75.0 and rating_points(83, 100) == 83.0
    for bad in ((0, 5), (6, 5), (101, 100), (3, 10)):
        with pytest.raises(ValueError):
            rating_points(*bad)
    with pytest.raises(ValueError):
        points(0)
    assert score([]) is None and score([75.0, 100.0]) == 87.5


def test_the_citizens_score_is_the_mean_over_answered_questions() -> None:
    c = citizen([a("c1", 4, 1), a("c1", 5, 2)])
    assert c.score == 87.5 and c.met is True  # (3/4 + 4/4) / 2 × 100
    # unanswered questions are left out, and counted; every answer counts, not every call
    c = citizen([a("c1", 4, 1), a("c1", 5, 2), a("c2", 1, 1), a("c2", None, 2),
                 a("c3", None, 1)])
    assert c.score == pytest.approx((75 + 100 + 0) / 3)
    assert (c.answered, c.unanswered, len(c.responding), len(c.calls), c.low) == (3, 2, 2, 3, 1)
    assert c.distribution == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    assert c.met is False
    assert citizen([a("c1", 3, 1), a("c2", 4, 1)]).score == 62.5
    assert citizen([a("c1", None)]).score is None and citizen([]).met is None


def test_exactly_the_target_is_met() -> None:
    # 70 points: e.g. answers 4, 4, 4, 4, 2, 5, 4, 3, 4, 4 → mean key 3.8 → 70
    values = [4, 4, 4, 4, 2, 5, 4, 3, 4, 4]
    c = citizen([a(f"c{i}", v) for i, v in enumerate(values)])
    assert c.score == pytest.approx(70.0) and c.met is True
    st = staff([RatingFacts("2026-11", 80.0, ""), RatingFacts("2026-11", 80.0, "")])
    assert st.score == 80.0 and st.met is True
    assert staff([RatingFacts("2026-11", 79.0, "")]).met is False and staff([]).score is None


def test_per_operator_service_and_city_day() -> None:
    late = datetime(2026, 11, 4, 15, 30, tzinfo=UTC)  # 00:30 on 5 November in Tokyo
    facts = [a("c1", 5), a("c2", 1, agent="7002", service="water", at=late),
             a("c3", 3, agent=None)]
    assert {k: c.score for k, c in citizen_by(facts, lambda f: f.agent_id).items()} == {
        "7001": 100.0, "7002": 0.0}  # an unknown operator is in no operator's row
    assert list(citizen_by(facts, lambda f: f.service)) == ["city", "water"]
    days = citizen_by(facts, by_period("day"))
    assert {k: c.answered for k, c in days.items()} == {"2026-11-04": 2, "2026-11-05": 1}
    assert [f.call_id for f in low_answers(facts)] == ["c2"]


def test_the_months_a_period_touches_in_city_time() -> None:
    start = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)  # 1 November 00:00 Tokyo
    assert months_of(start, start + timedelta(days=1)) == ["2026-11"]
    assert months_of(start - timedelta(seconds=1), start + timedelta(days=1)) == [
        "2026-10", "2026-11"]
    assert months_of(start, start + timedelta(days=61)) == ["2026-11", "2026-12"]
    assert months_of(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)) == [
        "2026-12", "2027-01", "2027-02"]  # 1 February 09:00 Tokyo is in February


def test_the_month_lists_each_low_call_with_all_its_answers() -> None:
    facts = [a("c2", 2, 1, at=DAY + timedelta(hours=1)), a("c2", 4, 2, at=DAY + timedelta(hours=1)),
             a("c1", 5, 2), a("c1", 1, 1), a("c3", 5, 1, at=DAY - timedelta(hours=1))]
    s = month_satisfaction(facts, [])
    assert list(s.by_question) == ["overall", "clarity"]
    assert [(c.at, c.answers) for c in s.low_calls] == [
        (DAY, (("overall", 1), ("clarity", 5))),
        (DAY + timedelta(hours=1), (("overall", 2), ("clarity", 4)))]


# ---- the monthly report ---------------------------------------------------------------------

def call_row(n: int, at: datetime, agent: str) -> CallRecord:
    ans = at + timedelta(seconds=20)
    return CallRecord(id=f"c{n}", asterisk_uniqueid=f"u{n}", service="city", did="1000",
                      caller="0312345678", language="ja", flow_path="", topic="garbage",
                      queue="city", agent_id=agent, offered_at=at, queued_at=at,
                      ring_at=None, answered_at=ans, ended_at=ans + timedelta(seconds=90),
                      outcome="answered", wait_s=20, talk_s=90, transfers="[]")


def answer_row(n: int, at: datetime, agent: str, question: str, position: int,
               value: int | None) -> SurveyAnswer:
    return SurveyAnswer(call_id=f"c{n}", agent_id=agent, service="city", language="ja",
                        question=question, position=position, answer=value,
                        answered_at=at + timedelta(minutes=2), call_offered_at=at)


@pytest.fixture
async def kpi(tmp_path: Path) -> AsyncIterator[KpiService]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await db.create_schema()
    later = DAY + timedelta(days=1, hours=3)  # 5 November 13:15 Tokyo
    async with db.sessions() as s, s.begin():
        s.add_all([call_row(1, DAY, "7001"), call_row(2, later, "7002"),
                   answer_row(1, DAY, "7001", "overall", 1, 4),
                   answer_row(1, DAY, "7001", "clarity", 2, 5),
                   answer_row(2, later, "7002", "overall", 1, 2),
                   answer_row(2, later, "7002", "clarity", 2, None),
                   StaffRating(month="2026-11", points=75.0, given=4, scale=5,
                               comment="取次が早くなった", rater="city-staff-a",
                               created_at=DAY),
                   StaffRating(month="2026-11", points=70.0, given=70, scale=100,
                               comment="", rater="city-staff-b", created_at=DAY),
                   StaffRating(month="2026-10", points=10.0, given=10, scale=100,
                               comment="先月の評価", rater="city-staff-a", created_at=DAY)])
    yield KpiService(db, clock=lambda: datetime(2026, 12, 1, 3, 5, tzinfo=UTC))
    await db.close()


async def test_the_report_shows_both_scores_the_spread_and_the_low_calls(
        kpi: KpiService, tmp_path: Path) -> None:
    data = await month_data(kpi, "2026-11", names=NAMES)
    s = data.satisfaction
    assert s.citizen.score == pytest.approx((75 + 100 + 25) / 3)
    assert s.staff.score == 72.5  # October's rating is not November's
    assert [p.kind for p in data.proposals][-2:] == ["citizen", "staff"]

    html_path, pdf_path = await write_report(kpi, "2026-11", tmp_path / "out", names=NAMES)
    page = html_path.read_text(encoding="utf-8")
    assert "<h2>満足度</h2>" in page
    assert "市民満足度 66.7点(目標 70点以上): 未達。回答 3件(アンケートに答えた通話 2件)" in page
    assert "職員満足度 72.5点(目標 80点以上): 未達。評価 2件" in page
    # the spread per question, with the score under its target marked
    assert "<th>質問</th><th>1</th><th>2</th><th>3</th><th>4</th><th>5</th>" in page
    assert ("<tr><td>1. overall</td><td>0</td><td>1</td><td>0</td><td>1</td><td>0</td>"
            "<td>0</td><td>2</td><td class=\"miss\">50.0点</td></tr>") in page
    assert "<td>7002</td><td>1</td><td>1</td><td>1</td><td class=\"miss\">25.0点</td>" in page
    # the low call by time and operator; never the caller's number, nor who rated
    assert "2026年11月5日 13:15 オペレーター 7002(市コールセンター): overall 2、clarity —" in page
    assert "0312345678" not in page and "city-staff-a" not in page
    assert "75.0点: 取次が早くなった" in page and "先月の評価" not in page
    assert "市民満足度 66.7点が目標の70点を下回りました" in page
    assert "市民満足度 = 通話後アンケートで回答された質問の点数の平均" in page
    text = pdf_text(pdf_path)
    assert "満足度" in text and "オペレーター別の市民満足度" in text
    assert "0312345678" not in text and "city-staff-a" not in text

    html_en, _ = await write_report(kpi, "2026-11", tmp_path / "out", names=NAMES, lang="en")
    page = html_en.read_text(encoding="utf-8")
    assert "Citizen satisfaction 66.7 points (target ≥ 70): missed; 3 answer(s) from 2 call(s)" \
        in page
    assert "operator 7002 (市コールセンター): overall 2, clarity —" in page
    assert "Citizen satisfaction by operator" in page


async def test_a_month_without_survey_or_ratings_says_so(kpi: KpiService,
                                                         tmp_path: Path) -> None:
    html_path, _ = await write_report(kpi, "2026-09", tmp_path / "out", names=NAMES)
    page = html_path.read_text(encoding="utf-8")
    assert "市民満足度 —(目標 70点以上): 判定不可" in page
    assert "この月、アンケートを聞いた通話はありません。" in page
    assert "低評価(1・2)の回答はありません。" in page
    assert "この月の職員のコメントはありません。" in page
    assert "<th>質問</th>" not in page


def test_only_the_first_low_calls_are_listed_one_by_one() -> None:
    facts = [a(f"c{i:03d}", 1, at=DAY + timedelta(minutes=i)) for i in range(MAX_LOW_CALLS + 3)]
    lines = low_lines(month_satisfaction(facts, []), Lang("en"), lambda s: s)
    assert len(lines) == MAX_LOW_CALLS + 1 and lines[-1] == "and 3 more call(s)"
