"""Errors raised by the AMI client (:mod:`ami_bridge.ami`)."""

from __future__ import annotations

from collections.abc import Mapping


class AmiError(Exception):
    """Base class of every AMI client error."""


class AmiDisconnected(AmiError):
    """Not logged in to Asterisk, or the link was lost before the action was answered.

    An action failed with this error was *not* re-sent: it may or may not have
    been executed by Asterisk.
    """


class AmiAuthError(AmiError):
    """Asterisk rejected the Login action (wrong username or secret, ACL)."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error`` (or another failure)."""

    def __init__(
        self, message: str, *, action: str = "", response: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{action}: {message}" if action else message)
        #: The ``Message`` header of the response (may be empty).
        self.message = message
        #: The name of the failed action.
        self.action = action
        #: The whole response, headers as received.
        self.response: dict[str, str] = dict(response or {})


class AmiTimeout(AmiError):
    """No (complete) answer within the allotted time.

    As with :class:`AmiDisconnected`, Asterisk may or may not have executed the action:
    an Originate that timed out may still be ringing, or be answered.
    """
