"""Exceptions raised by the FastAGI codec and session.

Every AGI failure derives from :class:`AgiError` so a call flow can catch the
whole family in one place; :class:`AgiHangup` is the one most handlers want to
treat as a normal end of call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for annotations: agi_codec imports this module at runtime.
    from .agi_codec import AgiReply

__all__ = [
    "AgiCommandFailed",
    "AgiError",
    "AgiHangup",
    "AgiInvalidCommand",
    "AgiProtocolError",
    "AgiTimeout",
    "AgiUsageError",
    "raise_for_reply",
]


class AgiError(Exception):
    """Base class of every AGI failure."""

    def __init__(self, message: str, reply: AgiReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AgiProtocolError(AgiError):
    """The peer broke the wire format, or we refused to emit something unsafe."""


class AgiHangup(AgiError):
    """The channel is gone: a 511 reply, a ``HANGUP`` line or the socket closed."""


class AgiInvalidCommand(AgiError):
    """Asterisk answered 510: it does not know the command."""


class AgiUsageError(AgiError):
    """Asterisk answered 520: the command's arguments were wrong."""

    def __init__(self, message: str, reply: AgiReply | None = None, usage: str = "") -> None:
        super().__init__(message, reply)
        self.usage = usage


class AgiTimeout(AgiError):
    """No reply arrived within the command timeout."""


class AgiCommandFailed(AgiError):
    """Asterisk answered 200 but with ``result=-1``."""


def raise_for_reply(reply: AgiReply) -> AgiReply:
    """Return ``reply`` unchanged if it is a success, else raise the matching error."""
    code = reply.code
    if code == 200:
        if reply.result == "-1":
            raise AgiCommandFailed(f"command failed: {reply.raw}", reply)
        return reply
    if code == 510:
        raise AgiInvalidCommand(f"invalid or unknown command: {reply.raw}", reply)
    if code == 511:
        raise AgiHangup(f"channel is dead: {reply.raw}", reply)
    if code == 520:
        usage = reply.data or ""
        raise AgiUsageError(f"invalid command syntax: {reply.raw.splitlines()[0]}", reply, usage)
    raise AgiProtocolError(f"unexpected AGI reply code {code}: {reply.raw}", reply)
