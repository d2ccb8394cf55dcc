"""Rebuilding the ACD's view from Asterisk: after every AMI login, and when a ring's outcome
was lost while the link may still be up (an Originate that timed out).

One rebuild at a time. It reads Asterisk's lists (channels, device states), adopts the calls
this process does not know, ends the ones Asterisk no longer has, and hands the lists to
`Acd.resync`, which settles lost rings and starts ringing operators again. Events that arrive
while the lists are read are newer than them and win (`Acd.begin_resync`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from ami_bridge.ami_errors import AmiDisconnected
from core.calls import Call, CallTracker

from .adopt import adopt_calls
from .service import Acd, AmiPort

log = logging.getLogger(__name__)

RETRY_S = 5.0  # a rebuild that failed on a live link is tried again after this


class AmiLister(AmiPort, Protocol):
    async def send_list(self, action: dict[str, str],
                        timeout: float | None = None) -> list[dict[str, str]]: ...


class Resync:
    def __init__(self, ami: AmiLister, tracker: CallTracker, acd: Acd,
                 close_call: Callable[[Call], None]) -> None:
        self.ami = ami
        self.tracker = tracker
        self.acd = acd
        self.close_call = close_call  # a call Asterisk no longer has: record it, forget it
        self._runner: asyncio.Task[None] | None = None
        self._again = False
        acd.request_resync = self.soon

    def soon(self) -> None:
        """Rebuild now, or once more after the rebuild under way."""
        self._again = True
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def run(self) -> None:
        """Rebuild and wait for it (the AMI login handler)."""
        self.soon()
        assert self._runner is not None
        await asyncio.shield(self._runner)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)

    async def _run(self) -> None:
        while self._again:
            self._again = False
            try:
                await self.once()
            except AmiDisconnected as exc:  # the next login rebuilds
                log.info("state rebuild stopped: %s", exc)
                return
            except Exception:
                # nobody is rung until a rebuild succeeds: keep trying while the link lives
                log.exception("state rebuild from Asterisk failed; again in %g s", RETRY_S)
                await asyncio.sleep(RETRY_S)
                self._again = True

    async def once(self) -> None:
        self.acd.begin_resync()
        known = {c.uniqueid for c in self.tracker.live()}
        channels = [ev for ev in await self.ami.send_list({"Action": "CoreShowChannels"},
                                                          timeout=10)
                    if ev.get("Event") == "CoreShowChannel"]
        # DeviceStateList needs only the 'call' class (PJSIPShowEndpoints needs 'system')
        devices = await self.ami.send_list({"Action": "DeviceStateList"}, timeout=10)
        states = [(ev.get("Device", ""), ev.get("State", "")) for ev in devices
                  if ev.get("Event") == "DeviceStateChange"]
        await adopt_calls(self.ami, self.tracker, self.acd, channels)
        listed = {ev.get("Uniqueid", "") for ev in channels}
        for call in self.tracker.live():
            # calls that started after the list was taken are not in it, and still live
            if ((call.uniqueid in known and call.uniqueid not in listed)
                    or self.acd.hung_up_since_resync_began(call.uniqueid)):
                ended = self.tracker.end(call.uniqueid)
                if ended is not None:
                    self.close_call(ended)
        self.acd.resync(channels, states)
        log.info("state rebuilt: %d live channels, %d tracked calls", len(listed),
                 len(self.tracker.live()))
