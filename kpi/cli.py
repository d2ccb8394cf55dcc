"""Sub-commands: `madoguchi kpi`, `madoguchi staffing`, `madoguchi report --month`.

They open the database named by the config, like the engine does, and may run beside it."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.settings import Settings, load_settings
from store.db import Database

from .errors import KpiError
from .formulas import BUCKETS, DEFAULT_SHORT_ABANDON_S, TARGETS
from .http import kpi_report, period, staffing_report
from .service import KpiService, OtherChannels


def _pct(v: object) -> str:
    return "-" if v is None else f"{float(str(v)) * 100:.1f}%"


def _num(v: object) -> str:
    return "-" if v is None else f"{float(str(v)):.1f}"


def kpi_table(report: dict[str, Any]) -> str:
    """The KPIs as a terminal table; targets missed are marked with `!`."""
    head = (f"{'period':<16}{'offered':>8}{'answered':>9}{'answer':>9}{'quick':>9}"
            f"{'FCR':>9}{'abandon':>9}{'ASA s':>8}{'AHT s':>8}")
    lines = [f"KPIs {report['from']} → {report['to']}  service: {report['service'] or 'all'}  "
             f"targets: answer ≥ {TARGETS['answer_rate']:.0%}, quick (≤ 9 s) ≥ "
             f"{TARGETS['quick_answer_rate']:.0%}, FCR ≥ {TARGETS['fcr']:.0%}", head]

    def line(key: str, k: dict[str, Any]) -> str:
        met = k["met"]

        def mark(name: str) -> str:
            return _pct(k[name]) + ("!" if met[name] is False else " ")

        return (f"{key:<16}{k['offered']:>8}{k['answered']:>9}{mark('answer_rate'):>9}"
                f"{mark('quick_answer_rate'):>9}{mark('fcr'):>9}{_pct(k['abandon_rate']):>9}"
                f"{_num(k['asa_s']):>8}{_num(k['aht_s']):>8}")

    lines += [line(g["key"], g) for g in report["groups"]]
    lines.append(line("total", report["total"]))
    t = report["total"]
    lines.append(f"occupancy {_pct(t['occupancy'])}  answered without an interaction record: "
                 f"{t['without_record']}  (! = target missed)")
    c, st = report["satisfaction"]["citizen"], report["satisfaction"]["staff"]

    def score(s: dict[str, Any]) -> str:
        return _num(s["score"]) + ("!" if s["met"] is False else "")

    lines.append(f"satisfaction (points of 100): citizens {score(c)} (target ≥ "
                 f"{c['target']:.0f}; {c['answers']} answer(s) from {c['responses']} call(s)),"
                 f" staff {score(st)} (target ≥ {st['target']:.0f}; {st['ratings']} rating(s))")
    cb = report.get("callbacks")
    if cb and cb["requested"]:
        lines.append(f"callbacks: {cb['requested']} booked, {cb['done']} done, {cb['failed']} "
                     f"failed, {cb['expired']} expired, {cb['cancelled']} cancelled, "
                     f"{cb['pending']} pending; answer rate including callbacks "
                     f"{_pct(cb['answer_rate_with_callbacks'])}")
    return "\n".join(lines)


def _run(args: argparse.Namespace,
         job: Callable[[KpiService, Settings], Awaitable[str]]) -> int:
    settings = load_settings(Path(args.config), Path(args.state), args.env)

    async def main() -> int:
        db = Database(settings.database_url)
        try:
            await db.create_schema()
            channels: ChannelsFor | None = getattr(args, "other_channels", None)
            other = channels(db, settings) if channels else None
            service = KpiService(db, other_channels=other)
            extend = getattr(args, "extend_kpi", None)
            if extend is not None:  # the application's additions (bookings' counts)
                extend(service)
            print(await job(service, settings))
        except KpiError as exc:
            print(f"madoguchi: {exc}", flush=True)
            return 2
        finally:
            await db.close()
        return 0

    return asyncio.run(main())


def _query(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in (("from", args.start), ("to", args.end)) if v}


def cmd_kpi(args: argparse.Namespace) -> int:
    async def job(service: KpiService, _settings: Settings) -> str:
        start, end = period(_query(args), datetime.now(UTC))
        report = await kpi_report(service, start, end, args.service, args.by,
                                  args.short_abandon)
        return (json.dumps(report, ensure_ascii=False, indent=1) if args.json
                else kpi_table(report))
    return _run(args, job)


def cmd_staffing(args: argparse.Namespace) -> int:
    async def job(service: KpiService, _settings: Settings) -> str:
        start, end = period(_query(args), datetime.now(UTC))
        plan = await staffing_report(service, start, end, args.service, args.max_occupancy,
                                     args.shrinkage)
        if args.json:
            return json.dumps(plan, ensure_ascii=False, indent=1)
        lines = [f"seats for {plan['service_level']:.0%} answered within {plan['target_s']:.0f} s"
                 f" (Erlang C), AHT {plan['aht_s']} s, average of {plan['days']} day(s)",
                 f"{'half-hour':<10}{'calls':>8}{'seats':>7}{'SL':>8}{'occupancy':>11}"]
        for slot, s in plan["slots"].items():
            lines.append(f"{slot:<10}{s['calls']:>8}{s['positions']:>7}"
                         f"{_pct(s['service_level']):>8}{_pct(s['occupancy']):>11}")
        lines.append(f"peak: {plan['peak_positions']} seats")
        return "\n".join(lines)
    return _run(args, job)


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    async def job(service: KpiService, settings: Settings) -> str:
        names = {s.id: s.name for s in settings.services}
        html, pdf = await write_report(service, args.month, Path(args.out), args.service,
                                       lang=args.lang, names=names)
        return json.dumps({"html": str(html), "pdf": str(pdf)})
    return _run(args, job)


# the application's counts of channels outside the phone KPIs, for a command's database
ChannelsFor = Callable[[Database, Settings], OtherChannels]


def add_commands(sub: Any, other_channels: ChannelsFor | None = None,
                 extend: Callable[[KpiService], None] | None = None) -> None:
    """Called by madoguchi.cli.build_parser with its sub-parser collection; `other_channels`
    and `extend` give the report what other features count (FAXes, bookings)."""

    def period_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--from", dest="start", help="date, month (YYYY-MM) or ISO time "
                       "(Asia/Tokyo unless given); default: this month")
        p.add_argument("--to", dest="end", help="inclusive date or month, or an ISO time")
        p.add_argument("--service", help="one service (default: all)")
        p.add_argument("--json", action="store_true")

    p = sub.add_parser("kpi", help="service levels: answer, quick-answer, FCR, abandon, ASA, AHT")
    period_args(p)
    p.add_argument("--by", choices=list(BUCKETS))
    p.add_argument("--short-abandon", type=float, default=DEFAULT_SHORT_ABANDON_S,
                   help="hang-ups within this many seconds of waiting are short abandons")
    p.set_defaults(func=cmd_kpi, other_channels=other_channels)
    p = sub.add_parser("staffing", help="seats per half-hour for 80 %% within 9 s (Erlang C)")
    period_args(p)
    p.add_argument("--max-occupancy", type=float, default=1.0)
    p.add_argument("--shrinkage", type=float, default=0.0)
    p.set_defaults(func=cmd_staffing, other_channels=other_channels)
    p = sub.add_parser("report", help="monthly report with charts and proposals (HTML + PDF)")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--service", help="one service (default: all)")
    p.add_argument("--out", default="reports", help="folder for the HTML and PDF files")
    p.add_argument("--lang", choices=["ja", "en"], default="ja",
                   help="language of the report (default: Japanese)")
    p.set_defaults(func=cmd_report, other_channels=other_channels, extend_kpi=extend)
