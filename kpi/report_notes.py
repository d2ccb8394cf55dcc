"""The monthly report's notes: what each figure counts, its denominator (the satisfaction
scores' too), and the figures that could surprise a reader (a service's AHT without wrap-up,
overflow in the answer rate, a month still running). Notes about something the month did not
have are left out."""

from __future__ import annotations

from datetime import timedelta

from .formulas import TARGETS
from .proposals import ABANDON_LIMIT
from .report_data import MonthData
from .report_text import Lang
from .satisfaction import CITIZEN_TARGET, STAFF_TARGET
from .staffing import DEFAULT_AHT_S


def period(data: MonthData, t: Lang) -> str:
    last = (data.end - timedelta(days=1)).date()
    return t("period", start=t.full_date(data.start.date()), end=t.full_date(last))


def notes(data: MonthData, t: Lang) -> list[str]:
    k = data.total
    out: list[str] = []
    if t.ja:
        out.append("時刻・日付はすべて日本時間(Asia/Tokyo)です。" + (
            "" if data.complete else
            f"月の途中({t.time(data.generated_at)})に作成したため、その時点までの実績です。"))
        out.append(
            "着信: IVRを経てオペレーターの待ち呼に入った通話(応答・待ち中の放棄・あふれ・"
            "折り返し電話の予約)。"
            f"IVRで終了した通話(時間外・自動案内で完結・メニュー中の切断){data.ended_in_ivr}件"
            "は含みません。かけ直しは新しい着信として数えます。")
        out.append(f"応答率 = 応答件数 ÷ 着信件数(目標 {t.target(TARGETS['answer_rate'])})。"
                   f"あふれ(待ち時間が上限を超え、あふれ先の案内・転送へ回した通話){k.overflow}件"
                   "は着信に含み、応答にも放棄にも含まないため、応答率を下げます。")
        if data.callbacks.requested:
            out.append(
                "折り返し電話: 待ち中に折り返しを予約した通話は着信に含み、応答にも放棄にも"
                "含みません。センターからかけた折り返しの通話は着信にも応答にも数えません。"
                "この月の着信が予約した折り返しを、かけたのが翌月でも数えます。完了 = 市民が"
                "折り返しに応答した件数、不成立 = どの発信にも応答がなかった件数、期限切れ = "
                "受付時間外となり取り消された件数、未完了 = 順番待ちまたは発信中の件数。"
                "平均は予約から市民の応答までの時間です。折り返しを含む応答率 = "
                "(応答件数 + 折り返し完了件数)÷ 着信件数(参考値、目標なし)。")
        out.append(f"即応率 = 9秒(3コール)以内に応答した件数 ÷ 応答件数(目標 "
                   f"{t.target(TARGETS['quick_answer_rate'])})。待ち時間は待ち呼に入った時点"
                   "から数え、IVRの案内の時間は含みません。")
        out.append(
            f"一次解決率 = (完了+一部完了+転送F)÷(応答件数 − 職員からの電話・その他)"
            f"(目標 {t.target(TARGETS['fcr'])})。取次・転送は解決に含みません。その他は営業"
            "電話・間違い電話・ワン切りです。応対記録のない応答"
            f"{k.answered - k.records}件は分母に残り、未解決として数えます。仕様書では市コール"
            "センターの指標で、上下水道局代表電話交換には目標がありません。")
        out.append(
            f"放棄率 = (放棄 − 短時間放棄)÷(着信 − 短時間放棄)。短時間放棄は待ち呼に入って"
            f"{data.short_abandon_s:g}秒未満の切断({k.short_abandoned}件)です。仕様書の指標"
            f"ではなく目標はありません。{ABANDON_LIMIT:.0%}を超えると改善提案に挙げます。")
        out.append("平均応答速度 = 応答した通話の待ち時間の合計 ÷ 応答件数。")
        out.append("平均処理時間 = (通話時間+後処理時間)÷ 応答件数。後処理時間はオペレーターの"
                   "状態履歴から取り、全サービス共通のため、サービス別の行"
                   + ("とこの報告(サービス指定)" if data.service else "")
                   + "の平均処理時間は通話時間だけの平均で、全体の値より短くなることがあります。")
        out.append(
            "改善提案の必要席数は、30分ごとの着信件数からアーラン C 式で「9秒以内に80%応答」"
            "に必要な席数を求めたもので、全体の平均処理時間(応答がない月は"
            f"{DEFAULT_AHT_S:.0f}秒と仮定)を使います。"
            + ("受付席数は全サービス共通のため、サービス指定の報告には示しません。"
               if data.service else
               "受付席数はオペレーターの状態(受付可・呼出中・通話中・後処理)の時間の平均です。"))
        out.append("時間帯別のグラフは月内の全日の合計です。用件は応対記録の用件で数え、記録の"
                   "ない通話はIVRで選ばれた用件で数えます(放棄・あふれの通話を含みます)。")
        out.append("転送はオペレーターによる転送の回数で、1通話で複数回転送した場合はそれぞれ"
                   "数えます。転送先は番号で示します。")
        out.append(
            "市民満足度 = 通話後アンケートで回答された質問の点数の平均(目標 "
            f"{CITIZEN_TARGET:.0f}点以上)。各質問は1〜5のキーで答え、(キー − 1)÷ 4 × 100 点"
            "(1 = 0点、2 = 25点、3 = 50点、4 = 75点、5 = 100点)です。通話ではなく回答された質問"
            "ごとに数え、未回答の質問(時間内にキーなし、誤ったキーが2回)は含みません。回答は"
            "その通話の着信日時・サービス・応答したオペレーターに数えます。アンケートは、フローの"
            "設定またはオペレーターの指定で対象となった通話で、オペレーターが先に切ったときに流れ"
            "ます。低評価の通話は時刻とオペレーターで示し、発信者番号は載せません。")
        out.append(
            f"職員満足度 = 市職員によるこの月の評価(0〜100点、または1〜5を市民満足度と同じく"
            f"換算)の平均(目標 {STAFF_TARGET:.0f}点以上)。1人につき月1件で、サービス別の"
            "報告でもセンター全体の値です。コメントは評価者名を伏せて載せます。")
        if data.recovered:
            out.append(f"障害後に録音から復元した通話{data.recovered}件は、待ち時間や応答の有無が"
                       "確定できないため集計に含みません。")
        if data.other_channels:
            c = data.other_channels
            out.append(
                f"FAX(電話の指標には含みません): 受信{_sum(c, 'fax_received_')}件(正常"
                f"{c.get('fax_received_ok', 0)}件、一部受信{c.get('fax_received_partial', 0)}"
                f"件、受信失敗{c.get('fax_received_failed', 0)}件)、送信"
                f"{_sum(c, 'fax_sent_')}件(完了{c.get('fax_sent_ok', 0)}件、失敗"
                f"{c.get('fax_sent_failed', 0)}件)。")
        return out
    out.append("All times and dates are Japan time (Asia/Tokyo)." + (
        "" if data.complete else
        f" Made during the month ({t.time(data.generated_at)}): figures up to then."))
    out.append(
        "Offered: calls that reached the operators' waiting line after the IVR (answered, "
        "abandoned while waiting, overflowed, booked a callback). The "
        f"{data.ended_in_ivr} call(s) that ended in the IVR (closed hours, self-service, hung "
        "up in the menu) are not offered. A caller who calls again is a new call.")
    out.append(
        f"Answer rate = answered ÷ offered (target {t.target(TARGETS['answer_rate'])}). "
        f"Overflowed calls ({k.overflow}: waited past the queue's maximum and were sent to "
        "the overflow message or number) are offered but neither answered nor abandoned, so "
        "they lower the answer rate.")
    if data.callbacks.requested:
        out.append(
            "Callbacks: a caller who booked a callback while waiting is offered, and neither "
            "answered nor abandoned; the center's callback calls are never offered nor "
            "answered. The callbacks booked by this month's calls are counted, even if made "
            "the month after. Done = the citizen answered a callback; failed = no attempt was "
            "answered; expired = cancelled when the service closed; pending = waiting for its "
            "turn or being dialled. The mean runs from the booking to the citizen's answer. "
            "Answer rate including callbacks = (answered + callbacks done) ÷ offered (for "
            "information, no target).")
    out.append(
        "Quick-answer rate = answered within 9 s (3 rings) ÷ answered (target "
        f"{t.target(TARGETS['quick_answer_rate'])}). The wait starts at the waiting line; "
        "time in the IVR does not count.")
    out.append(
        "First-contact resolution = (完了 complete + 一部完了 partly + 転送F transferred as "
        "the FAQ directs) ÷ (answered − calls from city staff − other) (target "
        f"{t.target(TARGETS['fcr'])}). Put through (取次) and transferred (転送) are not "
        "resolved; other means sales calls, wrong numbers and one-ring hang-ups. The "
        f"{k.answered - k.records} answered call(s) without an interaction record stay in the "
        "denominator as unresolved. The specification sets this target for the city call "
        "center only, not for the water bureau's switchboard.")
    out.append(
        "Abandon rate = (abandoned − short abandons) ÷ (offered − short abandons); a short "
        f"abandon hung up within {data.short_abandon_s:g} s of reaching the waiting line "
        f"({k.short_abandoned}). Not a contract KPI and without a target; proposed on above "
        f"{ABANDON_LIMIT:.0%}.")
    out.append("ASA (average speed of answer) = total wait of answered calls ÷ answered.")
    out.append(
        "AHT (average handling time) = (talk time + after-call work) ÷ answered. After-call "
        "work comes from the operators' state history, which all services share, so the AHT "
        "of a service's row" + (" and of this one-service report" if data.service else "")
        + " is talk time only, so it can be lower than the whole center's.")
    out.append(
        "Seats in the proposals: Erlang C for 80 % answered within 9 s, per half-hour, at "
        f"the whole month's AHT ({DEFAULT_AHT_S:.0f} s assumed when nothing was answered). "
        + ("Staffing is not shown in a one-service report: operators are shared."
           if data.service else
           "Seats staffed: the operators' time available, ringing, on calls and in wrap-up, "
           "averaged over the half-hour."))
    out.append(
        "The hour-of-day chart adds up every day of the month. Topics come from interaction "
        "records, or for calls without one, from the IVR's choice (abandoned and overflowed "
        "calls included).")
    out.append("Transfers count each hand-over by an operator (a call passed on twice counts "
               "twice); destinations are shown by number.")
    out.append(
        "Citizen satisfaction = the mean points of the post-call survey's answered questions "
        f"(target {CITIZEN_TARGET:.0f} points or more). Each question is answered with a key "
        "1-5 worth (key − 1) ÷ 4 × 100 points (1 = 0, 2 = 25, 3 = 50, 4 = 75, 5 = 100). It "
        "counts answered questions, not calls; unanswered ones (no key in time, or a wrong key "
        "twice) are left out. An answer counts for its call's time, service and answering "
        "operator. Callers hear the survey when the flow or the operator marked their call and "
        "the operator hung up first. Calls with low answers are shown by time and operator, "
        "never by the caller's number.")
    out.append(
        "Staff satisfaction = the mean of the city staff's ratings of the month (0-100 points, "
        "or 1-5 mapped like a survey answer) (target "
        f"{STAFF_TARGET:.0f} points or more); one rating per person and month, for the whole "
        "center even in a one-service report. Comments are shown without their authors.")
    if data.recovered:
        out.append(f"{data.recovered} call(s) rebuilt from recordings after a failure are not "
                   "counted: their wait and answer are not known.")
    if data.other_channels:
        c = data.other_channels
        out.append(
            f"FAX (outside the phone figures): {_sum(c, 'fax_received_')} received "
            f"({c.get('fax_received_ok', 0)} complete, {c.get('fax_received_partial', 0)} "
            f"partial, {c.get('fax_received_failed', 0)} failed), {_sum(c, 'fax_sent_')} sent "
            f"({c.get('fax_sent_ok', 0)} delivered, {c.get('fax_sent_failed', 0)} failed).")
    return out


def _sum(counts: dict[str, int], prefix: str) -> int:
    return sum(n for name, n in counts.items() if name.startswith(prefix))
