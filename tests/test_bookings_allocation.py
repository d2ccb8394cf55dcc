"""The pure allocation rules of bookings: window, eligibility, duplicates, first come, the
lottery (reproducible from its seed), the waiting list, and booking numbers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bookings import numbers
from bookings.allocation import (
    Applicant,
    DuplicatePolicy,
    Eligibility,
    Entry,
    Status,
    Window,
    WindowState,
    draw,
    duplicate,
    first_come,
    ineligibility,
    phone_digits,
    promotions,
)
from core.clock import CITY_TZ

OPENS = datetime(2027, 4, 1, 9, 0, tzinfo=CITY_TZ)


def test_the_window_opens_at_its_time_and_closes_before_its_end() -> None:
    w = Window(OPENS, OPENS + timedelta(days=10))
    assert w.state(OPENS - timedelta(seconds=1)) is WindowState.NOT_YET
    assert w.state(OPENS) is WindowState.OPEN
    assert w.state(OPENS + timedelta(days=10) - timedelta(seconds=1)) is WindowState.OPEN
    assert w.state(OPENS + timedelta(days=10)) is WindowState.CLOSED
    # 09:00 in Tokyo is midnight UTC: the window is the city's, whatever the server's zone
    assert w.state(datetime.fromisoformat("2027-04-01T00:00:00+00:00")) is WindowState.OPEN


def test_a_window_closing_before_it_opens_or_naive_is_refused() -> None:
    with pytest.raises(ValueError):
        Window(OPENS, OPENS)
    with pytest.raises(ValueError):
        Window(datetime(2027, 4, 1), datetime(2027, 4, 2))


def test_eligibility_residents_and_age_range() -> None:
    rules = Eligibility(residents_only=True, min_age=60, max_age=80)
    assert ineligibility(rules, Applicant(resident=False, age=70)) == "residents_only"
    assert ineligibility(rules, Applicant(resident=True, age=None)) == "age_required"
    assert ineligibility(rules, Applicant(resident=True, age=59)) == "too_young"
    assert ineligibility(rules, Applicant(resident=True, age=81)) == "too_old"
    assert ineligibility(rules, Applicant(resident=True, age=60)) is None
    assert ineligibility(rules, Applicant(resident=True, age=80)) is None
    assert ineligibility(Eligibility(), Applicant(resident=False, age=None)) is None
    with pytest.raises(ValueError):
        Eligibility(min_age=10, max_age=9)


def test_duplicates_by_phone_refused_or_flagged_per_event() -> None:
    assert duplicate(DuplicatePolicy.REFUSE, 0) is False
    assert duplicate(DuplicatePolicy.REFUSE, 1) is None
    assert duplicate(DuplicatePolicy.FLAG, 0) is False
    assert duplicate(DuplicatePolicy.FLAG, 2) is True
    assert phone_digits("03-1234-5678") == phone_digits(" 0312345678") == "0312345678"


def test_first_come_fills_then_waits_or_refuses() -> None:
    assert first_come(10, 8, 2, waiting_list=False) is Status.CONFIRMED
    assert first_come(10, 9, 2, waiting_list=True) is Status.WAITING
    assert first_come(10, 9, 2, waiting_list=False) is None


ENTRIES = [Entry(i, 1 + i % 3) for i in range(1, 41)]


def test_a_lottery_is_the_same_with_the_same_seed() -> None:
    first = draw(ENTRIES, 20, "seed-1", waiting_list=True)
    again = draw(list(reversed(ENTRIES)), 20, "seed-1", waiting_list=True)
    assert first == again  # the order entries come in does not matter, only the seed
    other = draw(ENTRIES, 20, "seed-2", waiting_list=True)
    assert other.confirmed != first.confirmed
    parties = {e.id: e.party for e in ENTRIES}
    assert sum(parties[i] for i in first.confirmed) <= 20
    assert sorted(first.confirmed + first.waiting) == [e.id for e in ENTRIES]
    assert first.lost == ()


def test_a_lottery_without_waiting_list_loses_the_rest() -> None:
    d = draw(ENTRIES, 5, "s", waiting_list=False)
    assert d.waiting == () and len(d.lost) == len(ENTRIES) - len(d.confirmed)


def test_a_lottery_with_fewer_entries_than_seats_seats_everyone() -> None:
    d = draw(ENTRIES[:3], 100, "s", waiting_list=True)
    assert sorted(d.confirmed) == [1, 2, 3] and d.waiting == ()


def test_promotion_keeps_waiting_order_and_skips_a_party_too_large() -> None:
    waiting = [Entry(5, 3), Entry(6, 1), Entry(7, 2)]
    assert promotions(waiting, 1) == [6]
    assert promotions(waiting, 3) == [5]
    assert promotions(waiting, 4) == [5, 6]
    assert promotions(waiting, 0) == []


def test_booking_numbers_are_unambiguous_and_checked() -> None:
    seen = {numbers.new_number() for _ in range(2000)}
    assert len(seen) == 2000
    for n in seen:
        assert len(n) == numbers.LENGTH
        assert not set(n) & set("0O1IL")
        assert numbers.normalise(n) == n
        assert numbers.normalise(numbers.display(n).lower()) == n
    n = next(iter(seen))
    wrong = n[0] + ("2" if n[1] != "2" else "3") + n[2:]
    assert numbers.normalise(wrong) is None  # one character wrong
    if n[0] != n[1]:
        assert numbers.normalise(n[1] + n[0] + n[2:]) is None  # two neighbours swapped
    assert numbers.normalise("") is None
    assert numbers.normalise("O" * numbers.LENGTH) is None
    assert numbers.normalise(n + "2") is None
