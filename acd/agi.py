"""FastAGI scripts for operators' phones: feature codes and transfer checks.

`feature`: *21 login, *22 logout, *23 away (break), *24 back, *25 end wrap-up,
*26 away (meeting). The operator is the authenticated PJSIP endpoint that dialled, passed by
the dialplan as ${CHANNEL(endpoint)}; it must also be the endpoint of the channel, which the
FastAGI server had AMI confirm: a phone cannot act for another operator.
`transfer`: a number dialled from an operator's phone, or the target of a blind transfer
(SIP REFER) the caller's channel is running; only allowed targets get a dial string.
"""

from __future__ import annotations

import logging

from ami_bridge.agi_auth import endpoint_of
from ami_bridge.dialplan import AgiScript, Var
from ami_bridge.fastagi import AgiSession
from core.calls import CallTracker, TransferStep
from core.settings import TransferSettings
from core.transfers import TransferRefused, resolve

from .agents import IllegalTransition
from .service import Acd

log = logging.getLogger(__name__)

FEATURES: dict[str, tuple[str, str | None]] = {
    "21": ("login", None), "22": ("logout", None), "23": ("away", "break"),
    "24": ("back", None), "25": ("end_wrap_up", None), "26": ("away", "meeting"),
}
SCRIPTS = (AgiScript.FEATURE, AgiScript.TRANSFER)


class OperatorAgi:
    def __init__(self, acd: Acd, tracker: CallTracker, transfers: TransferSettings) -> None:
        self.acd = acd
        self.tracker = tracker
        self.transfers = transfers

    async def handle(self, session: AgiSession) -> None:
        if session.script == AgiScript.FEATURE:
            await self._feature(session)
        elif session.script == AgiScript.TRANSFER:
            await self._transfer(session)

    async def _feature(self, session: AgiSession) -> None:
        code, endpoint = [*session.args, "", ""][:2]
        feature = FEATURES.get(code)
        if endpoint != endpoint_of(session.channel):
            log.warning("feature *%s refused: endpoint %r is not that of channel %s", code[:8],
                        endpoint[:64], session.channel)
            await session.stream_file("invalid")
            return
        if feature is None or endpoint not in self.acd.agents:
            await session.stream_file("invalid")
            return
        action, reason = feature
        try:
            change = self.acd.operator_action(endpoint, action, reason)
        except IllegalTransition as exc:
            log.info("feature *%s from %s refused: %s", code, endpoint, exc)
            await session.stream_file("invalid")
            return
        log.info("operator %s: %s -> %s (feature *%s)", endpoint, change.old.value,
                 change.new.value, code)
        await session.stream_file("beep")

    async def _transfer(self, session: AgiSession) -> None:
        number, endpoint = [*session.args, "", ""][:2]
        try:
            target = resolve(self.transfers, number)
        except TransferRefused as exc:
            log.info("transfer from %s refused: %s", endpoint or session.channel, exc)
            await session.set_variable(Var.TRANSFER_DIAL, "")
            return
        # a blind transfer runs on the caller's own channel: record the hand-over there
        call = self.tracker.get(session.uniqueid)
        if call is not None:
            call.transfers.append(TransferStep(call.agent_id, target.number, "blind",
                                               self.tracker.clock()))
        await session.set_variable(Var.TRANSFER_DIAL, target.dial)
