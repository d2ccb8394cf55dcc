"""The booking node's dialogue: a pure state machine, like the interpreter (no channel, no
database, no clock). `start()` and `feed()` return the next step — say sentences (and
perhaps collect one key), ask the booking port something, or finish — and the adapter feeds
back what happened: `Played`, `Digits` ("" for a timeout), the port's answer, or
`PortFailed`. The same code runs live calls (agi_runner), `madoguchi flows simulate` and the
tests.

1 books: the open dates of the node's category are read one per key ("1: <title>, <date>,
<n> seats left"), the chosen one is confirmed with 1 and booked for the caller's number, and
the booking number is read back character by character (9 repeats it once). 2 cancels one of
the caller's own bookings, found by the number they call from: the caller keys its booking
number (letters by the key that carries them, then #), which is matched against the keypad
form of their own bookings' numbers only; one match is read back and cancelled after a 1.
No match, # alone or no key: their bookings are read one per key instead. Sentences are
texts in the call's language; the adapter speaks them by TTS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from core.calls import clean_number

from .booking_port import (
    BookOutcome,
    BookResult,
    CallerBooking,
    CancelOutcome,
    OpenSession,
)
from .interpreter import Digits, Played
from .keypad import keypad_digits

KEY_TIMEOUT_MS = 8000
NUMBER_KEYS = 10  # a booking number's 9 characters and the # that ends them
_MATCH_LIMIT = 50  # the caller's bookings a keyed number is matched against
_MIN_PHONE_DIGITS = 6  # fewer digits is no number a booking can be found by again
_REPEAT_KEY = "9"
T = TypeVar("T")

# ---- steps (dialogue -> adapter) ------------------------------------------------------------


@dataclass(frozen=True)
class Speak:
    """Sentences said one after the other (a key may interrupt between them when collecting),
    then, when `collect`, wait for one key."""

    texts: tuple[str, ...]
    collect: bool = False
    timeout_ms: int = KEY_TIMEOUT_MS
    max_digits: int = 1  # more: keys until # (not part of the digits), the most or a pause


@dataclass(frozen=True)
class ListSessions:
    category: str
    limit: int


@dataclass(frozen=True)
class Book:
    session_id: int
    phone: str


@dataclass(frozen=True)
class ListBookings:
    phone: str
    limit: int


@dataclass(frozen=True)
class Cancel:
    number: str
    phone: str


@dataclass(frozen=True)
class Finished:
    reason: str  # booked | cancelled | no_phone | nothing_open | gave_up | failed | …


Step = Speak | ListSessions | Book | ListBookings | Cancel | Finished


@dataclass(frozen=True)
class PortFailed:
    """The bookings could not be reached (database down…): said, and the node ends."""


Fed = Played | Digits | PortFailed | BookResult | CancelOutcome | list[OpenSession] \
    | list[CallerBooking]

# ---- what is said ---------------------------------------------------------------------------

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "menu": "講座やイベントのお申し込みは1を、お申し込みの取り消しは2を押してください。",
        "no_phone": "申し訳ありません。電話番号が通知されていないため、お電話では承れません。"
                    "番号を通知しておかけ直しいただくか、ホームページをご利用ください。",
        "none_open": "現在、お電話でお申し込みいただける講座やイベントはありません。",
        "list_intro": "お申し込みいただける日程は次のとおりです。",
        "item": "{choice}番、{title}、{when}、{seats}。",
        "seats": "残り{n}席",
        "full_waiting": "満席のため、キャンセル待ちとなります",
        "full": "満席です",
        "lottery": "抽選です",
        "choose": "ご希望の番号を押してください。",
        "confirm": "{title}、{when}を、この電話番号でお申し込みします。よろしければ1を、"
                   "ほかの日程を選ぶ場合は2を押してください。",
        "confirmed": "お申し込みを受け付けました。",
        "waiting": "満席のため、キャンセル待ちとして受け付けました。",
        "applied": "抽選のお申し込みとして受け付けました。",
        "number": "申込番号は、{spelt}、です。",
        "repeat": "もう一度お聞きになる場合は9を押してください。",
        "r_full": "申し訳ありません。この日程は満席です。",
        "r_closed": "申し訳ありません。この講座は申込受付期間外です。",
        "r_stopped": "申し訳ありません。この催しは中止または延期のため、受付を停止しています。",
        "r_duplicate": "この電話番号で、この日程には既にお申し込みがあります。",
        "r_not_eligible": "この講座には参加条件があるため、お電話では承れません。"
                          "窓口またはホームページをご利用ください。",
        "r_refused": "申し訳ありません。お申し込みを承れませんでした。",
        "none_booked": "この電話番号でのお申し込みは見つかりませんでした。",
        "booked_intro": "この電話番号でのお申し込みは{n}件あります。",
        "booked_item": "{choice}番、{title}、{when}{status}。",
        "st_waiting": "、キャンセル待ち",
        "st_applied": "、抽選申込",
        "choose_cancel": "取り消すお申し込みの番号を押してください。",
        "confirm_cancel": "{title}、{when}のお申し込みを取り消します。よろしければ1を、"
                          "やめる場合は2を押してください。",
        "key_number": "申込番号がお分かりの場合は、申込番号を押して、"
                      "最後にシャープを押してください。英字は、その文字が書かれたボタンを押します。エー、ビー、シーは2です。"
                      "お分かりにならない場合は、シャープだけを押してください。",
        "no_match": "押された申込番号のお申し込みは、この電話番号では見つかりませんでした。",
        "match_intro": "押された番号に当たるお申し込みは{n}件あります。",
        "match_item": "{choice}番、{title}、{when}、申込番号、{spelt}。",
        "found": "{title}、{when}のお申し込みです。",
        "cancel_it": "取り消す場合は1を、やめる場合は2を押してください。",
        "cancelled": "お申し込みを取り消しました。",
        "kept": "取り消しはしませんでした。",
        "c_not_found": "申し訳ありません。このお申し込みは見つかりませんでした。",
        "c_already": "このお申し込みは既に取り消されています。",
        "gave_up": "お手続きを終了します。",
        "failed": "申し訳ありません。ただいまお申し込みを承れません。"
                  "時間をおいておかけ直しください。",
    },
    "en": {
        "menu": "To book a course or an event, press 1. To cancel a booking, press 2.",
        "no_phone": "We are sorry: your number is withheld, so we cannot take a booking by "
                    "phone. Please call again showing your number, or use our website.",
        "none_open": "There are no courses or events to book by phone at the moment.",
        "list_intro": "These dates are open for booking.",
        "item": "{choice}: {title}, {when}, {seats}.",
        "seats": "{n} seats left",
        "full_waiting": "full, you would be on the waiting list",
        "full": "full",
        "lottery": "places are drawn by lottery",
        "choose": "Please press the number of your choice.",
        "confirm": "{title}, {when}, booked for this phone number. To confirm, press 1. "
                   "To choose another date, press 2.",
        "confirmed": "Your booking is confirmed.",
        "waiting": "The session is full: you are on the waiting list.",
        "applied": "Your entry to the lottery is received.",
        "number": "Your booking number is: {spelt}.",
        "repeat": "To hear it again, press 9.",
        "r_full": "We are sorry: this date is full.",
        "r_closed": "We are sorry: applications for this course are not open.",
        "r_stopped": "We are sorry: this event is cancelled or postponed, and bookings are "
                     "stopped.",
        "r_duplicate": "This phone number has already booked this date.",
        "r_not_eligible": "This course has conditions of entry, so it cannot be booked by "
                          "phone. Please book at the desk or on our website.",
        "r_refused": "We are sorry: the booking could not be made.",
        "none_booked": "We found no bookings for this phone number.",
        "booked_intro": "This phone number has {n} bookings.",
        "booked_item": "{choice}: {title}, {when}{status}.",
        "st_waiting": ", on the waiting list",
        "st_applied": ", lottery entry",
        "choose_cancel": "Please press the number of the booking to cancel.",
        "confirm_cancel": "Cancel {title}, {when}? To cancel, press 1. To keep it, press 2.",
        "key_number": "If you have your booking number, key it, then press hash. For a letter, "
                      "press the key that carries it: A, B and C are on 2. Otherwise, press "
                      "hash alone.",
        "no_match": "This phone number has no booking with the number you keyed.",
        "match_intro": "{n} of your bookings match the keys you pressed.",
        "match_item": "{choice}: {title}, {when}, booking number {spelt}.",
        "found": "Your booking: {title}, {when}.",
        "cancel_it": "To cancel it, press 1. To keep it, press 2.",
        "cancelled": "Your booking is cancelled.",
        "kept": "Your booking is kept.",
        "c_not_found": "We are sorry: this booking could not be found.",
        "c_already": "This booking is already cancelled.",
        "gave_up": "Thank you for calling.",
        "failed": "We are sorry: bookings are not available right now. Please call again "
                  "later.",
    },
}

_JA_CHARS = {
    "2": "に", "3": "さん", "4": "よん", "5": "ご", "6": "ろく", "7": "なな", "8": "はち",
    "9": "きゅう", "A": "エー", "B": "ビー", "C": "シー", "D": "ディー", "E": "イー",
    "F": "エフ", "G": "ジー", "H": "エイチ", "J": "ジェー", "K": "ケー", "M": "エム",
    "N": "エヌ", "P": "ピー", "Q": "キュー", "R": "アール", "S": "エス", "T": "ティー",
    "U": "ユー", "V": "ブイ", "W": "ダブリュー", "X": "エックス", "Y": "ワイ", "Z": "ゼット",
}
_EN_DIGITS = {"2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
              "8": "eight", "9": "nine"}


def spell(number: str, language: str) -> str:
    """A booking number read character by character, letters by their names, in the two
    groups it is printed in (XXXX-XXXXX), so a caller can write it down."""
    if language == "ja":
        names = [_JA_CHARS.get(c, c) for c in number]
        sep, group = "、", "。"
    else:
        names = [_EN_DIGITS.get(c, c) for c in number]
        sep, group = ", ", ". "
    return sep.join(names[:4]) + group + sep.join(names[4:])


def number_sentence(number: str, language: str) -> str:
    """The sentence that reads a booking number back (its sound is named by this text)."""
    return _text(language, "number", spelt=spell(number, language))


def when(at: datetime, tz: ZoneInfo, language: str) -> str:
    local = at.astimezone(tz)
    if language == "ja":
        minutes = f"{local.minute}分" if local.minute else ""
        return f"{local.month}月{local.day}日、{local.hour}時{minutes}"
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{local.strftime('%B')} {local.day} at {clock}"


def usable_phone(caller: str) -> str | None:
    """The caller's number a booking can be made for, or None (withheld, or too short)."""
    number = clean_number(caller)
    digits = "".join(c for c in number if c.isdigit())
    return digits if len(digits) >= _MIN_PHONE_DIGITS else None


