"""Monthly report: HTML and PDF with charts and proposals derived from the data, in Japanese
(default) or English; the `kpi`, `staffing` and `report` commands.

The PDF's text and fonts are read back with poppler-utils (pdftotext, pdffonts: make deps)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib
import pytest
from matplotlib.ticker import MaxNLocator

from core.settings import load_settings
from kpi import report_font
from kpi.errors import BadQuery, ReportFontMissing
from kpi.formulas import Kpi
from kpi.proposals import proposals
from kpi.report import month_data, write_report
from kpi.report_charts import charts, close
from kpi.report_content import callback_lines
from kpi.report_font import report_rc
from kpi.report_notes import notes
from kpi.report_pdf import wrap
from kpi.report_text import Lang
from kpi.service import KpiService
from madoguchi.cli import main
from store.db import Database
from store.models import AgentStateChange, CallbackRow, CallRecord, InteractionRecord

ROOT = Path(__file__).resolve().parents[1]
DAY = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)  # 09:00 Tokyo
NAMES = {"city": "市コールセンター", "water": "上下水道局代表"}
JA_SECTIONS = ("概要", "サービス指標", "改善提案", "グラフ", "日別の実績", "注記")
EN_SECTIONS = ("Summary", "Service levels", "Improvement proposals", "Charts", "By day",
               "Notes", "Monthly report")
TRANSFER = ('[{"from_agent": "7001", "to": "8123", "kind": "blind", '
            '"at": "2026-11-04T00:01:00+00:00"}]')


def call(n: int, at: datetime, answered: bool, wait: float, talk: float = 120,
         transfers: bool = True) -> CallRecord:
    queued = at + timedelta(seconds=15)
    ans = queued + timedelta(seconds=wait) if answered else None
    end = ans + timedelta(seconds=talk) if ans else queued + timedelta(seconds=wait)
    return CallRecord(id=f"c{n}", asterisk_uniqueid=f"u{n}", service="city", did="1000",
                      caller="0312345678", language="ja", flow_path="", topic="garbage",
                      queue="city", agent_id="7001" if ans else None, offered_at=at,
                      queued_at=queued, ring_at=None, answered_at=ans, ended_at=end,
                      outcome="answered" if ans else "abandoned_waiting", wait_s=wait,
                      talk_s=talk if ans else None,
                      transfers=TRANSFER if n == 1 and transfers else "[]")


async def seed(db: Database, transfers: bool = True) -> None:
    """09:00–09:30: 10 calls, 5 answered, 1 operator staffed. 10:00: 4 calls, all answered."""
    await db.create_schema()
    rows = [call(i, DAY + timedelta(minutes=3 * i), i % 2 == 0, 5 if i % 4 else 20,
                 transfers=transfers) for i in range(10)]
    rows += [call(20 + i, DAY + timedelta(hours=1, minutes=5 * i), True, 3) for i in range(4)]
    inter = [InteractionRecord(call_id=r.id, agent_id="7001", service="city", topic="garbage",
                               outcome_class=cls, other_kind=None, text="", faq_refs="[]",
                               created_at=r.ended_at, call_offered_at=r.offered_at)
             for r, cls in zip([r for r in rows if r.answered_at],
                               "取次 転送 取次 完了 転送 取次 完了 転送 転送".split(),
                               strict=True)]
    states = [AgentStateChange(agent_id="7001", event="login", old_state="logged_out",
                               new_state="available", reason=None, at=DAY),
              AgentStateChange(agent_id="7001", event="logout", old_state="available",
                               new_state="logged_out", reason=None,
                               at=DAY + timedelta(hours=2))]
    async with db.sessions() as s, s.begin():
        s.add_all([*rows, *inter, *states])


def pdf_text(path: Path, sep: str = "") -> str:
    """The PDF's text with its wrapped lines joined again (Japanese: without a space)."""
    text = _poppler("pdftotext", str(path), "-")
    return sep.join(line.strip() for line in text.splitlines())


def pdf_fonts(path: Path) -> str:
    return _poppler("pdffonts", str(path))


def _poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:  # a dependency of the tests, like PostgreSQL
        pytest.fail(f"{tool} missing: install poppler-utils (make deps)")
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[KpiService]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await seed(db)
    yield KpiService(db, clock=lambda: datetime(2026, 12, 1, 3, 5, tzinfo=UTC))
    await db.close()


