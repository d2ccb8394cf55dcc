"""What the engine and the dialplan (dialplans/extensions.conf.in) agree on, named once.

The two talk through channel variables, context and extension names, FastAGI script names,
UserEvents and the template's {{fields}}. Each is listed here with who sets it and who reads
it: the engine's modules use these names instead of their own strings, acd/adopt.py reads
back exactly the variables marked for it, confgen fills the template's fields by these names,
and tests/test_dialplan_contract.py holds the template against this module both ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Var(StrEnum):
    """Channel variables of ours (and MADO_ALIVE, a global one)."""

    CALL_ID = "MADO_CALL_ID"  # first: an empty one tells adopt the channel is not ours
    SERVICE = "MADO_SERVICE"
    DID = "MADO_DID"
    QUEUE = "MADO_QUEUE"
    IVR_DONE = "IVR_DONE"
    DEST = "MADO_DEST"
    TRANSFER_DIAL = "MADO_TRANSFER_DIAL"
    OFFERED = "MADO_OFFERED"
    QUEUED = "MADO_QUEUED"
    ANSWERED = "MADO_ANSWERED"
    AGENT = "MADO_AGENT"
    PRIORITY = "MADO_PRIORITY"
    LANGUAGE = "MADO_LANGUAGE"
    PATH = "MADO_PATH"
    TOPIC = "MADO_TOPIC"
    ANNOUNCE_EVERY = "MADO_ANNOUNCE_EVERY"
    POSITION_SOUND = "MADO_POSITION_SOUND"
    POSITION_PLAYED = "MADO_POSITION_PLAYED"
    BOARD = "MADO_BOARD"
    BOARD_EVERY = "MADO_BOARD_EVERY"
    BOARD_NEXT = "MADO_BOARD_NEXT"
    SURVEY = "MADO_SURVEY"
    CALLBACK_SOUND = "MADO_CALLBACK_SOUND"
    CALLBACK_KEY = "MADO_CALLBACK_KEY"
    CALLBACK_TAKEN = "MADO_CALLBACK_TAKEN"
    CALLBACK_ID = "MADO_CALLBACK_ID"
    CALLBACK_DIAL = "MADO_CALLBACK_DIAL"
    CALLBACK_RING = "MADO_CALLBACK_RING"
    CALLBACK_FILE = "MADO_CALLBACK_FILE"
    ALIVE = "MADO_ALIVE"
    FAX_ID = "MADO_FAX_ID"
    FAX_STARTED = "MADO_FAX_STARTED"
    FAX_JOB = "MADO_FAX_JOB"


class Setter(StrEnum):
    """Who writes a variable."""

    ROUTES = "confgen's DID routes (Set(__...), inherited by every channel of the call)"
    TEMPLATE = "the template's own Set()"
    IVR = "the IVR over FastAGI (ivr/agi_runner.py)"
    OPERATOR_AGI = "the operators' scripts over FastAGI (acd/agi.py)"
    ACD = "the ACD over AMI Setvar (acd/service.py)"
    SURVEY = "the post-call survey's marking over AMI Setvar (survey/service.py)"
    CALLBACK_AGI = "the callback request over FastAGI (acd/callback_agi.py)"
    FAX = "the FAX dialer's AMI Originate (ami_bridge/fax.py)"


class Reader(StrEnum):
    """Who reads a variable."""

    TEMPLATE = "the template"
    ADOPT = "acd/adopt.py, rebuilding calls after an engine restart"


@dataclass(frozen=True)
class Role:
    set_by: frozenset[Setter]
    read_by: frozenset[Reader]
    meaning: str
    is_global: bool = False  # set without a channel: every channel reads the same value


def _role(set_by: set[Setter], read_by: set[Reader], meaning: str,
          is_global: bool = False) -> Role:
    return Role(frozenset(set_by), frozenset(read_by), meaning, is_global)


_T, _A = Reader.TEMPLATE, Reader.ADOPT

ROLES: Mapping[Var, Role] = MappingProxyType({
    Var.CALL_ID: _role({Setter.IVR, Setter.ACD}, {_T, _A},
                       "the call's id; the ACD also sets it on the operator's leg it rings"),
    Var.SERVICE: _role({Setter.ROUTES}, {_T, _A}, "the service id: the IVR script to run"),
    Var.DID: _role({Setter.ROUTES}, {_T, _A}, "the number dialled"),
    Var.QUEUE: _role({Setter.ROUTES}, {_T, _A}, "the service's queue (fail-open app_queue)"),
    Var.IVR_DONE: _role({Setter.IVR}, {_T}, "1 when the IVR took charge; else fail open"),
    Var.DEST: _role({Setter.IVR}, {_T}, "where the IVR sends the caller: a Dest"),
    Var.TRANSFER_DIAL: _role({Setter.IVR, Setter.OPERATOR_AGI, Setter.ACD}, {_T},
                             "a dial string built from an allowed target, never caller text"),
    Var.OFFERED: _role({Setter.ACD}, {_A}, "epoch seconds the call was offered"),
    Var.QUEUED: _role({Setter.ACD}, {_A}, "epoch seconds the call was queued"),
    Var.ANSWERED: _role({Setter.ACD}, {_A}, "epoch seconds an operator answered"),
    Var.AGENT: _role({Setter.ACD}, {_A}, "the operator who answered"),
    Var.PRIORITY: _role({Setter.ACD}, {_A}, "the queue priority"),
    Var.LANGUAGE: _role({Setter.ACD}, {_T, _A}, "the caller's language (MadoBoard's header)"),
    Var.PATH: _role({Setter.ACD}, {_A}, "the IVR nodes passed, comma-separated"),
    Var.TOPIC: _role({Setter.ACD}, {_A}, "the caller's topic"),
    Var.ANNOUNCE_EVERY: _role({Setter.ACD}, {_T},
                              "seconds of hold music between busy announcements"),
    Var.POSITION_SOUND: _role({Setter.ACD}, {_T},
                              "the caller's position and expected wait, spoken (a sound); "
                              "set again only when the text changes"),
    Var.POSITION_PLAYED: _role({Setter.TEMPLATE}, {_T},
                               "the position sound this caller last heard: not played twice"),
    Var.BOARD: _role({Setter.IVR}, {_T}, "the event board's sound for the caller's language"),
    Var.BOARD_EVERY: _role({Setter.IVR}, {_T}, "seconds between event boards"),
    Var.BOARD_NEXT: _role({Setter.TEMPLATE}, {_T}, "epoch seconds the next board is due"),
    Var.SURVEY: _role({Setter.IVR, Setter.SURVEY}, {_T},
                      "1: the caller hears the post-call survey when the operator hangs up "
                      "(the flow's queue node, or the operator's request)"),
    Var.CALLBACK_SOUND: _role({Setter.ACD}, {_T},
                              "the callback offer, spoken (a sound); set once the caller may "
                              "take it (the queue's callback policy)"),
    Var.CALLBACK_KEY: _role({Setter.ACD}, {_T}, "the digit that takes the callback offer"),
    Var.CALLBACK_TAKEN: _role({Setter.CALLBACK_AGI}, {_T},
                              "1: the callback is booked and the caller keeps their place; "
                              "the hold loop says goodbye and hangs up"),
    Var.CALLBACK_ID: _role({Setter.ACD}, {_T}, "the callback an operator's leg is for "
                           "(Originate), sent back in MadoCallback"),
    Var.CALLBACK_DIAL: _role({Setter.ACD}, {_T}, "the citizen's dial string, built from an "
                             "allowed number (core/transfers.py)"),
    Var.CALLBACK_RING: _role({Setter.ACD}, {_T}, "seconds the citizen's phone rings"),
    Var.CALLBACK_FILE: _role({Setter.ACD}, {_T}, "the callback's recording name, without "
                             ".wav: our date folders and call id only"),
    Var.ALIVE: _role({Setter.ACD}, {_T}, "the engine's heartbeat, epoch seconds; stale "
                     "makes the hold loop fail open", is_global=True),
    Var.FAX_ID: _role({Setter.TEMPLATE}, {_T}, "a received FAX's file name in the spool: the "
                      "channel's unique id, digits and '-'"),
    Var.FAX_STARTED: _role({Setter.TEMPLATE}, {_T}, "epoch seconds a FAX call was answered"),
    Var.FAX_JOB: _role({Setter.FAX}, {_T}, "the sending job's id (32 hex digits): the spool's "
                       "out/<job>.tif to send and out/<job>.result to write"),
})

CALLER_NUMBER = "CALLERID(num)"  # Asterisk's own; adopt reads it with ours
# what acd/adopt.py reads back from a channel, MADO_CALL_ID first
ADOPTED: tuple[str, ...] = (*(v for v in Var if _A in ROLES[v].read_by), CALLER_NUMBER)
ENGINE_SETTERS = frozenset({Setter.IVR, Setter.OPERATOR_AGI, Setter.ACD, Setter.SURVEY,
                            Setter.CALLBACK_AGI, Setter.FAX})


def set_by(setter: Setter) -> frozenset[Var]:
    return frozenset(v for v in Var if setter in ROLES[v].set_by)


class Context(StrEnum):
    """Every context of the template; the engine and confgen name these."""

    FROM_TRUNK = "from-trunk"  # the trunk endpoint's; confgen's DID routes
    INBOUND = "mado-inbound"  # runs the service's IVR script
    ROUTE = "mado-route"  # by MADO_DEST
    HOLD = "mado-hold"  # waiting callers; adopt queues a caller found here
    TRANSFER = "mado-transfer"  # the ACD redirects a caller here (TransferExten)
    AFTER = "mado-after"  # the operator hung up first: the survey (MADO_SURVEY) or hang up
    FAILOPEN = "mado-failopen"  # app_queue without the engine
    FROM_CITYPBX = "from-citypbx"  # the city PBX endpoint's; outbound only
    OPERATORS = "operators"  # operators' phones: feature codes and transfers
    CALLBACK = "mado-callback"  # an operator's leg for a callback: dials the citizen
    FAX_IN = "mado-fax-in"  # confgen's routes for FAX DIDs: ReceiveFAX into the spool
    FAX_OUT = "mado-fax-out"  # the FAX dialer's Originate: SendFAX from the spool


ENTRY = "s"  # the extension a Goto into a context of ours starts at
# mado-failopen's app_queue queue for a service's queue q is FAILOPEN_QUEUE + q (queues.conf)
FAILOPEN_QUEUE = "failopen-"


class Dest(StrEnum):
    """MADO_DEST values: extensions of mado-route."""

    QUEUE = "queue"
    TRANSFER = "transfer"
    HANGUP = "hangup"


class TransferExten(StrEnum):
    """Extensions of mado-transfer the ACD redirects a caller to."""

    TRANSFER = "transfer"  # dial MADO_TRANSFER_DIAL
    MESSAGE = "message"  # apologise and hang up


class FaxExten(StrEnum):
    """Extensions of mado-fax-out the FAX dialer's Originate lands on."""

    SEND = "send"  # the remote machine answered: SendFAX


