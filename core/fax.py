"""The `fax:` section of madoguchi.yaml and the FAX spool's layout.

Shared by the PBX configuration (the dialplan receives into the spool on its own, at any hour)
and the FAX feature (which indexes what it finds there and queues what it sends). Values here
reach T.30 frames and the dialplan, so they are checked tightly.

Spool layout (inside the Asterisk instance folder, the only folder Asterisk can reach when it
runs in its root file system):
  <spool>/in/<id>.tif     written by ReceiveFAX
  <spool>/in/<id>.meta    written last by the reception's `h` extension: the reception ended
  <spool>/out/<job>.tif   written by the engine, read by SendFAX
  <spool>/out/<job>.result  written by the sending call's `h` extension
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .settings import Settings
from .yamlconf import ConfigError, Node

IN_DIR = "in"
OUT_DIR = "out"
META_SUFFIX = ".meta"
RESULT_SUFFIX = ".result"
TIFF_SUFFIX = ".tif"

# The longest two consecutive months have 62 days; nothing below 60 (two months) is accepted,
# the same rule as the recordings'.
DEFAULT_RETENTION_DAYS = 62
MIN_RETENTION_DAYS = 60
MAX_RETENTION_DAYS = 36500

_NUMBER = re.compile(r"[0-9+-]{1,20}")  # T.30 station ids are at most 20 characters
# The header is printed on every page (T.30, ASCII) and goes into the dialplan: nothing that
# could end an argument or start a variable (, ; $ brackets quotes backslash)
HEADER_CHAR = re.compile(r"[A-Za-z0-9 .+_:/&'@#*!?=%-]")
NUMBER_CHAR = re.compile(r"[0-9+-]")
_HEADER = re.compile(rf"(?:{HEADER_CHAR.pattern}){{0,40}}")
_DID = re.compile(r"[0-9]{2,8}")
_SPOOL = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# what the dialplan and meta files carry from the remote side (callerid, remotestationid)
META_VALUE = re.compile(r"[0-9A-Za-z +._:-]*")
JOB_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class FaxSettings:
    number: str = ""  # the centre's published FAX number (our station id when sending)
    header: str = ""  # the page header's text (FAXOPT(headerinfo))
    dids: tuple[str, ...] = ()  # trunk DIDs answered by ReceiveFAX
    max_upload_bytes: int = 10 * 1024 * 1024
    send_retries: int = 3  # attempts after the first on busy / no answer
    retry_delay_s: int = 120
    retention_days: int = DEFAULT_RETENTION_DAYS
    # a folder name inside the Asterisk instance folder (state/asterisk/<spool_dir>)
    spool_dir: Path = Path("fax")
    # UDP ports of T.38 (UDPTL) media, like rtp.start/end for audio
    udptl_start: int = 4000
    udptl_end: int = 4999

    @property
    def enabled(self) -> bool:
        return bool(self.dids) or bool(self.number)


def load_fax_settings(node: Node | None) -> FaxSettings:
    """Validate the `fax:` mapping; errors name file:line:column. No section: no FAX DIDs."""
    if node is None:
        return FaxSettings()
    number = node.text("number", "")
    if number and not _NUMBER.fullmatch(number):
        raise ConfigError(node.at("number"), "'number' must be digits, '-' and '+' (at most "
                          f"20), got {number!r}")
    header = node.text("header", "")
    if not _HEADER.fullmatch(header) or header != header.strip():
        raise ConfigError(node.at("header"), "'header' must be at most 40 ASCII letters, "
                          "digits, spaces (not at either end) and . + _ : / & ' @ # * ! ? = % - "
                          f"(it is the T.30 page header), got {header!r}")
    dids = node.text_list("dids", [])
    seen: set[str] = set()
    for did in dids:
        if not _DID.fullmatch(did):
            raise ConfigError(node.at("dids"), f"FAX DID {did!r} must be 2-8 digits")
        if did in seen:
            raise ConfigError(node.at("dids"), f"duplicate FAX DID {did!r}")
        seen.add(did)
    if dids and not number:
        raise ConfigError(node.at("dids"), "FAX DIDs need the centre's FAX 'number'")
    days = node.integer("retention_days", DEFAULT_RETENTION_DAYS)
    if days < MIN_RETENTION_DAYS:
        raise ConfigError(node.at("retention_days"),
                          f"'retention_days' must be at least {MIN_RETENTION_DAYS} (the "
                          f"specification keeps records two months), got {days}")
    if days > MAX_RETENTION_DAYS:
        raise ConfigError(node.at("retention_days"), "'retention_days' is beyond 100 years")
    spool = node.text("spool_dir", "fax")
    if not _SPOOL.fullmatch(spool):
        raise ConfigError(node.at("spool_dir"), "'spool_dir' must be one folder name "
                          f"(a-z, 0-9, _ and -) inside the Asterisk instance folder, got "
                          f"{spool!r}")
    udptl = node.child("udptl")
    udptl_start = udptl.integer("start", 4000, 1024, 65535)
    udptl_end = udptl.integer("end", 4999, 1024, 65535)
    udptl.done()
    if udptl_end <= udptl_start:
        raise ConfigError(node.at("udptl"), "'udptl.end' must be above 'udptl.start'")
    settings = FaxSettings(
        number=number, header=header, dids=tuple(dids),
        max_upload_bytes=node.integer("max_upload_mb", 10, 1, 100) * 1024 * 1024,
        send_retries=node.integer("send_retries", 3, 0, 10),
        retry_delay_s=node.integer("retry_delay", 120, 10, 3600),
        retention_days=days, spool_dir=Path(spool), udptl_start=udptl_start,
        udptl_end=udptl_end)
    node.done()
    return settings


def fax_settings(settings: Settings) -> FaxSettings:
    """The `fax:` section of the loaded configuration."""
    return load_fax_settings(settings.sections.get("fax"))


def fax_spool(settings: Settings, fax: FaxSettings) -> Path:
    """The spool as the engine sees it: in the Asterisk instance folder (state/asterisk),
    which is what Asterisk can reach inside its root file system."""
    return settings.state_dir / "asterisk" / fax.spool_dir


def parse_meta(text: str) -> dict[str, str]:
    """A `.meta` / `.result` file's `key=value` lines (unknown or malformed lines are
    dropped; values keep only the characters the dialplan lets through)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[a-z]{1,32}", key) and META_VALUE.fullmatch(value):
            out[key] = value
    return out
