"""The monthly report's charts, drawn once with matplotlib for both the HTML (PNG) and the PDF.

A chart with nothing to show is not drawn: it carries the sentence that says so instead.
Counts get integer axes. Call within matplotlib.rc_context(report_font.report_rc())."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core.interactions import OutcomeClass

from .formulas import TARGETS, Kpi
from .report_data import MonthData
from .report_text import Lang

SIZE = (10, 4.5)


@dataclass
class Chart:
    key: str  # hours | days | kpis | topics | outcomes | transfers
    title: str
    figure: Figure | None  # None: nothing to draw
    empty: str = ""  # what the report says instead

    def png(self) -> str:
        assert self.figure is not None
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=90)
        return base64.b64encode(buf.getvalue()).decode()


def _counts(ax: Axes, axis: str) -> None:
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True))


def _calls(title: str, labels: Sequence[str], groups: Sequence[Kpi], xlabel: str,
           t: Lang) -> Figure:
    fig, ax = plt.subplots(figsize=SIZE)
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [g.offered for g in groups], 0.4, label=t("s_offered"))
    ax.bar([i + 0.2 for i in x], [g.answered for g in groups], 0.4, label=t("s_answered"))
    ax.set_xticks(list(x), list(labels), fontsize=8)
    _counts(ax, "y")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(t("y_calls"))
    ax.legend()
    fig.tight_layout()
    return fig


def _barh(title: str, items: Sequence[tuple[str, int]], xlabel: str) -> Figure:
    fig, ax = plt.subplots(figsize=SIZE)
    ax.barh([name for name, _ in reversed(items)], [n for _, n in reversed(items)], 0.6)
    ax.set_ylim(-0.7, max(len(items), 5) - 0.3)  # a lone bar stays a bar, not a block
    _counts(ax, "x")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def _kpis(title: str, total: Kpi, t: Lang) -> Figure | None:
    names = list(TARGETS)
    values = [getattr(total, n) for n in names]
    if all(v is None for v in values):
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    for i, (n, v) in enumerate(zip(names, values, strict=True)):
        ax.hlines(TARGETS[n] * 100, i - 0.4, i + 0.4, colors="black", linestyles="dashed")
        if v is None:  # no bar: a zero would read as a measured 0 %
            ax.text(i, 4, t("cannot_judge"), ha="center")
            continue
        ax.bar(i, v * 100, 0.6, color="tab:green" if v >= TARGETS[n] else "tab:red")
        ax.text(i, v * 100 + 1.5, t.pct(v), ha="center")
    ax.set_xticks(range(len(names)), [t(n) for n in names])
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, 105)
    ax.set_ylabel(t("y_pct"))
    ax.set_title(title)
    fig.tight_layout()
    return fig


def month_days(data: MonthData) -> list[date]:
    """Every day of the month the report covers (up to its making, for the current month)."""
    first, last = data.start.date(), data.last_day
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]


def charts(data: MonthData, t: Lang) -> list[Chart]:
    out: list[Chart] = []
    calls = data.total.offered > 0

    title = t("c_hours")
    hours = sorted(int(h) for h, k in data.by_hour.items() if k.offered)
    fig = None
    if calls and hours:
        span = range(hours[0], hours[-1] + 1)  # quiet hours in between stay visible
        fig = _calls(title, [t("hour_tick", h=h) for h in span],
                     [data.by_hour.get(f"{h:02d}", Kpi()) for h in span], t("x_hour"), t)
    out.append(Chart("hours", title, fig, t("e_calls")))

    title = t("c_days")
    days = month_days(data)
    fig = None
    if calls and days:
        fig = _calls(title, [str(d.day) for d in days],
                     [data.by_day.get(d.isoformat(), Kpi()) for d in days],
                     t("x_day", month=t.month(data.month)), t)
    out.append(Chart("days", title, fig, t("e_calls")))

    title = t("c_kpis")
    out.append(Chart("kpis", title, _kpis(title, data.total, t), t("e_kpis")))

    title = t("c_topics")
    top = data.topics.most_common(12)
    out.append(Chart("topics", title, _barh(title, top, t("y_calls")) if top else None,
                     t("e_topics")))

    title = t("c_outcomes")
    order = {c.value: i for i, c in enumerate(OutcomeClass)}
    outcomes = sorted(data.outcomes.items(),
                      key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][1] or ""))
    items = [(t.outcome(cls, kind), n) for (cls, kind), n in outcomes]
    out.append(Chart("outcomes", title, _barh(title, items, t("x_records")) if items else None,
                     t("e_outcomes")))

    title = t("c_transfers")
    tt = [(t("to_number", number=to), n) for to, n in data.transfers.most_common(10)]
    out.append(Chart("transfers", title, _barh(title, tt, t("x_transfers")) if tt else None,
                     t("e_transfers")))
    return out


def close(charts: Sequence[Chart]) -> None:
    for c in charts:
        if c.figure is not None:
            plt.close(c.figure)
