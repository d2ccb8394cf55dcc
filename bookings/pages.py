"""The public booking pages, as HTML: Japanese first with English beside it, plain forms
that work without script or style sheet, every value escaped where it is written."""

from __future__ import annotations

from datetime import datetime
from html import escape

from core.clock import CITY_TZ

from . import numbers
from .allocation import Status, WindowState
from .service import STOPPING, EventView, Found

_WEEK_JA = "月火水木金土日"
_WEEK_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec")
_BOARD = {"cancelled": ("中止", "cancelled"), "postponed": ("延期", "postponed"),
          "full": ("満員", "full"), "held": ("開催", "held as planned"),
          "time_changed": ("時間変更", "time changed"),
          "venue_changed": ("会場変更", "venue changed")}
_STATUS = {
    Status.CONFIRMED: ("申込を受け付けました（確定）。", "Your booking is confirmed."),
    Status.WAITING: ("定員に達しているため、キャンセル待ちで受け付けました。"
                     "席が空くと順に繰り上がります。",
                     "The session is full: you are on the waiting list and move up "
                     "when a seat is given back."),
    Status.APPLIED: ("抽選の申込を受け付けました。抽選は受付終了後に行います。",
                     "Your lottery entry is received; the draw is made after "
                     "applications close."),
    Status.CANCELLED: ("申込を取り消しました。", "Your booking is cancelled."),
    Status.LOST: ("抽選の結果、落選となりました。", "Not drawn in the lottery."),
}


def e(text: object) -> str:
    return escape(str(text), quote=True)


def when_ja(at: datetime) -> str:
    t = at.astimezone(CITY_TZ)
    return f"{t.year}年{t.month}月{t.day}日({_WEEK_JA[t.weekday()]}) {t:%H:%M}"


def when_en(at: datetime) -> str:
    t = at.astimezone(CITY_TZ)
    return f"{_WEEK_EN[t.weekday()]} {t.day} {_MONTH_EN[t.month - 1]} {t.year}, {t:%H:%M}"