def _text(language: str, key: str, **values: object) -> str:
    table = TEXTS.get(language, TEXTS["ja"])
    return table[key].format(**values)


@dataclass
class BookingDialogue:
    category: str
    language: str
    caller: str
    tz: ZoneInfo
    max_events: int = 9
    state: str = "start"
    outcome: str = ""  # how it ended (Finished.reason), for the call's log
    number: str | None = None  # the booking made on this call
    _phone: str = ""
    _attempts: int = 0
    _sessions: list[OpenSession] = field(default_factory=list)
    _chosen: OpenSession | None = None
    _booked: list[CallerBooking] = field(default_factory=list)  # the caller's own
    _offered: list[CallerBooking] = field(default_factory=list)  # read one per key
    _offer: tuple[str, ...] = ()  # the sentences that read them
    _to_cancel: CallerBooking | None = None
    _confirm: tuple[str, ...] = ()  # the sentences that ask to confirm the cancel
    _repeated: bool = False

    # ---- public ----------------------------------------------------------------------------
    def start(self) -> Step:
        phone = usable_phone(self.caller)
        if phone is None:
            return self._say_then_finish(("no_phone",), "no_phone")
        self._phone = phone
        return self._ask("menu", self._t("menu"))

    def feed(self, fed: Fed) -> Step:
        if isinstance(fed, PortFailed):
            return self._say_then_finish(("failed",), "failed")
        state = self.state
        if state == "ending":
            return Finished(self.outcome)
        if state == "menu" and isinstance(fed, Digits):
            if fed.digits == "1":
                self.state = "listing"
                return ListSessions(self.category, self.max_events)
            if fed.digits == "2":
                self.state = "finding"
                return ListBookings(self._phone, _MATCH_LIMIT)
            return self._retry(self._t("menu"))
        if state == "listing" and isinstance(fed, list):
            self._sessions = [s for s in fed if isinstance(s, OpenSession)][:self.max_events]
            if not self._sessions:
                return self._say_then_finish(("none_open",), "nothing_open")
            return self._ask("choose", *self._session_list())
        if state == "choose" and isinstance(fed, Digits):
            chosen = self._pick(self._sessions, fed.digits)
            if chosen is None:
                return self._retry(*self._session_list())
            self._chosen = chosen
            return self._ask("confirm", self._t("confirm", title=chosen.title,
                                                 when=self._when(chosen.starts_at)))
        if state == "confirm" and isinstance(fed, Digits) and self._chosen is not None:
            if fed.digits == "1":
                self.state = "booking"
                return Book(self._chosen.session_id, self._phone)
            if fed.digits == "2":
                return self._ask("choose", *self._session_list())
            return self._retry(self._t("confirm", title=self._chosen.title,
                                       when=self._when(self._chosen.starts_at)))
        if state == "booking" and isinstance(fed, BookResult):
            return self._booked_result(fed)
        if state == "number" and isinstance(fed, Digits):
            if fed.digits == _REPEAT_KEY and not self._repeated and self.number:
                self._repeated = True  # once: then the node goes on
                self.state = "ending"
                return Speak((number_sentence(self.number, self.language),))
            return Finished(self.outcome)
        if state == "finding" and isinstance(fed, list):
            self._booked = [b for b in fed if isinstance(b, CallerBooking)][:_MATCH_LIMIT]
            if not self._booked:
                return self._say_then_finish(("none_booked",), "nothing_booked")
            self.state = "keying"
            return Speak((self._t("key_number"),), collect=True, max_digits=NUMBER_KEYS)
        if state == "keying" and isinstance(fed, Digits):
            return self._keyed(fed.digits.split("#")[0])
        if state == "choose_cancel" and isinstance(fed, Digits):
            picked = self._pick(self._offered, fed.digits)
            if picked is None:
                return self._retry(*self._offer)
            return self._ask_confirm(picked, (self._confirm_cancel(picked),))
        if state == "confirm_cancel" and isinstance(fed, Digits) \
                and self._to_cancel is not None:
            if fed.digits == "1":
                self.state = "cancelling"
                return Cancel(self._to_cancel.number, self._phone)
            if fed.digits == "2":
                return self._say_then_finish(("kept",), "kept")
            return self._retry(*self._confirm)
        if state == "cancelling" and isinstance(fed, CancelOutcome):
            key = {CancelOutcome.CANCELLED: "cancelled", CancelOutcome.NOT_FOUND: "c_not_found",
                   CancelOutcome.ALREADY: "c_already"}[fed]
            return self._say_then_finish((key,), "cancelled" if key == "cancelled"
                                         else "not_cancelled")
        raise ValueError(f"{fed!r} does not fit the booking dialogue in state {state!r}")

    # ---- internals -------------------------------------------------------------------------
    def _t(self, key: str, **values: object) -> str:
        return _text(self.language, key, **values)

    def _when(self, at: datetime) -> str:
        return when(at, self.tz, self.language)

    def _ask(self, state: str, *texts: str) -> Speak:
        self.state = state
        self._attempts = 0
        return Speak(texts, collect=True)

    def _retry(self, *texts: str) -> Step:
        """A wrong key or no key: asked once more, then the node ends."""
        self._attempts += 1
        if self._attempts > 1:
            return self._say_then_finish(("gave_up",), "gave_up")
        return Speak(texts, collect=True)

    def _say_then_finish(self, keys: tuple[str, ...], outcome: str) -> Speak:
        self.state = "ending"
        self.outcome = outcome
        return Speak(tuple(self._t(k) for k in keys))

    @staticmethod
    def _pick(items: list[T], digits: str) -> T | None:
        if len(digits) == 1 and "1" <= digits <= str(len(items)):
            return items[int(digits) - 1]
        return None

    def _session_list(self) -> tuple[str, ...]:
        items = []
        for key, s in enumerate(self._sessions, 1):
            if s.lottery:
                seats = self._t("lottery")
            elif s.free > 0:
                seats = self._t("seats", n=s.free)
            else:
                seats = self._t("full_waiting" if s.waiting_list else "full")
            items.append(self._t("item", choice=key, title=s.title, when=self._when(s.starts_at),
                                 seats=seats))
        return (self._t("list_intro"), *items, self._t("choose"))

    def _keyed(self, keys: str) -> Step:
        """The digits keyed for a booking number ("" for # alone or no key), matched only
        against the caller's own bookings: what is said never tells whether the number
        exists for another phone."""
        if not keys:
            return self._offer_list(self._booked_list())
        matches = [b for b in self._booked if keypad_digits(b.number) == keys]
        if len(matches) == 1:
            b = matches[0]
            return self._ask_confirm(b, (self._t("found", title=b.title,
                                                 when=self._when(b.starts_at)),
                                         number_sentence(b.number, self.language),
                                         self._t("cancel_it")))
        if matches:  # numbers alike on the keypad: the caller chooses, nothing is guessed
            return self._offer_list(self._match_list(matches[:self.max_events]))
        step = self._offer_list(self._booked_list())
        return Speak((self._t("no_match"), *step.texts), collect=True)

    def _offer_list(self, offer: tuple[list[CallerBooking], tuple[str, ...]]) -> Speak:
        self._offered, self._offer = offer
        return self._ask("choose_cancel", *self._offer)

    def _ask_confirm(self, b: CallerBooking, texts: tuple[str, ...]) -> Speak:
        self._to_cancel, self._confirm = b, texts
        return self._ask("confirm_cancel", *texts)

    def _booked_list(self) -> tuple[list[CallerBooking], tuple[str, ...]]:
        shown = self._booked[:self.max_events]
        items = []
        for key, b in enumerate(shown, 1):
            status = self._t("st_waiting") if b.status == "waiting" else \
                self._t("st_applied") if b.status == "applied" else ""
            items.append(self._t("booked_item", choice=key, title=b.title,
                                 when=self._when(b.starts_at), status=status))
        return shown, (self._t("booked_intro", n=len(shown)), *items,
                       self._t("choose_cancel"))

    def _match_list(self, matches: list[CallerBooking]
                    ) -> tuple[list[CallerBooking], tuple[str, ...]]:
        items = [self._t("match_item", choice=key, title=b.title, when=self._when(b.starts_at),
                         spelt=spell(b.number, self.language))
                 for key, b in enumerate(matches, 1)]
        return matches, (self._t("match_intro", n=len(matches)), *items,
                         self._t("choose_cancel"))

    def _confirm_cancel(self, b: CallerBooking) -> str:
        return self._t("confirm_cancel", title=b.title, when=self._when(b.starts_at))

    def _booked_result(self, result: BookResult) -> Step:
        heading = {BookOutcome.CONFIRMED: "confirmed", BookOutcome.WAITING: "waiting",
                   BookOutcome.APPLIED: "applied"}.get(result.outcome)
        if heading is None or result.number is None:
            reason = f"r_{result.outcome.value}"
            return self._say_then_finish((reason if reason in TEXTS["en"] else "r_refused",),
                                         f"refused_{result.outcome.value}")
        self.number, self.outcome = result.number, "booked"
        self.state = "number"
        self._attempts = 0
        return Speak((self._t(heading), number_sentence(result.number, self.language),
                      self._t("repeat")), collect=True, timeout_ms=5000)