async def test_month_data_and_proposals(service: KpiService, tmp_path: Path) -> None:
    data = await month_data(service, "2026-11")
    assert (data.total.offered, data.total.answered) == (14, 9)
    low = data.by_halfhour["2026-11-04T09:00"]
    assert (low.offered, low.answered) == (10, 5)
    en = Lang("en")
    seats = [p.text(en) for p in data.proposals if p.kind == "seats"]
    assert len(seats) == 1 and seats[0].startswith(
        "Wed 4 Nov, 09:00–09:30: answer rate 50.0% (5 of 10 answered)")
    assert "1.0 operator(s) staffed" in seats[0] and "add 1 seat(s)" in seats[0]
    fcr = next(p.text(en) for p in data.proposals if p.kind == "fcr")
    assert "garbage (7)" in fcr  # 2 resolved of 9: the handed-on topic is named
    assert data.transfers == {"8123": 1}
    assert data.outcomes == {("取次", None): 3, ("転送", None): 4, ("完了", None): 2}

    html_path, pdf_path = await write_report(service, "2026-11", tmp_path / "out", lang="en")
    assert pdf_path.name == "report-2026-11-en.pdf"
    page = html_path.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 6
    assert '<html lang="en">' in page and "Improvement proposals" in page
    assert "add 1 seat(s)" in page
    assert pdf_path.read_bytes().startswith(b"%PDF")


async def test_callbacks_in_the_month(service: KpiService) -> None:
    asked = DAY + timedelta(hours=3)
    booking = call(40, DAY + timedelta(hours=3), False, 60)
    booking.outcome = "callback_requested"
    reached = call(41, asked + timedelta(minutes=19, seconds=45), True, 0)  # answered +20 min
    reached.outcome, reached.callback_of, reached.queued_at = "callback", "c40", None
    states = {"c40": "done", "c42": "failed"}
    other = call(42, DAY + timedelta(hours=3, minutes=5), False, 30)
    other.outcome = "callback_requested"
    rows = [CallbackRow(id=f"b{c}", call_id=c, service="city", queue="city",
                        number=f"090123400{n}", language="ja", topic="garbage", priority=0,
                        queued_at=asked, requested_at=asked, state=st, attempts=1,
                        not_before=None, last_status="", agent_id="7001",
                        result_call_id=None, updated_at=asked)
            for n, (c, st) in enumerate(states.items())]
    async with service.db.sessions() as s, s.begin():
        s.add_all([booking, reached, other, *rows])
    data = await month_data(service, "2026-11")
    assert (data.total.offered, data.total.answered, data.total.abandoned) == (16, 9, 5)
    c = data.callbacks
    assert (c.requested, c.done, c.failed, c.pending) == (2, 1, 1, 0)
    assert data.topics["garbage"] == 14 + 2  # the callback call repeats c40's topic: not again
    ja, en = Lang("ja"), Lang("en")
    assert callback_lines(c, ja) == [
        "折り返し電話: 予約 2件(完了 1件、不成立 1件、期限切れ 0件、未完了 0件)、予約から"
        "応答までの平均 20.0分、折り返しを含む応答率 62.5%"]
    assert callback_lines(c, en) == [
        "Callbacks: 2 booked (1 done, 1 failed, 0 expired, 0 pending); booking to the "
        "citizen's answer 20.0 min on average; answer rate including callbacks 62.5%"]
    assert any("(応答件数 + 折り返し完了件数)÷ 着信件数" in n for n in notes(data, ja))
    assert any("Answer rate including callbacks = (answered + callbacks done) ÷ offered" in n
               for n in notes(data, en))
    quiet = await month_data(service, "2026-10")
    assert callback_lines(quiet.callbacks, ja) == []
    assert not any("Answer rate including callbacks" in n for n in notes(quiet, en))


