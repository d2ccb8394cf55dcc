"""Who may drive the engine over FastAGI: the per-install secret, the shape of the channel
and uniqueid Asterisk reports, and AMI's word that the channel exists.

Anything that can open a TCP connection to the FastAGI port could otherwise switch a service
to closed, log operators out or inject calls. The dialplan passes the secret as the first AGI
argument (``agi_arg_1``): unlike the script path it never appears in Asterisk's warnings about
an unreachable engine, which print the AGI URL.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable

from core.secrets import KEY_PATTERN

from .ami import AmiClient
from .ami_errors import AmiActionError, AmiError

__all__ = [
    "KEY_PATTERN",
    "AgiKey",
    "AmiChannelCheck",
    "endpoint_of",
    "valid_channel",
    "valid_uniqueid",
]

log = logging.getLogger(__name__)

# chan_pjsip names its channels "PJSIP/<endpoint id>-%08x"; endpoint ids here are agent
# extensions, "trunk" and "citypbx". Nothing else reaches the engine's AGI scripts.
_CHANNEL = re.compile(r"PJSIP/([A-Za-z0-9_.-]{1,64})-[0-9a-f]{8}")
# "<epoch>.<sequence>", with the optional "<systemname>-" prefix asterisk.conf can add.
_UNIQUEID = re.compile(r"(?:[A-Za-z0-9_.-]{1,64}-)?[0-9]{1,20}\.[0-9]{1,10}")


def valid_channel(channel: str) -> bool:
    return _CHANNEL.fullmatch(channel) is not None


def valid_uniqueid(uniqueid: str) -> bool:
    return _UNIQUEID.fullmatch(uniqueid) is not None


def endpoint_of(channel: str) -> str | None:
    """The PJSIP endpoint a channel name belongs to, or None for any other name."""
    match = _CHANNEL.fullmatch(channel)
    return match[1] if match else None


class AgiKey:
    """The FastAGI secret the dialplan presents, compared in constant time.

    ``refresh`` returns the secret stored on disk when the file changed since it was last
    looked at (None otherwise). That secret is accepted too, and the first session carrying
    it (the dialplan was reloaded after a rotation) makes it the only one: the old secret
    stops working.
    """

    def __init__(self, current: str, refresh: Callable[[], str | None] | None = None) -> None:
        if not KEY_PATTERN.fullmatch(current):
            raise ValueError("FastAGI secret must be 32-128 characters of [A-Za-z0-9_-]")
        self._current = current.encode("ascii")
        self._pending: bytes | None = None  # on disk, not presented yet
        self._refresh = refresh

    def check(self, presented: str | None) -> bool:
        if presented is None:
            return False
        # bytes: compare_digest refuses non-ASCII str, and the peer may send anything
        given = presented.encode("utf-8")
        if hmac.compare_digest(given, self._current):
            return True
        fresh = self._refresh() if self._refresh is not None else None
        if fresh is not None and KEY_PATTERN.fullmatch(fresh):
            new = fresh.encode("ascii")
            self._pending = None if hmac.compare_digest(new, self._current) else new
        if self._pending is None or not hmac.compare_digest(given, self._pending):
            return False
        self._current, self._pending = self._pending, None
        log.info("FastAGI secret changed on disk: sessions now need the new one")
        return True


class AmiChannelCheck:
    """Asks Asterisk whether a channel of that name and uniqueid exists right now."""

    def __init__(self, ami: AmiClient, timeout: float = 3.0) -> None:
        self.ami = ami
        self.timeout = timeout

    async def exists(self, channel: str, uniqueid: str) -> bool:
        try:
            items = await self.ami.send_list({"Action": "Status", "Channel": channel},
                                             timeout=self.timeout)
        except AmiActionError as exc:
            log.warning("AMI knows no channel %s (%s)", channel, exc.message or exc)
            return False
        except AmiError as exc:
            log.warning("cannot check channel %s with AMI: %s", channel, exc)
            return False
        return any(ev.get("Event") == "Status" and ev.get("Channel") == channel
                   and ev.get("Uniqueid") == uniqueid for ev in items)
