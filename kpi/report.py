"""Monthly report (§4(3)): KPIs against the targets, charts, and improvement proposals
derived from the data, written as one self-contained HTML file and a PDF.

Charts are drawn once with matplotlib and saved twice: PNG (embedded in the HTML) and as
pages of the PDF. Japanese labels need a CJK font (Debian fonts-ipaexfont-gothic, installed
by `make deps`); without one, labels fall back to their English names so that no glyph is lost.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import html
import io
import json
import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from core.interactions import OutcomeClass
from store.models import CallRecord

from .errors import BadQuery
from .formulas import TARGETS, Kpi, compute
from .schemas import parse_time
from .service import KpiService, call_facts, interaction_facts
from .staffing import seats

CJK_FONTS = ("IPAexGothic", "IPAGothic", "Noto Sans CJK JP", "Noto Sans JP", "TakaoPGothic")
CLASS_NAMES = {OutcomeClass.COMPLETE: "complete", OutcomeClass.PARTIAL: "partly answered",
               OutcomeClass.TRANSFER_FAQ: "transfer (FAQ)", OutcomeClass.PUT_THROUGH:
               "put through", OutcomeClass.TRANSFER: "transfer (no info)",
               OutcomeClass.OTHER: "other (excluded)"}
CJK_FILES = ("ipaexg.ttf", "ipag.ttf", "NotoSansCJK-Regular.ttc")
HALF_HOUR_S = 1800.0


@functools.cache
def _cjk_font() -> str | None:
    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    found = known()
    if found is None:
        # matplotlib's font cache predates a font installed later: register it by file
        for path in font_manager.findSystemFonts():
            if Path(path).name in CJK_FILES:
                font_manager.fontManager.addfont(path)
        found = known()
    return found


@dataclass
class Proposal:
    kind: str
    text: str


@dataclass
class MonthData:
    month: str
    service: str | None
    total: Kpi
    by_service: dict[str, Kpi]
    by_day: dict[str, Kpi]
    by_hour: dict[str, Kpi]
    by_halfhour: dict[str, Kpi]
    topics: Counter[str]
    unresolved_topics: Counter[str]
    transfers: Counter[str]
    proposals: list[Proposal]


def _transfer_targets(rows: Sequence[CallRecord]) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in rows:
        for step in json.loads(r.transfers or "[]"):
            out[str(step.get("to", "?"))] += 1
    return out


def proposals(total: Kpi, by_halfhour: dict[str, Kpi], unresolved: Counter[str]
              ) -> list[Proposal]:
    """Where a target was missed: when, by how much, and what would have met it."""
    out: list[Proposal] = []
    aht = total.aht_s or 180.0
    for slot, k in by_halfhour.items():
        rate = k.answer_rate
        if rate is None or rate >= TARGETS["answer_rate"]:
            continue
        staffed = (k.handling_s + k.available_s) / HALF_HOUR_S
        need = seats(k.offered, aht).positions
        more = max(0, need - round(staffed))
        advice = (f"add {more} seat(s) in this half-hour" if more else
                  "staffing was enough on paper: check breaks, wrap-up and missed rings")
        out.append(Proposal("seats", (
            f"{slot}: answer rate {rate:.0%} ({k.answered}/{k.offered}); "
            f"{staffed:.1f} operator(s) staffed on average; Erlang C needs {need} for 80 % "
            f"answered within 9 s at AHT {aht:.0f} s -> {advice}.")))
    q = total.quick_answer_rate
    if q is not None and q < TARGETS["quick_answer_rate"]:
        out.append(Proposal("quick", (
            f"Quick-answer rate {q:.0%} is under 80 %: average speed of answer "
            f"{total.asa_s or 0:.0f} s; bring operators back from wrap-up sooner at peaks and "
            "shift breaks out of the half-hours listed above.")))
    f = total.fcr
    if f is not None and f < TARGETS["fcr"]:
        top = ", ".join(f"{t} ({n})" for t, n in unresolved.most_common(3)) or "-"
        out.append(Proposal("fcr", (
            f"First-contact resolution {f:.0%} is under 50 %: the topics handed on most "
            f"(put through / transferred) were {top}; add or extend FAQ entries for them.")))
    missing = total.answered - total.records
    if missing > 0:
        out.append(Proposal("records", (
            f"{missing} answered call(s) have no interaction record and count as unresolved "
            "in FCR: ask operators to complete the record during wrap-up.")))
    a = total.abandon_rate
    if a is not None and a > 1 - TARGETS["answer_rate"]:
        out.append(Proposal("abandon", (
            f"Abandon rate {a:.0%} (short abandons excluded): extend the event and congestion "
            "announcements while waiting, or offer a call-back.")))
    if not out:
        out.append(Proposal("ok", "All targets were met this month; keep the current staffing."))
    return out


async def month_data(service: KpiService, month: str, svc: str | None = None) -> MonthData:
    start, end = parse_time(month), parse_time(month, end=True)
    rows = await service.calls(start, end, svc)
    inter = await service.interactions(start, end, svc)
    spans = await service.spans(start, end) if not svc else []
    facts, ifacts = call_facts(rows), interaction_facts(inter)
    total, by_day = compute(facts, ifacts, spans, "day", service.short_abandon_s)
    _, by_hour = compute(facts, ifacts, spans, "hour_of_day", service.short_abandon_s)
    _, by_half = compute(facts, ifacts, spans, "halfhour", service.short_abandon_s)
    by_service = {s: compute([f for f in facts if f.service == s], ifacts)[0]
                  for s in sorted({f.service for f in facts})}
    topics: Counter[str] = Counter(i.topic for i in inter)
    for r in rows:
        if r.topic and r.id not in ifacts:
            topics[r.topic] += 1
    unresolved: Counter[str] = Counter(
        i.topic for i in inter
        if i.outcome_class in (OutcomeClass.PUT_THROUGH.value, OutcomeClass.TRANSFER.value))
    return MonthData(month, svc, total, by_service, by_day, by_hour, by_half, topics,
                     unresolved, _transfer_targets(rows),
                     proposals(total, by_half, unresolved))


def _label(text: str, cjk: bool) -> str:
    for cls, name in CLASS_NAMES.items():
        if text == cls.value:
            return f"{cls.value} {name}" if cjk else name
    return text if cjk or text.isascii() else text.encode("ascii", "replace").decode()


def charts(data: MonthData) -> list[tuple[str, Figure]]:
    cjk = _cjk_font()
    if cjk:
        plt.rcParams["font.family"] = [cjk, "DejaVu Sans"]
    figs: list[tuple[str, Figure]] = []

    def bars(title: str, groups: dict[str, Kpi], xlabel: str) -> None:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        keys = list(groups)
        x = range(len(keys))
        ax.bar([i - 0.2 for i in x], [g.offered for g in groups.values()], 0.4, label="offered")
        ax.bar([i + 0.2 for i in x], [g.answered for g in groups.values()], 0.4,
               label="answered")
        ax.set_xticks(list(x), [k[-5:] if xlabel == "day" else k for k in keys],
                      rotation=60 if len(keys) > 12 else 0, fontsize=8)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("calls")
        ax.legend()
        fig.tight_layout()
        figs.append((title, fig))

    bars("Calls by hour of day", data.by_hour, "hour (Asia/Tokyo)")
    bars("Calls by day", data.by_day, "day")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    names = ["answer_rate", "quick_answer_rate", "fcr"]
    values = [getattr(data.total, n) or 0.0 for n in names]
    ax.bar(["answer rate", "quick-answer rate (9 s)", "first-contact resolution"],
           [v * 100 for v in values],
           color=["tab:green" if v >= TARGETS[n] else "tab:red" for n, v in zip(names, values,
                                                                                  strict=True)])
    for i, n in enumerate(names):
        ax.hlines(TARGETS[n] * 100, i - 0.4, i + 0.4, colors="black", linestyles="dashed")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% (dashed: target)")
    ax.set_title("KPIs against targets")
    fig.tight_layout()
    figs.append(("KPIs against targets", fig))

    fig, ax = plt.subplots(figsize=(10, 4.5))
    top = data.topics.most_common(12)
    ax.barh([_label(t, cjk is not None) for t, _ in reversed(top)], [n for _, n in reversed(top)])
    ax.set_title("Topics")
    ax.set_xlabel("calls")
    fig.tight_layout()
    figs.append(("Topics", fig))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    classes = data.total.classes
    left.barh([_label(c, cjk is not None) for c in classes], list(classes.values()))
    left.set_title("Interaction outcomes")
    tt = data.transfers.most_common(10)
    right.barh([_label(t, cjk is not None) for t, _ in tt], [n for _, n in tt])
    right.set_title("Transfer targets")
    fig.tight_layout()
    figs.append(("Outcomes and transfers", fig))
    return figs


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def _kpi_row(name: str, k: Kpi) -> str:
    j = k.as_json()

    def pct(key: str) -> str:
        v = j[key]
        missed = j["met"].get(key) is False
        text = "-" if v is None else f"{v * 100:.1f} %"
        return f'<td class="{"miss" if missed else ""}">{text}</td>'

    return (f"<tr><td>{html.escape(name)}</td><td>{k.offered}</td><td>{k.answered}</td>"
            f"{pct('answer_rate')}{pct('quick_answer_rate')}{pct('fcr')}{pct('abandon_rate')}"
            f"<td>{j['asa_s'] if j['asa_s'] is not None else '-'}</td>"
            f"<td>{j['aht_s'] if j['aht_s'] is not None else '-'}</td></tr>")


def render_html(data: MonthData, figs: list[tuple[str, Figure]]) -> str:
    head = ("<tr><th></th><th>offered</th><th>answered</th><th>answer rate</th>"
            "<th>quick-answer</th><th>FCR</th><th>abandon</th><th>ASA s</th><th>AHT s</th></tr>")
    rows = [_kpi_row("total", data.total)]
    rows += [_kpi_row(s, k) for s, k in data.by_service.items()]
    days = [_kpi_row(d, k) for d, k in data.by_day.items()]
    imgs = "\n".join(f'<h2>{html.escape(t)}</h2><img alt="{html.escape(t)}" '
                     f'src="data:image/png;base64,{_png(f)}">' for t, f in figs)
    props = "\n".join(f"<li>{html.escape(p.text)}</li>" for p in data.proposals)
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<title>月次報告 {data.month} — madoguchi</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 8px;text-align:right}} .miss{{color:#b00;
font-weight:bold}} img{{max-width:100%}}</style></head><body>
<h1>月次報告 Monthly report {data.month}</h1>
<p>Service: {html.escape(data.service or "all")}. Targets: answer rate ≥ 80 %, quick-answer
rate (answered within 9 s of reaching the waiting line) ≥ 80 %, first-contact resolution ≥ 50 %.
Missed targets are in red.</p>
<table>{head}{''.join(rows)}</table>
<h2>改善提案 Improvement proposals</h2><ul>{props}</ul>
{imgs}
<h2>By day</h2><table>{head}{''.join(days)}</table>
</body></html>
"""


