"""The monthly report in one language, laid out once for both the HTML and the PDF: title
lines, summary, KPI tables (services by their configured names), proposals, charts, notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import report_satisfaction as sat
from .formulas import TARGETS, CallbackKpi, Kpi
from .report_charts import Chart, charts, month_days
from .report_data import MonthData
from .report_notes import notes, period
from .report_text import Lang

COLUMNS = ("offered", "answered", "answer_rate", "quick_answer_rate", "fcr", "abandoned",
           "abandon_rate", "overflow", "asa", "aht")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    missed: set[tuple[int, int]] = field(default_factory=set)  # (row, column) under target

    def add(self, label: str, k: Kpi, t: Lang) -> None:
        cells = {"offered": str(k.offered), "answered": str(k.answered),
                 "abandoned": str(k.abandoned), "overflow": str(k.overflow),
                 "answer_rate": t.pct(k.answer_rate),
                 "quick_answer_rate": t.pct(k.quick_answer_rate), "fcr": t.pct(k.fcr),
                 "abandon_rate": t.pct(k.abandon_rate), "asa": t.seconds(k.asa_s),
                 "aht": t.seconds(k.aht_s)}
        row = len(self.rows)
        for name, target in TARGETS.items():
            v = getattr(k, name)
            if v is not None and v < target:
                self.missed.add((row, COLUMNS.index(name) + 1))
        self.rows.append([label, *(cells[c] for c in COLUMNS)])


def _table(first: str, t: Lang) -> Table:
    heads = {"offered": t("col_offered"), "answered": t("col_answered"),
             "abandoned": t("col_abandoned"), "overflow": t("col_overflow"),
             "asa": t("col_asa"), "aht": t("col_aht"),
             **{n: t(n) for n in ("answer_rate", "quick_answer_rate", "fcr", "abandon_rate")}}
    return Table([first, *(heads[c] for c in COLUMNS)])


@dataclass
class Satisfaction:
    """The satisfaction section (report_satisfaction words it)."""

    lines: list[str]
    answers: Table | None  # None: no call heard the survey
    operators: Table | None
    low: list[str]
    comments: list[str]


def _sat_table(rows: sat.Rows | None) -> Table | None:
    return None if rows is None else Table(rows[0], rows[1], rows[2])


def satisfaction(data: MonthData, t: Lang) -> Satisfaction:
    s = data.satisfaction
    return Satisfaction(sat.lines(s, t, data.service_name), _sat_table(sat.answer_rows(s, t)),
                        _sat_table(sat.operator_rows(s, t)),
                        sat.low_lines(s, t, data.service_name), sat.comment_lines(s, t))


@dataclass
class Content:
    lang: str
    title: str
    doc_title: str
    meta: list[str]
    summary: list[str]
    levels: Table
    legend: str
    proposals: list[str]
    charts: list[Chart]
    by_day: Table | None  # None: no calls, `no_days` says so
    no_days: str
    charts_follow: str
    bullet: str
    notes: list[str]
    headings: dict[str, str]
    satisfaction: Satisfaction | None = None
    bookings: Table | None = None  # None: not in this report (one service, or no bookings)
    no_bookings: str = ""


def summary(k: Kpi, t: Lang) -> list[str]:
    lines = [t("counts", offered=k.offered, answered=k.answered, abandoned=k.abandoned,
               overflow=k.overflow)]
    if k.offered == 0:
        return [*lines, t("no_calls")]
    met, missed, unjudged = [], [], []
    for name, target in TARGETS.items():
        v = getattr(k, name)
        if v is None:
            unjudged.append(t(name))
        elif v >= target:
            met.append(f"{t(name)} {t.pct(v)}")
        else:
            missed.append(f"{t(name)} {t.pct(v)}" + t.pick(f"(目標 {t.target(target)})",
                                                           f" (target {t.target(target)})"))
    if missed:
        lines.append(t("missed", items=t.join(missed)))
    if met:
        lines.append(t("met", items=t.join(met)))
    if unjudged:
        lines.append(t("unjudged", names=t.join(unjudged)))
    return lines


def callback_lines(c: CallbackKpi, t: Lang) -> list[str]:
    """Beside the answer rate, when the month's callers booked callbacks (notes: how)."""
    if not c.requested:
        return []
    mean = c.mean_to_reach_s
    return [t("callbacks", requested=c.requested, done=c.done, failed=c.failed,
              expired=c.expired, pending=c.pending,
              mean="—" if mean is None else t.pick(f"{mean / 60:.1f}分", f"{mean / 60:.1f} min"),
              rate=t.pct(c.answer_rate_with_callbacks))]


BOOKING_STATUSES = ("confirmed", "waiting", "applied", "lost", "cancelled")


def bookings(data: MonthData, t: Lang) -> Table | None:
    """Bookings made in the month by channel: how many, in each status."""
    if data.bookings is None:
        return None
    table = Table([t("bk_channel"), *(t(f"bk_{s}") for s in BOOKING_STATUSES)])
    for channel in ("web", "desk", "ivr"):
        counts = data.bookings.get(channel, {})
        if counts:
            table.rows.append([t(f"bk_{channel}"),
                               *(str(counts.get(s, 0)) for s in BOOKING_STATUSES)])
    return table


def content(data: MonthData, t: Lang) -> Content:
    levels = _table(t("col_group"), t)
    target = {n: t.target(v) for n, v in TARGETS.items()}
    levels.rows.append([t("row_target"), *(target.get(c, "") for c in COLUMNS)])
    levels.add(t("row_total"), data.total, t)
    for sid, k in data.by_service.items():
        levels.add(data.service_name(sid), k, t)
    by_day = None
    if data.total.offered:
        by_day = _table(t("col_day"), t)
        for d in month_days(data):
            by_day.add(t.day(d), data.by_day.get(d.isoformat(), Kpi()), t)
    month = t.month(data.month)
    service = data.service_name(data.service) if data.service else t("all_services")
    return Content(
        lang=t.code, title=t("title", month=month), doc_title=t("doc_title", month=month),
        meta=[t("scope", service=service), period(data, t),
              t("generated", at=t.time(data.generated_at))],
        summary=(summary(data.total, t) + callback_lines(data.callbacks, t)
                 + sat.summary(data.satisfaction, t)), levels=levels,
        legend=t("legend"), satisfaction=satisfaction(data, t),
        proposals=[p.text(t) for p in data.proposals], charts=charts(data, t), by_day=by_day,
        no_days=t("e_calls"), charts_follow=t("charts_follow"),
        bullet=t("bullet"), notes=notes(data, t),
        bookings=bookings(data, t), no_bookings=t("bk_none"),
        headings={h: t(f"h_{h}") for h in ("summary", "levels", "proposals", "charts",
                                           "by_day", "notes", "satisfaction", "sat_answers",
                                           "sat_operators", "sat_low", "sat_comments",
                                           "bookings")})
