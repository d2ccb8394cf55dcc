from __future__ import annotations

import pytest

from core.settings import TransferSettings
from core.transfers import TransferRefused, resolve

T = TransferSettings("192.0.2.10", 5060, "81", (3, 5), ("0570", "0120", "070", "080", "090"))


@pytest.mark.parametrize(("target", "kind", "dial"), [
    ("2345", "extension", "PJSIP/812345@citypbx"),
    ("123", "extension", "PJSIP/81123@citypbx"),
    ("0570012345", "external", "PJSIP/0570012345@citypbx"),
    ("09012345678", "external", "PJSIP/09012345678@citypbx"),
    ("0120123456", "external", "PJSIP/0120123456@citypbx"),
])
def test_allowed_targets(target: str, kind: str, dial: str) -> None:
    t = resolve(T, target)
    assert (t.kind, t.dial) == (kind, dial)


@pytest.mark.parametrize("target", [
    "0312345678",  # a landline outside the allow-list
    "12",  # too short for an extension
    "123456",  # too long for an extension, no allowed prefix
    "090",  # an allowed prefix alone is not a number
    "2345@evil", "2345,1", "../1", "", "0" * 16,
])
def test_everything_else_is_refused(target: str) -> None:
    with pytest.raises(TransferRefused):
        resolve(T, target)


def test_no_trunk_no_transfer() -> None:
    with pytest.raises(TransferRefused, match="no city PBX"):
        resolve(TransferSettings(None, 5060, "81", (3, 5), ("090",)), "2345")
