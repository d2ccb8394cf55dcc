"""The booking node's dialogue, pure: every branch fed keys and port answers by hand —
booking (confirmed, waiting list, lottery, each refusal), the one repeat of the booking
number, cancelling one of the caller's own bookings, wrong keys and silence, a withheld
number, an unreachable bookings service — in Japanese and English."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bookings import numbers
from ivr.booking_dialogue import (
    TEXTS,
    Book,
    BookingDialogue,
    Cancel,
    Finished,
    ListBookings,
    ListSessions,
    PortFailed,
    Speak,
    number_sentence,
    spell,
    usable_phone,
    when,
)
from ivr.booking_port import BookOutcome, BookResult, CallerBooking, CancelOutcome, OpenSession
from ivr.interpreter import Digits, Played

TZ = ZoneInfo("Asia/Tokyo")
START = datetime(2027, 5, 1, 10, 0, tzinfo=TZ)
LATER = datetime(2027, 5, 2, 14, 30, tzinfo=TZ)
NUMBER = "ABCD23456"
SESSIONS = [OpenSession(11, "ヨガ教室", START, 8, True),
            OpenSession(12, "料理教室", LATER, 0, True),
            OpenSession(13, "陶芸教室", LATER, 0, False, lottery=True)]
MINE = [CallerBooking("K7M2P3Q4R", "ヨガ教室", START, "confirmed"),
        CallerBooking("Z9Y8X7W6V", "料理教室", LATER, "waiting")]


def dialogue(language: str = "ja", caller: str = "03-1234-5678",
             max_events: int = 9) -> BookingDialogue:
    return BookingDialogue("kouza", language, caller, TZ, max_events)


def said(step: object) -> tuple[str, ...]:
    assert isinstance(step, Speak), step
    return step.texts


def to_list(d: BookingDialogue, sessions: list[OpenSession] = SESSIONS) -> Speak:
    menu = d.start()
    assert said(menu) == (TEXTS[d.language]["menu"],) and isinstance(menu, Speak)
    assert menu.collect
    assert d.feed(Digits("1")) == ListSessions("kouza", d.max_events)
    step = d.feed(sessions)
    assert isinstance(step, Speak) and step.collect
    return step


def test_the_open_dates_are_read_one_per_key_with_their_seats() -> None:
    step = to_list(dialogue())
    assert step.texts == ("お申し込みいただける日程は次のとおりです。",
                          "1番、ヨガ教室、5月1日、10時、残り8席。",
                          "2番、料理教室、5月2日、14時30分、満席のため、キャンセル待ちとなります。",
                          "3番、陶芸教室、5月2日、14時30分、抽選です。",
                          "ご希望の番号を押してください。")
    en = to_list(dialogue("en"))
    assert en.texts[1] == "1: ヨガ教室, May 1 at 10:00 AM, 8 seats left."
    assert en.texts[2].endswith("full, you would be on the waiting list.")


def test_max_events_limits_what_is_asked_and_read() -> None:
    d = dialogue(max_events=1)
    d.start()
    assert d.feed(Digits("1")) == ListSessions("kouza", 1)
    step = d.feed(SESSIONS)  # a port giving more is cut
    assert len(said(step)) == 3
    assert said(d.feed(Digits("2"))) == said(step)  # key 2 offers nothing: asked again


def test_booking_confirmed_reads_the_number_and_repeats_it_once_on_9() -> None:
    d = dialogue()
    to_list(d)
    confirm = d.feed(Digits("1"))
    assert said(confirm) == ("ヨガ教室、5月1日、10時を、この電話番号でお申し込みします。"
                             "よろしければ1を、ほかの日程を選ぶ場合は2を押してください。",)
    assert d.feed(Digits("1")) == Book(11, "0312345678")
    step = d.feed(BookResult(BookOutcome.CONFIRMED, NUMBER))
    assert isinstance(step, Speak) and step.collect
    assert step.texts == ("お申し込みを受け付けました。",
                          "申込番号は、エー、ビー、シー、ディー。に、さん、よん、ご、ろく、です。",
                          "もう一度お聞きになる場合は9を押してください。")
    assert d.number == NUMBER and d.outcome == "booked"
    again = d.feed(Digits("9"))
    assert said(again) == (number_sentence(NUMBER, "ja"),)
    assert isinstance(again, Speak) and not again.collect
    assert d.feed(Played()) == Finished("booked")


def test_no_key_after_the_number_ends_the_node() -> None:
    d = dialogue("en")
    to_list(d)
    d.feed(Digits("1"))
    d.feed(Digits("1"))
    step = d.feed(BookResult(BookOutcome.CONFIRMED, NUMBER))
    assert said(step)[1] == "Your booking number is: A, B, C, D. two, three, four, five, six."
    assert d.feed(Digits("")) == Finished("booked")


@pytest.mark.parametrize(("outcome", "heading"), [
    (BookOutcome.WAITING, "満席のため、キャンセル待ちとして受け付けました。"),
    (BookOutcome.APPLIED, "抽選のお申し込みとして受け付けました。"),
])
def test_the_waiting_list_and_the_lottery_are_said_as_such(outcome: BookOutcome,
                                                          heading: str) -> None:
    d = dialogue()
    to_list(d)
    d.feed(Digits("2"))
    assert d.feed(Digits("1")) == Book(12, "0312345678")
    step = d.feed(BookResult(outcome, NUMBER))
    assert said(step)[0] == heading and said(step)[1] == number_sentence(NUMBER, "ja")


@pytest.mark.parametrize(("outcome", "text"), [
    (BookOutcome.FULL, "r_full"), (BookOutcome.CLOSED, "r_closed"),
    (BookOutcome.STOPPED, "r_stopped"), (BookOutcome.DUPLICATE, "r_duplicate"),
    (BookOutcome.NOT_ELIGIBLE, "r_not_eligible"), (BookOutcome.REFUSED, "r_refused"),
])
def test_each_refusal_is_said_and_ends_the_node(outcome: BookOutcome, text: str) -> None:
    for language in ("ja", "en"):
        d = dialogue(language)
        to_list(d)
        d.feed(Digits("1"))
        d.feed(Digits("1"))
        step = d.feed(BookResult(outcome))
        assert said(step) == (TEXTS[language][text],)
        assert isinstance(step, Speak) and not step.collect
        assert d.feed(Played()) == Finished(f"refused_{outcome.value}")
        assert d.number is None


def test_a_confirmed_outcome_without_a_number_is_a_refusal() -> None:
    d = dialogue()
    to_list(d)
    d.feed(Digits("1"))
    d.feed(Digits("1"))
    assert said(d.feed(BookResult(BookOutcome.CONFIRMED))) == (TEXTS["ja"]["r_refused"],)


def test_2_at_the_confirmation_goes_back_to_the_list() -> None:
    d = dialogue()
    listed = to_list(d)
    d.feed(Digits("2"))
    assert said(d.feed(Digits("2"))) == listed.texts
    d.feed(Digits("3"))
    assert d.feed(Digits("1")) == Book(13, "0312345678")


def test_wrong_keys_and_silence_ask_once_more_then_end() -> None:
    d = dialogue()
    menu = said(d.start())
    assert said(d.feed(Digits("7"))) == menu
    step = d.feed(Digits(""))
    assert said(step) == (TEXTS["ja"]["gave_up"],)
    assert d.feed(Played()) == Finished("gave_up")
    d = dialogue()
    listed = to_list(d)
    assert said(d.feed(Digits("4"))) == listed.texts  # three dates: 4 is no choice
    d.feed(Digits("2"))  # a right key resets the count
    confirm = said(d.feed(Digits("")))[0]
    assert confirm.startswith("料理教室")
    assert said(d.feed(Digits("*"))) == (TEXTS["ja"]["gave_up"],)


def test_nothing_open_is_said() -> None:
    d = dialogue("en")
    d.start()
    d.feed(Digits("1"))
    assert said(d.feed([])) == ("There are no courses or events to book by phone at the moment.",)
    assert d.feed(Played()) == Finished("nothing_open")


@pytest.mark.parametrize("caller", ["anonymous", "", "Anonymous <sip:x>", "12345", None])
def test_a_withheld_or_unusable_number_is_refused_politely(caller: str | None) -> None:
    d = dialogue(caller=caller or "")
    step = d.start()
    assert said(step) == (TEXTS["ja"]["no_phone"],)
    assert d.feed(Played()) == Finished("no_phone")


def test_the_number_booked_for_is_the_callers_digits() -> None:
    assert usable_phone("+81-3-1234-5678") == "81312345678"
    assert usable_phone("0312345678") == "0312345678"
    assert usable_phone("anonymous") is None


def test_cancelling_lists_the_callers_own_bookings_without_their_numbers() -> None:
    d = dialogue()
    d.start()
    assert d.feed(Digits("2")) == ListBookings("0312345678", 9)
    step = d.feed(MINE)
    assert said(step) == ("この電話番号でのお申し込みは2件あります。",
                          "1番、ヨガ教室、5月1日、10時。",
                          "2番、料理教室、5月2日、14時30分、キャンセル待ち。",
                          "取り消すお申し込みの番号を押してください。")
    assert not any("K7M2" in text for text in said(step))  # a spoofed caller id learns none
    confirm = d.feed(Digits("2"))
    assert said(confirm) == ("料理教室、5月2日、14時30分のお申し込みを取り消します。"
                             "よろしければ1を、やめる場合は2を押してください。",)
    assert d.feed(Digits("1")) == Cancel("Z9Y8X7W6V", "0312345678")
    assert said(d.feed(CancelOutcome.CANCELLED)) == ("お申し込みを取り消しました。",)
    assert d.feed(Played()) == Finished("cancelled")


@pytest.mark.parametrize(("outcome", "text"), [(CancelOutcome.NOT_FOUND, "c_not_found"),
                                               (CancelOutcome.ALREADY, "c_already")])
def test_a_cancel_that_finds_nothing_is_said(outcome: CancelOutcome, text: str) -> None:
    d = dialogue("en")
    d.start()
    d.feed(Digits("2"))
    d.feed(MINE)
    d.feed(Digits("1"))
    d.feed(Digits("1"))
    assert said(d.feed(outcome)) == (TEXTS["en"][text],)
    assert d.feed(Played()) == Finished("not_cancelled")


def test_2_keeps_the_booking_and_wrong_keys_end_the_cancel() -> None:
    d = dialogue()
    d.start()
    d.feed(Digits("2"))
    d.feed(MINE)
    d.feed(Digits("1"))
    assert said(d.feed(Digits("2"))) == ("取り消しはしませんでした。",)
    assert d.feed(Played()) == Finished("kept")
    d = dialogue()
    d.start()
    d.feed(Digits("2"))
    listed = said(d.feed(MINE))
    assert said(d.feed(Digits("3"))) == listed
    confirm = said(d.feed(Digits("1")))
    assert said(d.feed(Digits(""))) == confirm
    assert said(d.feed(Digits("5"))) == (TEXTS["ja"]["gave_up"],)


def test_no_bookings_to_cancel_is_said() -> None:
    d = dialogue()
    d.start()
    d.feed(Digits("2"))
    assert said(d.feed([])) == ("この電話番号でのお申し込みは見つかりませんでした。",)
    assert d.feed(Played()) == Finished("nothing_booked")


@pytest.mark.parametrize("keys", [["1"], ["2"], ["1", "1", "1"]])
def test_an_unreachable_bookings_service_is_apologised_for(keys: list[str]) -> None:
    d = dialogue()
    d.start()
    for k in keys[:1]:
        d.feed(Digits(k))
    if len(keys) > 1:
        d.feed(SESSIONS)
        d.feed(Digits("1"))
        d.feed(Digits("1"))
    assert said(d.feed(PortFailed())) == (TEXTS["ja"]["failed"],)
    assert d.feed(Played()) == Finished("failed")


def test_an_answer_that_does_not_fit_the_state_is_a_bug() -> None:
    d = dialogue()
    d.start()
    with pytest.raises(ValueError, match="does not fit"):
        d.feed(BookResult(BookOutcome.CONFIRMED, NUMBER))


def test_numbers_are_spelt_in_their_two_groups_and_dates_said_locally() -> None:
    assert spell("HJKM23456", "ja") == "エイチ、ジェー、ケー、エム。に、さん、よん、ご、ろく"
    assert spell("WXYZ789PQ", "en") == "W, X, Y, Z. seven, eight, nine, P, Q"
    utc = datetime(2027, 5, 1, 1, 5, tzinfo=ZoneInfo("UTC"))
    assert when(utc, TZ, "ja") == "5月1日、10時5分"
    assert when(utc, TZ, "en") == "May 1 at 10:05 AM"
    # every character of the booking alphabet has a Japanese reading (never the raw letter)
    for c in numbers.ALPHABET:
        assert c not in spell(c * numbers.LENGTH, "ja"), c
