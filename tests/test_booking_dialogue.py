"""The booking node's dialogue, pure: every branch fed keys and port answers by hand —
booking (confirmed, waiting list, lottery, each refusal), the one repeat of the booking
number, cancelling one of the caller's own bookings by its keyed booking number or from the
list of them, wrong keys and silence, a withheld number, an unreachable bookings service —
in Japanese and English; and the keypad form of booking numbers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bookings import numbers
from ivr.booking_dialogue import (
    NUMBER_KEYS,
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
from ivr.keypad import keypad_digits

TZ = ZoneInfo("Asia/Tokyo")
START = datetime(2027, 5, 1, 10, 0, tzinfo=TZ)
LATER = datetime(2027, 5, 2, 14, 30, tzinfo=TZ)
NUMBER = "ABCD23456"
SESSIONS = [OpenSession(11, "ヨガ教室", START, 8, True),
            OpenSession(12, "料理教室", LATER, 0, True),
            OpenSession(13, "陶芸教室", LATER, 0, False, lottery=True)]
MINE = [CallerBooking("K7M2P3Q4R", "ヨガ教室", START, "confirmed"),
        CallerBooking("Z9Y8X7W6V", "料理教室", LATER, "waiting")]
YOGA_KEYS = "576273747"  # K7M2P3Q4R on the keypad
PHONE = "0312345678"


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


def to_number(d: BookingDialogue, booked: list[CallerBooking] = MINE) -> Speak:
    """Key 2, the caller's bookings found: the booking number is asked for."""
    d.start()
    assert d.feed(Digits("2")) == ListBookings(PHONE, 50)  # all their own, to match against
    step = d.feed(booked)
    assert isinstance(step, Speak) and step.collect and step.max_digits == NUMBER_KEYS
    assert step.texts == (TEXTS[d.language]["key_number"],)
    return step


def to_cancel_list(d: BookingDialogue, booked: list[CallerBooking] = MINE) -> Speak:
    """Key 2, then no number keyed: the caller's bookings are read one per key."""
    to_number(d, booked)
    step = d.feed(Digits(""))
    assert isinstance(step, Speak) and step.collect and step.max_digits == 1
    return step


def test_cancelling_lists_the_callers_own_bookings_without_their_numbers() -> None:
    d = dialogue()
    step = to_cancel_list(d)
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
    to_cancel_list(d)
    d.feed(Digits("1"))
    d.feed(Digits("1"))
    assert said(d.feed(outcome)) == (TEXTS["en"][text],)
    assert d.feed(Played()) == Finished("not_cancelled")


def test_2_keeps_the_booking_and_wrong_keys_end_the_cancel() -> None:
    d = dialogue()
    to_cancel_list(d)
    d.feed(Digits("1"))
    assert said(d.feed(Digits("2"))) == ("取り消しはしませんでした。",)
    assert d.feed(Played()) == Finished("kept")
    d = dialogue()
    listed = said(to_cancel_list(d))
    assert said(d.feed(Digits("3"))) == listed
    confirm = said(d.feed(Digits("1")))
    assert said(d.feed(Digits(""))) == confirm
    assert said(d.feed(Digits("5"))) == (TEXTS["ja"]["gave_up"],)


def test_no_bookings_to_cancel_is_said_without_asking_for_a_number() -> None:
    d = dialogue()
    d.start()
    d.feed(Digits("2"))
    assert said(d.feed([])) == ("この電話番号でのお申し込みは見つかりませんでした。",)
    assert d.feed(Played()) == Finished("nothing_booked")


@pytest.mark.parametrize("keys", [YOGA_KEYS, YOGA_KEYS + "#"])
def test_a_keyed_booking_number_is_read_back_and_cancelled_after_1(keys: str) -> None:
    d = dialogue()
    to_number(d)
    confirm = d.feed(Digits(keys))
    assert said(confirm) == ("ヨガ教室、5月1日、10時のお申し込みです。",
                             "申込番号は、ケー、なな、エム、に。ピー、さん、キュー、よん、アール、です。",
                             "取り消す場合は1を、やめる場合は2を押してください。")
    assert isinstance(confirm, Speak) and confirm.collect and confirm.max_digits == 1
    assert d.feed(Digits("1")) == Cancel("K7M2P3Q4R", PHONE)
    assert said(d.feed(CancelOutcome.CANCELLED)) == ("お申し込みを取り消しました。",)
    assert d.feed(Played()) == Finished("cancelled")


def test_a_keyed_number_is_asked_for_and_confirmed_in_english() -> None:
    d = dialogue("en")
    prompt = to_number(d)
    assert "A, B and C are on 2" in said(prompt)[0] and "hash" in said(prompt)[0]
    confirm = d.feed(Digits("999897968"))
    assert said(confirm) == ("Your booking: 料理教室, May 2 at 2:30 PM.",
                             number_sentence("Z9Y8X7W6V", "en"),
                             "To cancel it, press 1. To keep it, press 2.")
    assert said(d.feed(Digits("7"))) == said(confirm)  # a wrong key: asked once more
    assert said(d.feed(Digits("2"))) == ("Your booking is kept.",)
    assert d.feed(Played()) == Finished("kept")


