"""Bookings tables on the engine's database: the catalogue (events, their sessions) and the
bookings themselves (personal data: name, furigana, phone, note)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, UtcDateTime


class BookingEvent(Base):
    """An event or course of the catalogue; its texts in Japanese and English."""

    __tablename__ = "booking_events"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # a slug, in URLs
    category: Mapped[str] = mapped_column(String(32))
    title_ja: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    description_ja: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    fee_ja: Mapped[str] = mapped_column(String(200), default="")
    fee_en: Mapped[str] = mapped_column(String(200), default="")
    rule: Mapped[str] = mapped_column(String(16))  # allocation.Rule
    duplicates: Mapped[str] = mapped_column(String(8))  # allocation.DuplicatePolicy
    waiting_list: Mapped[bool] = mapped_column(Boolean)
    residents_only: Mapped[bool] = mapped_column(Boolean)
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    max_party: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime())
    board_event: Mapped[str | None] = mapped_column(String(48))  # the IVR board's entry
    published: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BookingSession(Base):
    """One date of an event, with its seats. `taken` counts confirmed seats: it only moves
    through a conditional UPDATE that keeps it within `capacity` (service.py)."""

    __tablename__ = "booking_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        String(48), ForeignKey("booking_events.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    venue_ja: Mapped[str] = mapped_column(String(200))
    venue_en: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    draw_seed: Mapped[str | None] = mapped_column(String(64))  # the lottery's, once drawn
    drawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_booking_sessions_event", "event_id"),)


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)
    session_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("booking_sessions.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # allocation.Status
    party: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    furigana: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))  # digits only
    note: Mapped[str] = mapped_column(Text, default="")
    resident: Mapped[bool] = mapped_column(Boolean)
    age: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))  # web | desk | ivr
    flagged: Mapped[bool] = mapped_column(Boolean)  # a duplicate by phone, accepted
    # place on the waiting list: the lottery's drawn order, 0 for first come (then by id)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    call_id: Mapped[str | None] = mapped_column(String(32))  # the call it was taken on
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_bookings_session_status", "session_id", "status"),
        Index("ix_bookings_phone", "phone"),
    )
