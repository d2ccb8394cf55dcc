"""The monthly report's satisfaction section (REQUIREMENTS §9): the citizens' survey score and
the city staff's score against their targets, how the answers spread over the keys per
question, the score per operator, the calls with low answers (1 or 2) by time and operator
so they can be looked up and listened to, and the staff's comments. Never a caller's number.

The figures are gathered here in no language (`month_satisfaction`); the wording comes after,
as lines and table rows that report_content lays out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.satisfaction import KEYS, LOW_KEYS

from .report_text import Lang
from .satisfaction import (
    CITIZEN_TARGET,
    STAFF_TARGET,
    AnswerFacts,
    Citizen,
    RatingFacts,
    Staff,
    citizen,
    citizen_by,
    staff,
)

MAX_LOW_CALLS = 50  # listed one by one; the rest are counted


@dataclass(frozen=True)
class LowCall:
    """A call that answered 1 or 2 to at least one question."""

    at: datetime  # when the call came in
    agent_id: str | None
    service: str
    answers: tuple[tuple[str, int | None], ...]  # every question asked, in order


@dataclass
class MonthSatisfaction:
    citizen: Citizen = field(default_factory=Citizen)
    by_question: dict[str, Citizen] = field(default_factory=dict)  # in the order asked
    by_service: dict[str, Citizen] = field(default_factory=dict)
    by_operator: dict[str, Citizen] = field(default_factory=dict)
    low_calls: list[LowCall] = field(default_factory=list)
    staff: Staff = field(default_factory=Staff)


def month_satisfaction(answers: Sequence[AnswerFacts],
                       ratings: Sequence[RatingFacts]) -> MonthSatisfaction:
    order: dict[str, tuple[int, str]] = {}
    for a in answers:
        order[a.question] = min(order.get(a.question, (a.position, a.question)),
                                (a.position, a.question))
    per_question = citizen_by(answers, lambda a: a.question)
    by_call: dict[str, list[AnswerFacts]] = {}
    for a in answers:
        by_call.setdefault(a.call_id, []).append(a)
    low = [LowCall(asked[0].offered_at, asked[0].agent_id, asked[0].service,
                   tuple((a.question, a.answer) for a in sorted(asked,
                                                                key=lambda a: a.position)))
           for asked in by_call.values() if any(a.answer in LOW_KEYS for a in asked)]
    return MonthSatisfaction(
        citizen(answers),
        {q: per_question[q] for q in sorted(per_question, key=lambda q: order[q])},
        citizen_by(answers, lambda a: a.service),
        citizen_by(answers, lambda a: a.agent_id),
        sorted(low, key=lambda c: c.at), staff(ratings))


# ---- wording --------------------------------------------------------------------------------
def points(t: Lang, v: float | None) -> str:
    return "—" if v is None else t.pick(f"{v:.1f}点", f"{v:.1f}")


def target(t: Lang, v: float) -> str:
    return t.pick(f"{v:.0f}点以上", f"≥ {v:.0f}")


def _judged(t: Lang, v: float | None, goal: float) -> str:
    if v is None:
        return t.pick("判定不可", "cannot be judged")
    return t.pick("達成", "met") if v >= goal else t.pick("未達", "missed")


def summary(s: MonthSatisfaction, t: Lang) -> list[str]:
    """The two scores against their targets, for the report's summary."""
    c, st = s.citizen, s.staff
    return [
        t.pick(f"市民満足度 {points(t, c.score)}(目標 {target(t, CITIZEN_TARGET)}): "
               f"{_judged(t, c.score, CITIZEN_TARGET)}。回答 {c.answered}件"
               f"(アンケートに答えた通話 {len(c.responding)}件)",
               f"Citizen satisfaction {points(t, c.score)} points (target "
               f"{target(t, CITIZEN_TARGET)}): {_judged(t, c.score, CITIZEN_TARGET)}; "
               f"{c.answered} answer(s) from {len(c.responding)} call(s)"),
        t.pick(f"職員満足度 {points(t, st.score)}(目標 {target(t, STAFF_TARGET)}): "
               f"{_judged(t, st.score, STAFF_TARGET)}。評価 {len(st.ratings)}件",
               f"Staff satisfaction {points(t, st.score)} points (target "
               f"{target(t, STAFF_TARGET)}): {_judged(t, st.score, STAFF_TARGET)}; "
               f"{len(st.ratings)} rating(s)"),
    ]


