"""The `recordings:` section of madoguchi.yaml: retention, archive folder, job intervals."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.files import write_durably
from core.settings import Settings
from core.statefile import read_json
from core.yamlconf import ConfigError, Node

# The specification keeps call logs and recordings at least two months (§12(1)エ, セ): the
# longest two consecutive months have 62 days, and nothing below 60 is ever accepted.
DEFAULT_RETENTION_DAYS = 62
MIN_RETENTION_DAYS = 60
MAX_RETENTION_DAYS = 36500
# the retention set at run time (admin page): it outlives a restart and wins over the YAML
RETENTION_FILE = "recordings-retention.json"


@dataclass(frozen=True)
class RecordingSettings:
    retention_days: int = DEFAULT_RETENTION_DAYS
    archive_dir: Path = Path("archive")  # relative paths are under the state folder
    reports_dir: Path = Path("deletion-reports")
    cache_dir: Path = Path("cache/recordings")  # converted audio and waveform peaks
    reconcile_interval_s: int = 600
    purge_interval_s: int = 3600
    # a spool file untouched this long, of a call no longer live, is left over from a crash
    stale_after_s: int = 600

    def resolve(self, state_dir: Path, path: Path) -> Path:
        return path if path.is_absolute() else (state_dir / path)


def load_recording_settings(node: Node) -> RecordingSettings:
    """Validate the `recordings:` mapping; errors name file:line:column."""
    days = node.integer("retention_days", DEFAULT_RETENTION_DAYS)
    if days < MIN_RETENTION_DAYS:
        raise ConfigError(node.at("retention_days"),
                          f"'retention_days' must be at least {MIN_RETENTION_DAYS} (the "
                          f"specification keeps recordings two months), got {days}")
    if days > MAX_RETENTION_DAYS:
        raise ConfigError(node.at("retention_days"), "'retention_days' is beyond 100 years")
    settings = RecordingSettings(
        retention_days=days,
        archive_dir=Path(node.text("archive_dir", "archive")),
        reports_dir=Path(node.text("reports_dir", "deletion-reports")),
        cache_dir=Path(node.text("cache_dir", "cache/recordings")),
        reconcile_interval_s=node.integer("reconcile_interval", 600, 10, 86400),
        purge_interval_s=node.integer("purge_interval", 3600, 60, 86400),
        stale_after_s=node.integer("stale_after", 600, 30, 86400),
    )
    node.done()
    return settings


def recording_settings(settings: Settings) -> RecordingSettings:
    """This feature's settings from madoguchi.yaml's `recordings:` section (validated by the
    application at start-up, so a bad value stops the start with file:line:column)."""
    node = settings.sections.get("recordings")
    return RecordingSettings() if node is None else load_recording_settings(node)


def check_retention(days: int) -> None:
    if days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} days (the "
                         f"specification keeps recordings two months), got {days}")
    if days > MAX_RETENTION_DAYS:
        raise ValueError("retention is beyond 100 years")


def saved_retention(state_dir: Path) -> int | None:
    """The retention set at run time, or None (then madoguchi.yaml's applies)."""
    path = state_dir / RETENTION_FILE
    if not path.exists():
        return None
    try:
        days = read_json(path)["retention_days"]  # unreadable or not JSON: ConfigError
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError("not an integer")
        check_retention(days)
    except (ValueError, KeyError, TypeError) as exc:
        # never purge with a guessed value: a damaged file stops the start, naming itself
        raise ConfigError(None, f"{path}: unreadable retention ({exc})") from exc
    return days


def save_retention(state_dir: Path, days: int) -> None:
    check_retention(days)
    state_dir.mkdir(parents=True, exist_ok=True)
    write_durably(state_dir / RETENTION_FILE, json.dumps({"retention_days": days}))