def page(title_ja: str, title_en: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title_ja)} / {e(title_en)}</title>
<link rel="stylesheet" href="/book/static/book.css">
<script src="/book/static/book.js" defer></script>
</head>
<body>
<header>
<p class="site">講座・催しの申込 <span lang="en">Course and event bookings</span></p>
<nav aria-label="メニュー / Menu"><ul>
<li><a href="/book/">催しの一覧 <span lang="en">Events</span></a></li>
<li><a href="/book/cancel">申込の取消 <span lang="en">Cancel a booking</span></a></li>
</ul></nav>
</header>
<main id="main">
<h1>{e(title_ja)} <span lang="en">{e(title_en)}</span></h1>
{body}
</main>
</body>
</html>
"""


def _board(view: EventView) -> str:
    if view.board_status is None:
        return ""
    ja, en = _BOARD.get(view.board_status, (view.board_status, view.board_status))
    stop = ("新しい申込は受け付けていません。", "No new bookings are taken.") \
        if view.board_status in STOPPING else ("", "")
    return (f'<p class="board" role="status"><strong>お知らせ：{e(ja)}</strong> {e(stop[0])} '
            f'<span lang="en">Notice: {e(en)}. {e(stop[1])}</span></p>')


def _window(view: EventView) -> str:
    r = view.row
    state = {WindowState.NOT_YET: ("受付前", "not open yet"),
             WindowState.OPEN: ("受付中", "open"),
             WindowState.CLOSED: ("受付終了", "closed")}[view.window]
    return (f"<p>申込期間：{e(when_ja(r.opens_at))} ～ {e(when_ja(r.closes_at))}（{state[0]}）"
            f' <span lang="en">Applications: {e(when_en(r.opens_at))} to '
            f"{e(when_en(r.closes_at))} ({state[1]})</span></p>")


def event_list(views: list[EventView]) -> str:
    if not views:
        items = ('<p>現在、申込を受け付けている催しはありません。'
                 '<span lang="en">No events are open for booking now.</span></p>')
    else:
        rows = []
        for v in views:
            r = v.row
            rule = "抽選" if r.rule == "lottery" else "先着順"
            rule_en = "lottery" if r.rule == "lottery" else "first come, first served"
            rows.append(
                f'<li><h2><a href="/book/events/{e(r.id)}">{e(r.title_ja)}</a> '
                f'<span lang="en">{e(r.title_en)}</span></h2>'
                f"{_board(v)}{_window(v)}<p>{e(rule)} <span lang=\"en\">({e(rule_en)})</span>"
                f" ・ 日程 {len(v.sessions)}回 <span lang=\"en\">{len(v.sessions)} "
                f"session(s)</span></p></li>")
        items = f'<ul class="events">{"".join(rows)}</ul>'
    return page("催しの一覧", "Events open for booking", items)


def _field(name: str, ja: str, en: str, kind: str = "text", extra: str = "") -> str:
    return (f'<p><label for="{name}">{e(ja)} <span lang="en">{e(en)}</span></label><br>'
            f'<input id="{name}" name="{name}" type="{kind}" {extra}></p>')


def event_page(view: EventView, csrf: str) -> str:
    r = view.row
    parts = [_board(view), _window(view)]
    if r.description_ja or r.description_en:
        parts.append(f'<p class="desc">{e(r.description_ja)}</p>'
                     f'<p class="desc" lang="en">{e(r.description_en)}</p>')
    if r.fee_ja:
        parts.append(f'<p>参加費：{e(r.fee_ja)} <span lang="en">Fee: {e(r.fee_en)}</span></p>')
    who = []
    if r.residents_only:
        who.append(("市内在住の方", "city residents"))
    if r.min_age is not None or r.max_age is not None:
        lo = "" if r.min_age is None else str(r.min_age)
        hi = "" if r.max_age is None else str(r.max_age)
        who.append((f"{lo}～{hi}歳", f"aged {lo or '0'} to {hi or 'any'}"))
    if who:
        parts.append("<p>対象：" + "、".join(e(w[0]) for w in who) + ' <span lang="en">For: '
                     + ", ".join(e(w[1]) for w in who) + "</span></p>")
    rule = ("抽選（受付終了後に抽選）", "lottery, drawn after applications close") \
        if r.rule == "lottery" else ("先着順", "first come, first served")
    parts.append(f'<p>決定方法：{e(rule[0])} <span lang="en">Allocation: {e(rule[1])}</span></p>')
    if not view.bookable:
        parts.append('<p role="status">現在、この催しの申込はできません。'
                     '<span lang="en">This event cannot be booked now.</span></p>')
        return page(r.title_ja, r.title_en, "\n".join(parts))
    options = []
    for i, sv in enumerate(view.sessions):
        s = sv.row
        seats = (f"残り{sv.free}席" if r.rule != "lottery" else f"定員{s.capacity}名",
                 f"{sv.free} seat(s) left" if r.rule != "lottery" else
                 f"{s.capacity} places")
        if sv.free == 0 and r.rule != "lottery":
            seats = ("満席（キャンセル待ち）" if r.waiting_list else "満席",
                     "full (waiting list)" if r.waiting_list else "full")
        checked = " checked" if i == 0 else ""
        options.append(
            f'<p><input type="radio" name="session_id" id="s{s.id}" value="{s.id}" required'
            f'{checked}> <label for="s{s.id}">{e(when_ja(s.starts_at))}–'
            f'{s.ends_at.astimezone(CITY_TZ):%H:%M} {e(s.venue_ja)}（{e(seats[0])}）'
            f' <span lang="en">{e(when_en(s.starts_at))}, {e(s.venue_en)} ({e(seats[1])})'
            f"</span></label></p>")
    form = [f'<form method="post" action="/book/events/{e(r.id)}" class="book">',
            f'<input type="hidden" name="csrf" value="{e(csrf)}">',
            '<fieldset><legend>日程 <span lang="en">Session</span></legend>',
            *options, "</fieldset>",
            _field("name", "氏名", "Name", extra='required maxlength="100" autocomplete="name"'),
            _field("furigana", "ふりがな", "Name in kana", extra='required maxlength="100"'),
            _field("phone", "電話番号", "Phone number", "tel",
                   'required maxlength="24" autocomplete="tel" inputmode="tel"'),
            _field("party", "人数", f"Number of people (1–{r.max_party})", "number",
                   f'required min="1" max="{r.max_party}" value="1"')]
    if r.min_age is not None or r.max_age is not None:
        form.append(_field("age", "年齢", "Age", "number", 'required min="0" max="130"'))
    if r.residents_only:
        form.append('<p><input type="checkbox" id="resident" name="resident" value="on" '
                    'required> <label for="resident">市内に在住しています <span lang="en">'
                    "I live in the city</span></label></p>")
    form += ['<p><label for="note">連絡事項（任意） <span lang="en">Note (optional)</span>'
             '</label><br><textarea id="note" name="note" maxlength="500" rows="3">'
             "</textarea></p>",
             '<p><button type="submit">申し込む <span lang="en">Book</span></button></p>',
             "</form>"]
    parts.extend(form)
    return page(r.title_ja, r.title_en, "\n".join(parts))


def booked(found: Found) -> str:
    b, s, ev = found.booking, found.session, found.event
    ja, en = _STATUS[Status(b.status)]
    body = (f'<div role="status"><p>{e(ja)} <span lang="en">{e(en)}</span></p>'
            f'<p class="number">申込番号 <span lang="en">Booking number</span>：'
            f'<strong id="booking-number">{e(numbers.display(b.number))}</strong></p>'
            "<p>取消の際は、申込番号と電話番号が必要です。番号を控えてください。"
            '<span lang="en">Keep this number: with your phone number it cancels the '
            "booking.</span></p></div>"
            f"<dl><dt>催し <span lang=\"en\">Event</span></dt><dd>{e(ev.title_ja)} "
            f'<span lang="en">{e(ev.title_en)}</span></dd>'
            f"<dt>日程 <span lang=\"en\">Session</span></dt><dd>{e(when_ja(s.starts_at))} "
            f'{e(s.venue_ja)} <span lang="en">{e(when_en(s.starts_at))}, {e(s.venue_en)}'
            f"</span></dd><dt>氏名 <span lang=\"en\">Name</span></dt><dd>{e(b.name)}</dd>"
            f"<dt>人数 <span lang=\"en\">People</span></dt><dd>{b.party}</dd></dl>")
    return page("申込完了", "Booking received", body)


def cancel_form(csrf: str) -> str:
    body = ('<form method="post" action="/book/cancel" class="cancel">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            + _field("number", "申込番号", "Booking number",
                     extra='required maxlength="16" autocomplete="off"')
            + _field("phone", "申込時の電話番号", "Phone number given when booking", "tel",
                     'required maxlength="24" inputmode="tel"')
            + '<p><button type="submit">取り消す <span lang="en">Cancel the booking</span>'
            "</button></p></form>")
    return page("申込の取消", "Cancel a booking", body)


def cancelled(found: Found) -> str:
    b, ev = found.booking, found.event
    body = (f'<p role="status">申込を取り消しました。<span lang="en">Your booking is '
            f"cancelled.</span></p><p>{e(numbers.display(b.number))} "
            f'{e(ev.title_ja)} <span lang="en">{e(ev.title_en)}</span></p>')
    return page("取消完了", "Booking cancelled", body)


def error_page(status: int, message: str, back: str) -> str:
    body = (f'<p role="alert" class="error">{e(message)}</p>'
            f'<p><a href="{e(back)}">戻る <span lang="en">Back</span></a></p>')
    return page("お申込みできませんでした" if status != 429 else "しばらくお待ちください",
                "Not done" if status != 429 else "Please wait", body)
