"""The allocation rules, pure (no I/O, no clock of their own): the application window, who
may apply, duplicates by phone, first come first served, the lottery and the waiting list.

The service reads the database, asks these functions what to do and writes the answer; the
seat counter itself is guarded in the database (service.py), since only it sees concurrent
bookings.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Rule(StrEnum):
    FIRST_COME = "first_come"  # 先着順
    LOTTERY = "lottery"  # 抽選, drawn after the window closes


class DuplicatePolicy(StrEnum):
    REFUSE = "refuse"
    FLAG = "flag"  # accepted, marked for staff to look at


class Status(StrEnum):
    CONFIRMED = "confirmed"
    WAITING = "waiting"  # キャンセル待ち
    APPLIED = "applied"  # a lottery entry before the draw
    LOST = "lost"  # a lottery entry not drawn (and no waiting list)
    CANCELLED = "cancelled"


ACTIVE = frozenset({Status.CONFIRMED, Status.WAITING, Status.APPLIED})


class WindowState(StrEnum):
    NOT_YET = "not_yet"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Window:
    """Applications accepted from `opens` (included) until `closes` (excluded); aware
    datetimes, entered and shown in the city's time (core.clock.CITY_TZ)."""

    opens: datetime
    closes: datetime

    def __post_init__(self) -> None:
        if self.opens.tzinfo is None or self.closes.tzinfo is None:
            raise ValueError("window times must be aware")
        if self.closes <= self.opens:
            raise ValueError("the window must close after it opens")

    def state(self, at: datetime) -> WindowState:
        if at < self.opens:
            return WindowState.NOT_YET
        return WindowState.OPEN if at < self.closes else WindowState.CLOSED


@dataclass(frozen=True)
class Eligibility:
    residents_only: bool = False
    min_age: int | None = None
    max_age: int | None = None

    def __post_init__(self) -> None:
        if self.min_age is not None and self.max_age is not None \
                and self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")

    @property
    def asks_age(self) -> bool:
        return self.min_age is not None or self.max_age is not None


@dataclass(frozen=True)
class Applicant:
    resident: bool
    age: int | None


def ineligibility(rules: Eligibility, who: Applicant) -> str | None:
    """Why this applicant may not apply (an error id), or None."""
    if rules.residents_only and not who.resident:
        return "residents_only"
    if rules.asks_age:
        if who.age is None:
            return "age_required"
        if rules.min_age is not None and who.age < rules.min_age:
            return "too_young"
        if rules.max_age is not None and who.age > rules.max_age:
            return "too_old"
    return None


def duplicate(policy: DuplicatePolicy, same_phone_active: int) -> bool | None:
    """A booking by a phone that already holds an active one for the session: None when it
    must be refused, else whether it is flagged."""
    if same_phone_active == 0:
        return False
    return None if policy is DuplicatePolicy.REFUSE else True


def first_come(capacity: int, taken: int, party: int, waiting_list: bool) -> Status | None:
    """Where a first-come booking goes given the seats taken so far: confirmed if they fit,
    else the waiting list if the event keeps one, else None (full). The database repeats
    the seat check atomically; this answers the question for the caller's message."""
    if taken + party <= capacity:
        return Status.CONFIRMED
    return Status.WAITING if waiting_list else None


@dataclass(frozen=True)
class Entry:
    id: int
    party: int


@dataclass(frozen=True)
class Draw:
    seed: str
    confirmed: tuple[int, ...]
    waiting: tuple[int, ...]  # in the order they are promoted
    lost: tuple[int, ...]


def new_seed() -> str:
    return secrets.token_hex(16)


def _rng(seed: str) -> random.Random:
    # reproducible on purpose (the seed itself comes from secrets); derived with SHA-256,
    # not Python's hashing of str, which is salted per process
    digest = hashlib.sha256(seed.encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))  # noqa: S311


def draw(entries: Sequence[Entry], capacity: int, seed: str, waiting_list: bool) -> Draw:
    """The lottery: the entries in id order, shuffled by the seed, seated in that order
    while their party fits; the others keep the drawn order on the waiting list (or lose).
    The same entries, capacity and seed always give the same draw, so a stored seed lets
    anyone check it."""
    order = sorted(entries, key=lambda e: e.id)
    _rng(seed).shuffle(order)
    free = capacity
    confirmed: list[int] = []
    rest: list[int] = []
    for entry in order:
        if entry.party <= free:
            confirmed.append(entry.id)
            free -= entry.party
        else:
            rest.append(entry.id)
    if waiting_list:
        return Draw(seed, tuple(confirmed), tuple(rest), ())
    return Draw(seed, tuple(confirmed), (), tuple(rest))


def promotions(waiting: Sequence[Entry], free: int) -> list[int]:
    """Who leaves the waiting list when `free` seats come back: in waiting order, each one
    whose party fits in what is left (a party too large for now keeps its place)."""
    promoted: list[int] = []
    for entry in waiting:
        if entry.party <= free:
            promoted.append(entry.id)
            free -= entry.party
    return promoted


def phone_digits(raw: str) -> str:
    """A phone number compared by its digits only: 03-1234-5678 and 0312345678 are one."""
    return "".join(c for c in raw if "0" <= c <= "9")
