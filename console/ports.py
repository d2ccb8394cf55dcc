"""What the console needs from other features, as the application provides it: the console
shows and changes their settings without importing them (features stay independent)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiohttp import web

from core.settings import Settings


class ExportSummary(Protocol):
    @property
    def recordings(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def manifest_sha256(self) -> str: ...
    @property
    def problems(self) -> Sequence[object]: ...


class RecordingsAdmin(Protocol):
    """Retention and the hand-over export of the recordings feature."""

    min_retention_days: int

    def retention_days(self) -> int:
        """The retention in force (the admin's choice, else madoguchi.yaml's)."""
    def configured_retention_days(self) -> int:
        """madoguchi.yaml's retention."""
    async def set_retention(self, days: int) -> int:
        """Keep `days` from now on and return the previous value; ValueError says why not."""
    async def export(self, start: datetime, end: datetime,
                     write: Callable[[bytes], Awaitable[None]]) -> ExportSummary:
        """Stream the hand-over tar of calls started in [start, end) through `write`."""


class CenterFacts(Protocol):
    def services(self) -> list[str]:
        """The services' ids, sorted."""
    def override_modes(self) -> list[str]:
        """The modes an override of a service's hours may take."""
    def topics(self) -> list[str]:
        """The topic ids the flows in service give calls (their queue nodes), sorted."""
    def flow_nodes(self) -> list[str]:
        """The node ids of the flows in service (a call's IVR path is made of them), sorted."""


class OperatorFacts(Protocol):
    def allowed_actions(self) -> dict[str, list[str]]:
        """For each operator state, the desk's actions (login, away...) the operators'
        transition table allows in it."""


@dataclass(frozen=True)
class ConsolePorts:
    recordings: RecordingsAdmin
    center: CenterFacts
    operators: OperatorFacts
    settings: Settings  # services, queues and operators by name


PORTS: web.AppKey[ConsolePorts] = web.AppKey("console_ports", ConsolePorts)
