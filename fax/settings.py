"""Where the FAX feature keeps its files, from core.fax's settings: the spool Asterisk
writes (in/) and reads (out/), the archive of PDFs named by our ids, the deletion reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.fax import IN_DIR, OUT_DIR, FaxSettings, fax_settings, fax_spool
from core.settings import Settings

ARCHIVE_DIR = "fax-archive"  # under the state folder: received/ and sent/, by day
REPORTS_DIR = "deletion-reports"  # beside the recordings' reports
INDEX_INTERVAL_S = 10.0  # how often the spool is looked at (and sent jobs polled)
PURGE_INTERVAL_S = 3600.0
STALE_TIF_S = 15 * 60  # a .tif with no .meta this old: Asterisk died mid-reception


@dataclass(frozen=True)
class FaxPaths:
    spool_in: Path
    spool_out: Path
    archive: Path
    reports: Path


@dataclass(frozen=True)
class FaxConfig:
    fax: FaxSettings
    paths: FaxPaths
    index_interval_s: float = INDEX_INTERVAL_S
    purge_interval_s: float = PURGE_INTERVAL_S
    stale_tif_s: float = STALE_TIF_S


def fax_config(settings: Settings) -> FaxConfig:
    """The feature's settings and folders from the loaded configuration."""
    fax = fax_settings(settings)
    spool = fax_spool(settings, fax)
    return FaxConfig(fax, FaxPaths(spool / IN_DIR, spool / OUT_DIR,
                                   settings.state_dir / ARCHIVE_DIR,
                                   settings.state_dir / REPORTS_DIR))