async def test_the_report_is_japanese_by_default_with_the_font_embedded(
        service: KpiService, tmp_path: Path) -> None:
    html_path, pdf_path = await write_report(service, "2026-11", tmp_path, names=NAMES)
    assert pdf_path.name == "report-2026-11.pdf"
    text = pdf_text(pdf_path)
    for title in JA_SECTIONS:
        assert title in text
    for title in EN_SECTIONS:
        assert title not in text
    assert "月次報告 2026年11月" in text and "作成日時: 2026年12月1日 12:05(日本時間)" in text
    assert "集計期間: 2026年11月1日〜2026年11月30日(日本時間)" in text
    for kpi in ("応答率", "即応率", "一次解決率", "放棄率", "平均処理時間"):
        assert kpi in text
    assert "市コールセンター" in text  # the service by its configured name
    assert "取次(内線・職員・組織の指定)" in text  # the classes as staff read them
    assert "11月4日(水) 9:00〜9:30: 応答率 50.0%" in text
    assert "この30分に 1 席を追加してください" in text
    assert "「garbage」(7件)" in text
    # the notes explain the figures that could surprise
    assert "サービス別の行の平均処理時間は通話時間だけの平均" in text
    assert "あふれ" in text and "折り返し電話" in text
    fonts = pdf_fonts(pdf_path)
    ipa = [line for line in fonts.splitlines() if "IPAexGothic" in line]
    assert ipa and all("CID TrueType" in line and " yes yes " in line for line in ipa)
    assert "Type 3" not in fonts
    page = html_path.read_text(encoding="utf-8")
    assert '<html lang="ja">' in page and "<h2>改善提案</h2>" in page
    assert "Improvement proposals" not in page and "市コールセンター" in page


async def test_a_month_without_calls_cannot_be_judged(service: KpiService,
                                                      tmp_path: Path) -> None:
    data = await month_data(service, "2026-10")
    assert [p.kind for p in data.proposals] == ["no_calls"]
    html_path, pdf_path = await write_report(service, "2026-10", tmp_path)
    text = pdf_text(pdf_path)
    assert "この月の着信はありません。目標の達成状況は判定できません。" in text
    assert "達成しました" not in text and "未達:" not in text
    assert "この月の転送はありません" in text
    page = html_path.read_text(encoding="utf-8")
    assert "<img" not in page  # no empty chart
    _, pdf_en = await write_report(service, "2026-10", tmp_path, lang="en")
    text = pdf_text(pdf_en, " ")
    assert "There were no calls this month: the targets cannot be judged." in text
    assert "were met" not in text


def test_targets_that_cannot_be_judged_are_not_called_met() -> None:
    # every answered call was an excluded one (city staff): FCR has nothing to divide
    k = Kpi(offered=4, answered=4, quick=4, records=4, excluded=4)
    got = proposals(k, {}, Counter())
    assert [p.kind for p in got] == ["partly"]
    assert got[0].text(Lang("ja")) == ("判定できた目標はすべて達成しました。一次解決率は分母が"
                                       "0件のため判定できません。")
    assert [p.kind for p in proposals(Kpi(offered=2, answered=2, quick=2, records=2, resolved=2),
                                      {}, Counter())] == ["ok"]
    # no topic was handed on: the FCR proposal names no empty list
    k = Kpi(offered=4, answered=4, quick=4, records=1, resolved=1)
    texts = [p.text(Lang("en")) for p in proposals(k, {}, Counter())]
    assert not any("were -" in t or "were ;" in t or "were ." in t for t in texts)
    assert any("3 answered call(s) have no interaction record" in t for t in texts)


