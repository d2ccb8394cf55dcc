"""Transfer targets: only city-hall extensions (over the city PBX trunk with the dial-in
prefix) and outside numbers with an allowed prefix. Everything else is refused, so a
caller-influenced value can never become an arbitrary dial string."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ascii_digits
from .settings import TransferSettings

CITY_PBX_ENDPOINT = "citypbx"


class TransferRefused(Exception):
    pass


@dataclass(frozen=True)
class TransferTarget:
    kind: str  # "extension" | "external"
    number: str  # what the operator asked for
    dial: str  # the Asterisk dial string, e.g. PJSIP/8112345@citypbx


def resolve(settings: TransferSettings, target: str) -> TransferTarget:
    number = target.strip()
    if not ascii_digits(number) or len(number) > 15:  # 0-9 only: it becomes a dial string
        raise TransferRefused(f"transfer target must be 1-15 digits, got {target!r}")
    if settings.pbx_host is None:
        raise TransferRefused("no city PBX trunk is configured")
    lo, hi = settings.extension_length
    if lo <= len(number) <= hi and not number.startswith("0"):
        dial = f"PJSIP/{settings.dial_in_prefix}{number}@{CITY_PBX_ENDPOINT}"
        return TransferTarget("extension", number, dial)
    if any(number.startswith(p) for p in settings.external_prefixes) and len(number) >= 10:
        # outside numbers leave through the same trunk (the city PBX's outside lines)
        return TransferTarget("external", number, f"PJSIP/{number}@{CITY_PBX_ENDPOINT}")
    raise TransferRefused(f"{number} is neither a city-hall extension nor an allowed number")