def lines(s: MonthSatisfaction, t: Lang, name: Callable[[str], str]) -> list[str]:
    """The section's opening lines, besides the scores of the summary: by service, and what
    was not answered."""
    out: list[str] = []
    c = s.citizen
    if c.calls:
        out.append(t.pick(
            f"アンケートを聞いた通話 {len(c.calls)}件、未回答の質問 {c.unanswered}件"
            "(時間内にキーなし、または誤ったキーが2回)。",
            f"{len(c.calls)} call(s) heard the survey; {c.unanswered} question(s) were left "
            "unanswered (no key in time, or a wrong key twice)."))
    if len(s.by_service) > 1:
        parts = [f"{name(sid)} {points(t, k.score)}" for sid, k in s.by_service.items()]
        out.append(t.pick("サービス別の市民満足度: ", "Citizen satisfaction by service: ")
                   + t.join(parts))
    if not c.calls:
        out.append(t.pick("この月、アンケートを聞いた通話はありません。",
                          "No call heard the survey this month."))
    return out


Rows = tuple[list[str], list[list[str]], set[tuple[int, int]]]  # header, rows, missed cells


def answer_rows(s: MonthSatisfaction, t: Lang) -> Rows | None:
    """Per question and in total: how many answered each key, unanswered, the score."""
    if not s.citizen.calls:
        return None
    header = [t.pick("質問", "Question"), *(str(k) for k in KEYS),
              t.pick("未回答", "No answer"), t.pick("回答数", "Answers"),
              t.pick("点数", "Points")]
    rows = [[t.pick("目標", "Target"), *[""] * (len(KEYS) + 2), target(t, CITIZEN_TARGET)]]
    missed: set[tuple[int, int]] = set()
    items = [*((f"{i}. {q}", k) for i, (q, k) in enumerate(s.by_question.items(), 1)),
             (t.pick("全体", "Total"), s.citizen)]
    for label, k in items:
        if k.score is not None and k.score < CITIZEN_TARGET:
            missed.add((len(rows), len(header) - 1))
        rows.append([label, *(str(k.distribution[key]) for key in KEYS), str(k.unanswered),
                     str(k.answered), points(t, k.score)])
    return header, rows, missed


def operator_rows(s: MonthSatisfaction, t: Lang) -> Rows | None:
    if not s.by_operator:
        return None
    header = [t.pick("オペレーター", "Operator"), t.pick("回答した通話", "Calls"),
              t.pick("回答数", "Answers"), t.pick("低評価(1・2)", "Low (1-2)"),
              t.pick("点数", "Points")]
    rows: list[list[str]] = []
    missed: set[tuple[int, int]] = set()
    for agent, k in s.by_operator.items():
        if k.score is not None and k.score < CITIZEN_TARGET:
            missed.add((len(rows), len(header) - 1))
        rows.append([agent, str(len(k.responding)), str(k.answered), str(k.low),
                     points(t, k.score)])
    return header, rows, missed


def low_lines(s: MonthSatisfaction, t: Lang, name: Callable[[str], str]) -> list[str]:
    """One line per call with a low answer: when, which operator and service, the answers."""
    if not s.low_calls:
        return [t.pick("低評価(1・2)の回答はありません。", "No answer was 1 or 2.")]
    out = []
    for call in s.low_calls[:MAX_LOW_CALLS]:
        given = t.join(f"{q} {'—' if v is None else v}" for q, v in call.answers)
        who = call.agent_id or "—"
        out.append(t.pick(f"{t.time(call.at)} オペレーター {who}({name(call.service)}): {given}",
                          f"{t.time(call.at)}, operator {who} ({name(call.service)}): {given}"))
    rest = len(s.low_calls) - MAX_LOW_CALLS
    if rest > 0:
        out.append(t.pick(f"ほか {rest}件", f"and {rest} more call(s)"))
    return out


def comment_lines(s: MonthSatisfaction, t: Lang) -> list[str]:
    """The staff's comments with their points, without who wrote them."""
    out = [f"{points(t, r.points)}: {r.comment}" if t.ja else
           f"{points(t, r.points)} points: {r.comment}"
           for r in s.staff.ratings if r.comment]
    if not out:
        out = [t.pick("この月の職員のコメントはありません。", "No staff comment this month.")]
    return out