def render_pdf(data: MonthData, figs: list[tuple[str, Figure]], path: Path) -> None:
    with PdfPages(path) as pdf:
        cover = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
        t = data.total.as_json()
        lines = [f"Monthly report {data.month}  (service: {data.service or 'all'})", "",
                 f"offered {t['offered']}, answered {t['answered']}, abandoned {t['abandoned']}",
                 f"answer rate {_p(t['answer_rate'])} (target 80 %)",
                 f"quick-answer rate {_p(t['quick_answer_rate'])} (target 80 %)",
                 f"first-contact resolution {_p(t['fcr'])} (target 50 %)",
                 f"abandon rate {_p(t['abandon_rate'])}, ASA {t['asa_s']} s, AHT {t['aht_s']} s",
                 "", "Improvement proposals:"]
        for p in data.proposals:
            lines += textwrap.wrap("- " + p.text, 95, subsequent_indent="  ")
        cjk = _cjk_font() is not None
        cover.text(0.06, 0.96, "\n".join(_label(x, cjk) for x in lines[:60]), va="top",
                   family="monospace" if not cjk else None, fontsize=8)
        pdf.savefig(cover)
        plt.close(cover)
        for _, fig in figs:
            pdf.savefig(fig)
        info = pdf.infodict()
        info["Title"] = f"madoguchi monthly report {data.month}"


def _p(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f} %"


def _write(data: MonthData, out: Path, stem: str) -> tuple[Path, Path]:
    figs = charts(data)
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path, pdf_path = out / f"{stem}.html", out / f"{stem}.pdf"
        html_path.write_text(render_html(data, figs), encoding="utf-8")
        render_pdf(data, figs, pdf_path)
    finally:
        for _, fig in figs:
            plt.close(fig)
    return html_path, pdf_path


async def write_report(service: KpiService, month: str, out: Path,
                       svc: str | None = None) -> tuple[Path, Path]:
    """Write report-<month>[-<service>].html and .pdf into `out`."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", month):  # \d also takes "２０２４"
        raise BadQuery(f"month must be YYYY-MM, not {month!r}")
    data = await month_data(service, month, svc)
    stem = f"report-{month}" + (f"-{svc}" if svc else "")
    # drawing and file output block: keep them off the event loop
    return await asyncio.to_thread(_write, data, out, stem)
