"""The monthly report's words, Japanese first: titles, headings, labels, the names of the
interaction classes, and dates and times in the city's forms (2026年12月2日, Asia/Tokyo).

The KPI names are the specification's (仕様書 9: 応答率, 即応率, 一次解決率); 放棄率 and the
averages are the report's own, defined in its notes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from core.clock import CITY_TZ
from core.interactions import CLASS_LABELS, OtherKind, OutcomeClass

LANGS = ("ja", "en")

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("月次報告 {month}", "Monthly report, {month}"),
    "doc_title": ("madoguchi 月次報告 {month}", "madoguchi monthly report {month}"),
    "scope": ("対象: {service}", "Service: {service}"),
    "all_services": ("全サービス", "all services"),
    "period": ("集計期間: {start}〜{end}(日本時間)", "Period: {start} to {end} (Japan time)"),
    "generated": ("作成日時: {at}(日本時間)", "Generated: {at} (Japan time)"),
    # section headings
    "h_summary": ("概要", "Summary"),
    "h_levels": ("サービス指標", "Service levels"),
    "h_proposals": ("改善提案", "Improvement proposals"),
    "h_charts": ("グラフ", "Charts"),
    "h_by_day": ("日別の実績", "By day"),
    "h_satisfaction": ("満足度", "Satisfaction"),
    "h_sat_answers": ("アンケートの回答(1〜5)", "Survey answers (1-5)"),
    "h_sat_operators": ("オペレーター別の市民満足度", "Citizen satisfaction by operator"),
    "h_sat_low": ("低評価(1・2)の通話", "Calls with low answers (1 or 2)"),
    "h_sat_comments": ("職員のコメント", "Staff comments"),
    "h_notes": ("注記", "Notes"),
    "h_bookings": ("講座・催しの申込(受付経路別)", "Course and event bookings by channel"),
    "bk_channel": ("受付経路", "Channel"),
    "bk_web": ("ウェブ", "web"),
    "bk_desk": ("電話(オペレーター)", "phone (operator)"),
    "bk_ivr": ("自動音声", "IVR"),
    "bk_confirmed": ("確定", "confirmed"),
    "bk_waiting": ("キャンセル待ち", "waiting list"),
    "bk_applied": ("抽選申込", "lottery entries"),
    "bk_lost": ("落選", "not drawn"),
    "bk_cancelled": ("取消", "cancelled"),
    "bk_none": ("この月の申込はありません。", "No bookings this month."),
    # summary
    "no_calls": ("この月の着信はありません。目標の達成状況は判定できません。",
                 "There were no calls this month: the targets cannot be judged."),
    "met": ("達成: {items}", "Met: {items}"),
    "missed": ("未達: {items}", "Missed: {items}"),
    "unjudged": ("判定不可(分母が0件): {names}", "Cannot be judged (nothing to divide by): "
                 "{names}"),
    "counts": ("着信 {offered}件、応答 {answered}件、放棄 {abandoned}件、あふれ {overflow}件",
               "{offered} calls offered, {answered} answered, {abandoned} abandoned, "
               "{overflow} overflowed"),
    "callbacks": ("折り返し電話: 予約 {requested}件(完了 {done}件、不成立 {failed}件、期限切れ "
                  "{expired}件、未完了 {pending}件)、予約から応答までの平均 {mean}、"
                  "折り返しを含む応答率 {rate}",
                  "Callbacks: {requested} booked ({done} done, {failed} failed, {expired} "
                  "expired, {pending} pending); booking to the citizen's answer {mean} on "
                  "average; answer rate including callbacks {rate}"),
    "legend": ("赤字は目標未達、「—」は分母が0件で計算できない値です。定義は注記を参照。",
               "Red: target missed. \"—\": nothing to divide by. Definitions in the notes."),
    # KPI names (仕様書 9) and table headers
    "answer_rate": ("応答率", "Answer rate"),
    "quick_answer_rate": ("即応率", "Quick-answer rate"),
    "fcr": ("一次解決率", "First-contact resolution"),
    "abandon_rate": ("放棄率", "Abandon rate"),
    "col_group": ("区分", ""),
    "col_day": ("日付", "Day"),
    "col_offered": ("着信", "Offered"),
    "col_answered": ("応答", "Answered"),
    "col_abandoned": ("放棄", "Abandoned"),
    "col_overflow": ("あふれ", "Overflow"),
    "col_asa": ("平均応答\n速度(秒)", "ASA (s)"),
    "col_aht": ("平均処理\n時間(秒)", "AHT (s)"),
    "row_target": ("目標", "Target"),
    "row_total": ("全体", "Total"),
    "target_at_least": ("{pct}以上", "≥ {pct}"),
    # charts
    "c_hours": ("時間帯別の着信・応答件数(月合計)", "Calls by hour of day (month total)"),
    "c_days": ("日別の着信・応答件数", "Calls by day"),
    "c_kpis": ("指標と目標", "KPIs against targets"),
    "c_topics": ("用件別の件数", "Calls by topic"),
    "c_outcomes": ("応対記録の分類", "Interaction outcomes"),
    "c_transfers": ("転送先別の転送件数", "Transfers by destination"),
    "e_calls": ("この月の着信はありません", "no calls this month"),
    "e_kpis": ("この月は判定できる指標がありません", "no KPI can be judged this month"),
    "e_topics": ("この月の用件の記録はありません", "no topics recorded this month"),
    "e_outcomes": ("この月の応対記録はありません", "no interaction records this month"),
    "e_transfers": ("この月の転送はありません", "no transfers this month"),
    "x_hour": ("時刻(日本時間)", "hour of day (Japan time)"),
    "x_day": ("日({month})", "day of {month}"),
    "y_calls": ("件数", "calls"),
    "y_pct": ("%(破線: 目標)", "% (dashed: target)"),
    "x_transfers": ("転送件数", "transfers"),
    "x_records": ("件数", "records"),
    "to_number": ("{number}番", "{number}"),
    "s_offered": ("着信", "offered"),
    "s_answered": ("応答", "answered"),
    "cannot_judge": ("判定不可", "n/a"),
    "bullet": ("・", "•"),
    "charts_follow": ("グラフは次のページから続きます。", "The charts follow on the next pages."),
    "hour_tick": ("{h}時", "{h:02d}"),
}

KIND_LABELS: dict[OtherKind, tuple[str, str]] = {
    OtherKind.CITY_STAFF: ("職員からの電話", "call from city staff"),
    OtherKind.SALES: ("営業電話", "sales call"),
    OtherKind.WRONG_NUMBER: ("間違い電話", "wrong number"),
    OtherKind.ONE_RING: ("ワン切り", "one-ring hang-up"),
}

_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
_WEEKDAYS = (("月", "火", "水", "木", "金", "土", "日"),
             ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))


class Lang:
    """The report's texts and formats in one language."""

    def __init__(self, code: str) -> None:
        if code not in LANGS:
            raise ValueError(f"language must be one of {', '.join(LANGS)}, not {code!r}")
        self.code = code
        self.i = LANGS.index(code)

    @property
    def ja(self) -> bool:
        return self.code == "ja"

    def __call__(self, key: str, **fields: object) -> str:
        text = TEXTS[key][self.i]
        return text.format(**fields) if fields else text

    def pick(self, ja: str, en: str) -> str:
        return ja if self.ja else en

    def pct(self, v: float | None) -> str:
        # one decimal: 79.6 % must not read as a met 80 %
        return "—" if v is None else f"{v * 100:.1f}%"

    def target(self, v: float) -> str:
        return self("target_at_least", pct=f"{v * 100:.0f}%")

    def seconds(self, v: float | None) -> str:
        return "—" if v is None else f"{v:.0f}"

    def join(self, items: Iterable[str]) -> str:
        return ("、" if self.ja else ", ").join(items)

    def month(self, month: str) -> str:
        """YYYY-MM → 2026年11月 | November 2026."""
        y, m = int(month[:4]), int(month[5:7])
        return f"{y}年{m}月" if self.ja else f"{_MONTHS_EN[m - 1]} {y}"

    def full_date(self, d: date) -> str:
        return f"{d.year}年{d.month}月{d.day}日" if self.ja else (
            f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}")

    def day(self, d: date) -> str:
        """A day of the report's month, with its weekday: 11月4日(水) | Wed 4 Nov."""
        wd = _WEEKDAYS[self.i][d.weekday()]
        return f"{d.month}月{d.day}日({wd})" if self.ja else (
            f"{wd} {d.day} {_MONTHS_EN[d.month - 1][:3]}")

    def time(self, at: datetime) -> str:
        """An instant in the city's time: 2026年12月2日 9:05 | 2 December 2026, 09:05."""
        t = at.astimezone(CITY_TZ)
        return (f"{self.full_date(t.date())} {t.hour}:{t.minute:02d}" if self.ja
                else f"{self.full_date(t.date())}, {t.hour:02d}:{t.minute:02d}")

    def slot(self, key: str) -> str:
        """A half-hour key (YYYY-MM-DDTHH:MM, Tokyo) → 11月4日(水) 9:00〜9:30."""
        d = date.fromisoformat(key[:10])
        h, m = int(key[11:13]), int(key[14:16])
        eh, em = (h, 30) if m == 0 else (h + 1, 0)
        return (f"{self.day(d)} {h}:{m:02d}〜{eh}:{em:02d}" if self.ja
                else f"{self.day(d)}, {h:02d}:{m:02d}–{eh:02d}:{em:02d}")

    def outcome(self, cls: str, kind: str | None = None) -> str:
        """An interaction class (その他 with its kind) as staff read it; unknown values as is."""
        try:
            label = CLASS_LABELS[OutcomeClass(cls)][self.i]
        except ValueError:
            return cls
        label = label[:1].lower() + label[1:]  # English labels sit inside sentences here
        if kind is None:
            return label
        try:
            what = KIND_LABELS[OtherKind(kind)][self.i]
        except ValueError:
            what = kind
        return f"その他: {what}" if self.ja else f"other: {what}"
