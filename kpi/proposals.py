"""Improvement proposals (仕様書 9: a missed target needs its cause and a fix), derived from the
month's figures as facts first and worded in the report's language last.

A month without calls proposes nothing and says its targets cannot be judged; a proposal
never names an empty list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .formulas import TARGETS, Kpi
from .report_text import Lang
from .satisfaction import CITIZEN_TARGET, STAFF_TARGET, Citizen, Staff
from .staffing import DEFAULT_AHT_S, seats

HALF_HOUR_S = 1800.0
ABANDON_LIMIT = 1 - TARGETS["answer_rate"]  # no contract target: the share the answer rate allows


@dataclass(frozen=True)
class Proposal:
    # seats | quick | fcr | records | abandon | ok | partly | no_calls | citizen | staff
    kind: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def text(self, lang: Lang) -> str:
        return proposal_text(self, lang)


def proposals(total: Kpi, by_halfhour: Mapping[str, Kpi], unresolved: Counter[str],
              staffing_known: bool = True) -> list[Proposal]:
    """Where a target was missed: when, by how much, and what would have met it.
    `staffing_known`: False for a one-service report, whose operators are shared."""
    if total.offered == 0:
        return [Proposal("no_calls")]
    out: list[Proposal] = []
    aht = total.aht_s
    for slot, k in by_halfhour.items():
        rate = k.answer_rate
        if rate is None or rate >= TARGETS["answer_rate"]:
            continue
        need = seats(k.offered, aht or DEFAULT_AHT_S).positions
        staffed = (k.handling_s + k.available_s) / HALF_HOUR_S if staffing_known else None
        out.append(Proposal("seats", {
            "slot": slot, "rate": rate, "answered": k.answered, "offered": k.offered,
            "staffed": staffed, "need": need, "aht": aht or DEFAULT_AHT_S,
            "aht_assumed": aht is None,
            "more": None if staffed is None else max(0, need - round(staffed))}))
    busy = bool(out)
    q = total.quick_answer_rate
    if q is not None and q < TARGETS["quick_answer_rate"]:
        out.append(Proposal("quick", {"rate": q, "asa": total.asa_s or 0.0, "busy": busy}))
    missing = total.answered - total.records
    f = total.fcr
    if f is not None and f < TARGETS["fcr"]:
        out.append(Proposal("fcr", {"rate": f, "top": unresolved.most_common(3),
                                    "missing": missing}))
    if missing > 0:
        out.append(Proposal("records", {"missing": missing}))
    a = total.abandon_rate
    if a is not None and a > ABANDON_LIMIT:
        out.append(Proposal("abandon", {"rate": a, "short": total.short_abandoned,
                                        "busy": busy}))
    if not out:
        unjudged = [n for n in TARGETS if getattr(total, n) is None]
        out.append(Proposal("partly", {"names": unjudged}) if unjudged else Proposal("ok"))
    return out


def satisfaction_proposals(citizen: Citizen, staff: Staff) -> list[Proposal]:
    """Satisfaction scores under their targets (REQUIREMENTS §9), with what to look at."""
    out: list[Proposal] = []
    c = citizen.score
    if c is not None and c < CITIZEN_TARGET:
        out.append(Proposal("citizen", {"score": c, "low": citizen.low,
                                        "answers": citizen.answered}))
    s = staff.score
    if s is not None and s < STAFF_TARGET:
        out.append(Proposal("staff", {"score": s, "ratings": len(staff.ratings)}))
    return out


def _seats(f: Mapping[str, Any], t: Lang) -> str:
    aht = f"{f['aht']:.0f}"
    if t.ja:
        head = (f"{t.slot(f['slot'])}: 応答率 {t.pct(f['rate'])}(着信 {f['offered']}件中 応答 "
                f"{f['answered']}件)。")
        calc = (f"平均処理時間 {aht} 秒{'(応答がないため仮定)' if f['aht_assumed'] else ''}で"
                f"「9秒以内に80%応答」を満たすには、アーラン C 式で {f['need']} 席が必要です。")
        if f["staffed"] is None:
            return (head + calc + "受付席数は全サービス共通のため、サービス別の報告には"
                    "示しません。")
        staffed = f"この30分の受付席数は平均 {f['staffed']:.1f} 席でした。"
        advice = (f"→ この30分に {f['more']} 席を追加してください。" if f["more"] else
                  "→ 計算上の席数は足りていました。休憩・後処理・呼出しへの不応答を"
                  "確認してください。")
        return head + staffed + calc + advice
    head = (f"{t.slot(f['slot'])}: answer rate {t.pct(f['rate'])} ({f['answered']} of "
            f"{f['offered']} answered); ")
    calc = (f"Erlang C needs {f['need']} seat(s) for 80 % answered within 9 s at an AHT of "
            f"{aht} s{' (assumed: no call was answered)' if f['aht_assumed'] else ''}")
    if f["staffed"] is None:
        return (head + calc + ". Operators are shared by all services, so their staffing is "
                "not in a one-service report.")
    advice = (f"add {f['more']} seat(s) in this half-hour" if f["more"] else
              "staffing was enough on paper: check breaks, wrap-up and missed rings")
    return (head + f"{f['staffed']:.1f} operator(s) staffed on average; " + calc
            + f" → {advice}.")


def _topics(top: list[tuple[str, int]], t: Lang) -> str:
    if t.ja:
        return t.join(f"「{name}」({n}件)" for name, n in top)
    return t.join(f"{name} ({n})" for name, n in top)


def proposal_text(p: Proposal, t: Lang) -> str:
    f = p.facts
    if p.kind == "seats":
        return _seats(f, t)
    if p.kind == "quick":
        return t.pick(
            f"即応率 {t.pct(f['rate'])} が目標の80%を下回りました(平均応答速度 {f['asa']:.0f} 秒)。"
            f"混雑する時間帯{'(上記)' if f['busy'] else ''}には後処理を早めに切り上げ、"
            "休憩をその時間帯からずらしてください。",
            f"Quick-answer rate {t.pct(f['rate'])} is under the 80 % target (average speed of "
            f"answer {f['asa']:.0f} s): at busy times{' (above)' if f['busy'] else ''}, end "
            "wrap-up sooner and move breaks away from them.")
    if p.kind == "fcr":
        rate = t.pct(f["rate"])
        if f["top"]:
            return t.pick(
                f"一次解決率 {rate} が目標の50%を下回りました。取次・転送となった用件の上位は"
                f"{_topics(f['top'], t)}です。これらのFAQを追加・充実してください。",
                f"First-contact resolution {rate} is under the 50 % target: the topics most "
                f"often put through or transferred were {_topics(f['top'], t)}; add or extend "
                "FAQ entries for them.")
        if f["missing"]:
            return t.pick(
                f"一次解決率 {rate} が目標の50%を下回りました。取次・転送の記録はなく、"
                "応対記録のない応答が未解決として数えられています(次項)。",
                f"First-contact resolution {rate} is under the 50 % target: no call was put "
                "through or transferred; answered calls without an interaction record count "
                "as unresolved (next item).")
        return t.pick(f"一次解決率 {rate} が目標の50%を下回りました。",
                      f"First-contact resolution {rate} is under the 50 % target.")
    if p.kind == "records":
        return t.pick(
            f"応答 {f['missing']}件に応対記録がなく、一次解決率では未解決として数えています。"
            "後処理中に応対記録を入力するよう徹底してください。",
            f"{f['missing']} answered call(s) have no interaction record and count as "
            "unresolved in first-contact resolution: ask operators to complete the record "
            "during wrap-up.")
    if p.kind == "abandon":
        return t.pick(
            f"放棄率 {t.pct(f['rate'])}"
            + (f"(短時間放棄 {f['short']}件を除く)" if f["short"] else "")
            + f"が{ABANDON_LIMIT:.0%}を超えました。"
            "待ち時間中の混雑案内・イベント案内を充実させてください。"
            + ("上記の時間帯の席数も見直してください。" if f["busy"] else ""),
            f"Abandon rate {t.pct(f['rate'])}"
            + (f" (short abandons excluded: {f['short']})" if f["short"] else "")
            + f" is over {ABANDON_LIMIT:.0%}: extend the congestion and event announcements "
            "while callers wait"
            + (", and review the seats in the half-hours above." if f["busy"] else "."))
    if p.kind == "partly":
        names = t.join(t(n) for n in f["names"])
        return t.pick(f"判定できた目標はすべて達成しました。{names}は分母が0件のため"
                      "判定できません。",
                      f"The targets that could be judged were met; {names} cannot be judged "
                      "(nothing to divide by).")
    if p.kind == "no_calls":
        return t.pick("この月の着信はありません。目標の達成状況は判定できないため、"
                      "改善提案はありません。",
                      "There were no calls this month: the targets cannot be judged, and "
                      "there is nothing to propose.")
    if p.kind == "citizen":
        return t.pick(
            f"市民満足度 {f['score']:.1f}点が目標の{CITIZEN_TARGET:.0f}点を下回りました"
            f"(回答 {f['answers']}件中、低評価(1・2){f['low']}件)。低評価の通話(満足度の項)の"
            "録音と応対記録を確認し、原因を応対研修とFAQに反映してください。",
            f"Citizen satisfaction {f['score']:.1f} points is under the "
            f"{CITIZEN_TARGET:.0f}-point target ({f['low']} low answer(s), 1 or 2, of "
            f"{f['answers']}): review the recordings and interaction records of the calls "
            "listed under satisfaction, and feed the causes into training and the FAQ.")
    if p.kind == "staff":
        return t.pick(
            f"職員満足度 {f['score']:.1f}点が目標の{STAFF_TARGET:.0f}点を下回りました"
            f"(評価 {f['ratings']}件)。職員のコメント(満足度の項)を確認し、"
            "取次・転送の手順を担当課と見直してください。",
            f"Staff satisfaction {f['score']:.1f} points is under the "
            f"{STAFF_TARGET:.0f}-point target ({f['ratings']} rating(s)): go through the "
            "staff's comments under satisfaction and review how calls are put through and "
            "transferred with the sections concerned.")
    if p.kind != "ok":
        raise ValueError(f"no wording for a proposal of kind {p.kind!r}")
    return t.pick("すべての目標(応答率・即応率・一次解決率)を達成しました。"
                  "現在の体制を維持してください。",
                  "All targets (answer rate, quick-answer rate, first-contact resolution) "
                  "were met this month: keep the current staffing.")