async def test_a_month_without_transfers_has_no_transfer_chart(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await seed(db, transfers=False)
    service = KpiService(db, clock=lambda: datetime(2026, 12, 1, tzinfo=UTC))
    try:
        data = await month_data(service, "2026-11")
        with matplotlib.rc_context(report_rc()):
            drawn = charts(data, Lang("ja"))
        try:
            by_key = {c.key: c for c in drawn}
            assert by_key["transfers"].figure is None
            assert by_key["transfers"].empty == "この月の転送はありません"
            for key in ("hours", "days", "topics", "outcomes"):  # counts: whole numbers
                fig = by_key[key].figure
                assert fig is not None
                ax = fig.axes[0]
                axis = ax.xaxis if key in ("topics", "outcomes") else ax.yaxis
                assert isinstance(axis.get_major_locator(), MaxNLocator)
                assert all(float(v).is_integer() for v in axis.get_majorticklocs())
        finally:
            close(drawn)
        html_path, pdf_path = await write_report(service, "2026-11", tmp_path / "out")
        page = html_path.read_text(encoding="utf-8")
        assert page.count("<img") == 5 and "この月の転送はありません" in page
        assert "転送先別の転送件数: この月の転送はありません" in pdf_text(pdf_path)
    finally:
        await db.close()


async def test_a_one_service_report(service: KpiService, tmp_path: Path) -> None:
    _, pdf_path = await write_report(service, "2026-11", tmp_path, "city", names=NAMES)
    assert pdf_path.name == "report-2026-11-city.pdf"
    text = pdf_text(pdf_path)
    assert "対象: 市コールセンター" in text
    # operators serve every service: a one-service report cannot say how many were staffed
    assert "受付席数は全サービス共通のため" in text and "席を追加" not in text
    assert "この報告(サービス指定)" in text  # its AHT is talk time only
    with pytest.raises(BadQuery, match="not a service id"):
        await write_report(service, "2026-11", tmp_path, "../city")
    with pytest.raises(BadQuery, match="language"):
        await write_report(service, "2026-11", tmp_path, lang="fr")


async def test_a_missing_font_is_refused_before_any_file(
        service: KpiService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_font, "FONT_PATHS", (tmp_path / "none" / "ipaexg.ttf",))
    monkeypatch.setattr(report_font.font_manager, "findSystemFonts", lambda: [])
    report_font.report_font.cache_clear()
    try:
        with pytest.raises(ReportFontMissing, match="fonts-ipaexfont-gothic"):
            await write_report(service, "2026-11", tmp_path / "out")
        assert not (tmp_path / "out").exists()
    finally:
        report_font.report_font.cache_clear()


def test_dates_and_times_in_japanese_form() -> None:
    ja, en = Lang("ja"), Lang("en")
    assert ja.full_date(date(2026, 12, 2)) == "2026年12月2日"
    assert ja.month("2026-12") == "2026年12月" and en.month("2026-12") == "December 2026"
    assert ja.time(datetime(2026, 12, 1, 15, 5, tzinfo=UTC)) == "2026年12月2日 0:05"  # Tokyo
    assert en.time(datetime(2026, 12, 1, 15, 5, tzinfo=UTC)) == "2 December 2026, 00:05"
    assert ja.slot("2026-11-04T09:30") == "11月4日(水) 9:30〜10:00"
    assert ja.outcome("その他", "city_staff") == "その他: 職員からの電話"
    assert en.outcome("転送F") == "transferred as the FAQ directs"
    assert ja.pct(0.7996) == "80.0%" and ja.pct(0.7994) == "79.9%" and ja.pct(None) == "—"


def test_japanese_lines_do_not_start_with_closing_punctuation() -> None:
    with matplotlib.rc_context(report_rc()):
        lines = wrap("あいうえお、かきくけこ。" * 8, 10, 1.4)
    assert len(lines) > 1
    assert not any(line[0] in "、。)" for line in lines)
    assert "".join(lines) == "あいうえお、かきくけこ。" * 8


def test_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    state = tmp_path / "state"
    state.mkdir()
    settings = load_settings(config, state)

    async def prepare() -> None:
        db = Database(settings.database_url)
        await seed(db)
        await db.close()

    asyncio.run(prepare())
    base = ["--config", str(config), "--state", str(state)]
    assert main([*base, "kpi", "--from", "2026-11-04", "--to", "2026-11-04", "--by", "hour"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-04T09" in out and "50.0%!" in out  # missed targets are marked
    assert main([*base, "staffing", "--from", "2026-11", "--json"]) == 0
    assert '"peak_positions"' in capsys.readouterr().out
    assert main([*base, "report", "--month", "2026-11", "--out", str(tmp_path / "r")]) == 0
    ja = tmp_path / "r" / "report-2026-11.pdf"
    assert ja.stat().st_size > 10_000
    text = pdf_text(ja)
    assert "改善提案" in text and "市コールセンター" in text  # the name from madoguchi.yaml
    assert main([*base, "report", "--month", "2026-11", "--out", str(tmp_path / "r"),
                 "--lang", "en"]) == 0
    text = pdf_text(tmp_path / "r" / "report-2026-11-en.pdf", " ")
    assert "Improvement proposals" in text and "改善提案" not in text
    assert main([*base, "report", "--month", "2026-11-04"]) == 2
