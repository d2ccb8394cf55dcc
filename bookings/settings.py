"""The `bookings:` section of madoguchi.yaml: how long bookings are kept after their
session, how often the purge runs, and the public page's rate limit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from core.yamlconf import Node

DEFAULT_RETENTION_DAYS = 90  # after the session's day: time for questions and refunds


@dataclass(frozen=True)
class BookingSettings:
    retention_days: int = DEFAULT_RETENTION_DAYS
    purge_interval_s: int = 3600
    reports_dir: Path = Path("deletion-reports")  # relative paths are under the state folder
    # public page: requests that write (book, cancel) per address and minute
    public_writes_per_minute: int = 10
    public_reads_per_minute: int = 120

    def reports(self, state_dir: Path) -> Path:
        return self.reports_dir if self.reports_dir.is_absolute() \
            else state_dir / self.reports_dir


def load_booking_settings(node: Node) -> BookingSettings:
    """Validate the `bookings:` mapping; errors name file:line:column."""
    settings = BookingSettings(
        retention_days=node.integer("retention_days", DEFAULT_RETENTION_DAYS, 1, 36500),
        purge_interval_s=node.integer("purge_interval", 3600, 60, 86400),
        reports_dir=Path(node.text("reports_dir", "deletion-reports")),
        public_writes_per_minute=node.integer("public_writes_per_minute", 10, 1, 100_000),
        public_reads_per_minute=node.integer("public_reads_per_minute", 120, 1, 1_000_000),
    )
    node.done()
    return settings


def booking_settings(settings: Settings) -> BookingSettings:
    node = settings.sections.get("bookings")
    return BookingSettings() if node is None else load_booking_settings(node)
