"""The `recordings:` section of madoguchi.yaml: retention, archive folder, job intervals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from madoguchi.yamlconf import ConfigError, Node

# The specification keeps call logs and recordings at least two months (§12(1)エ, セ): the
# longest two consecutive months have 62 days, and nothing below 60 is ever accepted.
DEFAULT_RETENTION_DAYS = 62
MIN_RETENTION_DAYS = 60


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
    if days > 36500:
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