class AgiScript(StrEnum):
    """FastAGI scripts the template runs besides the service's own (named by MADO_SERVICE)."""

    FEATURE = "feature"  # acd/agi.py: *21..*26 from an operator's phone
    TRANSFER = "transfer"  # acd/agi.py: a number dialled or REFERred from an operator
    OVERRIDE = "ivr/override"  # ivr: *7 supervisor override; '/' never in a service id
    SURVEY = "survey"  # ivr: the post-call survey in mado-after (MADO_SURVEY=1)
    CALLBACK = "callback"  # acd/callback_agi.py: a waiting caller takes the callback offer


SERVICE_SCRIPT = Var.SERVICE  # mado-inbound's script is the service id


class UserEvent(StrEnum):
    """UserEvents the template sends and the engine counts."""

    BOARD = "MadoBoard"  # the hold loop starts the event board
    CALLBACK = "MadoCallback"  # a callback's operator leg ends: how dialling the citizen went
    FAX = "MadoFax"  # a sending attempt ended: out/<job>.result is written


USER_EVENT_HEADERS: Mapping[UserEvent, tuple[str, ...]] = MappingProxyType({
    UserEvent.BOARD: ("Language",),
    UserEvent.CALLBACK: ("Callback", "Status", "Answered"),
    UserEvent.FAX: ("Job",),
})


class TemplateField(StrEnum):
    """The template's {{fields}}, all filled by confgen."""

    DID_ROUTES = "did_routes"  # from-trunk's lines per service
    AGI_KEY = "agi_key"  # the FastAGI secret, first argument of every AGI()
    FASTAGI = "fastagi"  # host:port of the engine's FastAGI server
    RECORDINGS = "recordings"  # the recordings folder as Asterisk sees it
    FAX_SPOOL = "fax_spool"  # the FAX spool as Asterisk sees it (core/fax.py's layout)
    FAX_STATION = "fax_station"  # lines setting our FAX station id and page header
