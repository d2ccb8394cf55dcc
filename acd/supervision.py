"""Supervisors listen to, whisper to or barge into an operator's live call (ChanSpy).

The supervisor's own phone is rung; when they answer, ChanSpy attaches to the operator's leg
by its unique id (option u), quietly (q), and leaves when that leg ends (E)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import SupervisionError
from .service import Acd

log = logging.getLogger(__name__)

MODES = {"listen": "", "whisper": "w", "barge": "B"}
# actor, action, call id, detail, remote address
Audit = Callable[[str, str, str, str, str], Awaitable[None]]


class Supervision:
    def __init__(self, acd: Acd, audit: Audit, ring_timeout: int = 30) -> None:
        self.acd = acd
        self.audit = audit
        self.ring_timeout = ring_timeout
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, agent_id: str, mode: str, supervisor: str, actor: str,
                    remote: str) -> dict[str, Any]:
        if agent_id not in self.acd.agents:
            raise SupervisionError(404, "not_found", "no such operator")
        if supervisor not in self.acd.agents or supervisor == agent_id:
            raise SupervisionError(400, "bad_supervisor",
                                   "supervisor must be another operator's extension")
        ring = self.acd.call_of_agent(agent_id)
        if ring is None:
            raise SupervisionError(409, "not_on_call", "the operator is not on a call")
        spy_id = uuid.uuid4().hex
        action = {
            "Action": "Originate", "Channel": f"PJSIP/{supervisor}",
            "Application": "ChanSpy", "Data": f"{ring.channel_id},quE{MODES[mode]}",
            "ChannelId": spy_id, "Timeout": str(self.ring_timeout * 1000),
            "CallerID": f"\"{mode} {agent_id}\" <{agent_id}>",
        }
        await self.audit(actor, f"supervise-{mode}", ring.call.id,
                         f"agent {agent_id}, supervisor {supervisor}", remote)
        task = asyncio.get_running_loop().create_task(self._ring(action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"agent": agent_id, "mode": mode, "supervisor": supervisor,
                "call_id": ring.call.id, "spy_channel_id": spy_id}

    async def _ring(self, action: dict[str, str]) -> None:
        try:
            result = await self.acd.ami.originate(action, timeout=self.ring_timeout + 10)
            log.info("supervisor %s: %s", action["Channel"], result.get("Response"))
        except Exception as exc:  # the supervisor's phone is unreachable: nothing to undo
            log.info("supervisor %s not reached: %r", action["Channel"], exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