def test_a_wrong_key_twice_after_a_keyed_number_ends_the_node() -> None:
    d = dialogue()
    to_number(d)
    confirm = said(d.feed(Digits(YOGA_KEYS)))
    assert said(d.feed(Digits(""))) == confirm
    assert said(d.feed(Digits("3"))) == (TEXTS["ja"]["gave_up"],)
    assert d.feed(Played()) == Finished("gave_up")


@pytest.mark.parametrize("keys", ["", "#", "#576"])
def test_hash_alone_or_no_key_goes_straight_to_the_list(keys: str) -> None:
    d = dialogue()
    to_number(d)
    step = d.feed(Digits(keys))
    assert said(step)[0] == "この電話番号でのお申し込みは2件あります。"
    assert said(d.feed(Digits("1")))[0].startswith("ヨガ教室、5月1日、10時のお申し込みを取り消")


@pytest.mark.parametrize("keys", ["222222222", YOGA_KEYS[:-1], YOGA_KEYS + "7", "5762*3747"])
def test_no_match_is_said_once_and_the_list_offered(keys: str) -> None:
    d = dialogue()
    to_number(d)
    step = d.feed(Digits(keys))
    listed = ("この電話番号でのお申し込みは2件あります。",
              "1番、ヨガ教室、5月1日、10時。",
              "2番、料理教室、5月2日、14時30分、キャンセル待ち。",
              "取り消すお申し込みの番号を押してください。")
    # the same words whatever was keyed: nothing tells whether the number is someone else's
    assert said(step) == ("押された申込番号のお申し込みは、この電話番号では見つかりませんでした。",
                          *listed)
    assert isinstance(step, Speak) and step.collect and step.max_digits == 1
    assert said(d.feed(Digits("5"))) == listed  # a wrong key: the list again, not the apology
    d.feed(Digits("2"))
    assert d.feed(Digits("1")) == Cancel("Z9Y8X7W6V", PHONE)


def test_numbers_alike_on_the_keypad_are_offered_as_a_short_list() -> None:
    alike = [CallerBooking("ABCD23456", "ヨガ教室", START, "confirmed"),
             MINE[1],
             CallerBooking("BACD23456", "料理教室", LATER, "confirmed")]
    assert keypad_digits("ABCD23456") == keypad_digits("BACD23456") == "222323456"
    d = dialogue()
    to_number(d, alike)
    step = d.feed(Digits("222323456"))
    assert said(step) == ("押された番号に当たるお申し込みは2件あります。",
                          "1番、ヨガ教室、5月1日、10時、申込番号、"
                          "エー、ビー、シー、ディー。に、さん、よん、ご、ろく。",
                          "2番、料理教室、5月2日、14時30分、申込番号、"
                          "ビー、エー、シー、ディー。に、さん、よん、ご、ろく。",
                          "取り消すお申し込みの番号を押してください。")
    assert said(d.feed(Digits("3"))) == said(step)  # two offered: 3 is no choice
    confirm = said(d.feed(Digits("2")))
    assert confirm == ("料理教室、5月2日、14時30分のお申し込みを取り消します。"
                       "よろしければ1を、やめる場合は2を押してください。",)
    assert d.feed(Digits("1")) == Cancel("BACD23456", PHONE)
    en = dialogue("en")
    to_number(en, alike)
    assert said(en.feed(Digits("222323456")))[0] == "2 of your bookings match the keys you pressed."


def test_a_keyed_number_matches_any_of_the_callers_bookings_not_only_those_read() -> None:
    many = [CallerBooking(f"{c}7M2P3Q4R", "ヨガ教室", START, "confirmed")
            for c in "23456789AB"]
    many += [MINE[1]]  # the eleventh: more than nine, the port may give up to fifty
    d = dialogue(max_events=2)
    to_number(d, many)
    assert said(d.feed(Digits("999897968")))[0] == "料理教室、5月2日、14時30分のお申し込みです。"
    short = dialogue(max_events=2)
    to_number(short, many)
    listed = said(short.feed(Digits("")))
    assert listed[0] == "この電話番号でのお申し込みは2件あります。" and len(listed) == 4


def test_the_keypad_carries_each_letter_on_its_e161_key() -> None:
    assert keypad_digits("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "22233344455566677778889999"
    assert keypad_digits("23456789") == "23456789"
    assert keypad_digits("k7m2p3q4r") == YOGA_KEYS
    for c in numbers.ALPHABET:  # every character of a booking number is one key, 2 to 9
        assert keypad_digits(c) in "23456789" and len(keypad_digits(c)) == 1
    assert len(keypad_digits(numbers.new_number())) == numbers.LENGTH == NUMBER_KEYS - 1
    with pytest.raises(ValueError, match="no key"):
        keypad_digits("ABCD-2345")


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
