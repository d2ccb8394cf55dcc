"""Generate every Asterisk configuration file from config/ and dialplans/.

Nothing is edited by hand inside Asterisk's own folders: the generated folder is the whole
configuration (asterisk.conf points all writable directories at the instance folder). Every
file is made through conffile.py, which refuses a value that could cut an option short or add
configuration (a line break, `;`, an unbalanced bracket, a dialplan argument of the wrong
shape). Names the dialplan shares with the engine come from ami_bridge/dialplan.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.fax import HEADER_CHAR, IN_DIR, NUMBER_CHAR, OUT_DIR, FaxSettings, fax_settings
from core.files import write_durably
from core.secrets import KEY_PATTERN, Secrets
from core.settings import Settings

from ..dialplan import ENTRY, FAILOPEN_QUEUE, AgiScript, Context, TemplateField, Var
from ..recording_names import FAILOPEN_DIR
from .conffile import (
    ADDRESS,
    DIGITS,
    ID,
    PATH,
    Comment,
    ConfWriteError,
    DialplanLine,
    Field,
    Kind,
    Option,
    Place,
    Section,
    exten,
    fill,
    same,
)
from .conffile import render as render_file

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"

# Only what the engine uses; each line says which feature needs it.
MODULES = [
    "res_sorcery_config.so", "res_sorcery_memory.so", "res_sorcery_astdb.so",  # pjsip config
    "res_timing_timerfd.so",  # audio timing
    "res_pjproject.so", "res_pjsip.so", "res_pjsip_session.so", "chan_pjsip.so",
    "res_pjsip_sdp_rtp.so", "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_endpoint_identifier_user.so", "res_pjsip_authenticator_digest.so",
    "res_pjsip_registrar.so", "res_pjsip_caller_id.so", "res_pjsip_dtmf_info.so",
    "res_pjsip_outbound_registration.so", "res_pjsip_nat.so", "res_pjsip_rfc3326.so",
    "res_pjsip_pubsub.so", "res_pjsip_refer.so", "res_pjsip_transport_websocket.so",
    "res_http_websocket.so", "res_rtp_asterisk.so",
    "codec_alaw.so", "codec_ulaw.so", "codec_a_mu.so", "format_wav.so", "format_pcm.so",
    "pbx_config.so", "res_speech.so", "res_agi.so", "res_manager_devicestate.so",
    "app_playback.so", "app_dial.so", "app_mixmonitor.so", "res_musiconhold.so", "app_queue.so",
    "app_stack.so", "app_chanspy.so", "app_userevent.so",  # UserEvent: the hold loop's board
    "func_strings.so", "func_callerid.so", "func_channel.so", "func_logic.so", "func_cut.so",
    "func_hangupcause.so",
    "bridge_simple.so", "bridge_native_rtp.so", "bridge_softmix.so", "bridge_holding.so",
    "res_audiosocket.so",
    # FAX: ReceiveFAX/SendFAX (spandsp), T.38 over PJSIP, FILE() for the spool's .meta files
    "res_fax.so", "res_fax_spandsp.so", "res_pjsip_t38.so", "func_env.so",
]


@dataclass(frozen=True)
class Layout:
    """Where the instance folder is, as the engine sees it and as Asterisk sees it."""

    local: Path  # state/asterisk on this host
    asterisk: str  # the same folder seen from inside Asterisk (chroot mount point or local)
    # folders inside it that hold personal data Asterisk writes (the FAX spool): its own, 0700
    private: tuple[str, ...] = ()

    def ast(self, sub: str) -> str:
        return f"{self.asterisk}/{sub}"


CHROOT_MOUNT = "/srv/madoguchi"


def layout_for(settings: Settings, chroot: bool) -> Layout:
    local = (settings.state_dir / "asterisk").resolve()
    spool = str(fax_settings(settings).spool_dir)
    private = (spool, f"{spool}/{IN_DIR}", f"{spool}/{OUT_DIR}")
    return Layout(local, CHROOT_MOUNT if chroot else str(local), private)


def sections(settings: Settings, secrets: Secrets, layout: Layout) -> dict[str, list[Section]]:
    """Every option file as sections; extensions.conf comes from its template (_dialplan)."""
    a = settings.asterisk
    fax = fax_settings(settings)
    return {
        # only the instance's own folders; modules, sounds and music stay at the build's defaults
        "asterisk.conf": [
            Section("directories", [
                Option(f"ast{sub}dir", layout.ast(sub), " => ")
                for sub in ("etc", "db", "spool", "run", "log")]),
            Section("options", [Option("verbose", 1), Option("maxcalls", 2000),
                                Option("transmit_silence", "yes"),
                                Option("defaultlanguage", "en")]),
        ],
        "modules.conf": [Section("modules", [Option("autoload", "no", "="),
                                             *(Option("load", m) for m in MODULES)])],
        "logger.conf": [
            Section("general", [Option("dateformat", "%F %T.%3q")]),
            Section("logfiles", [Option("console", "notice,warning,error", " => "),
                                 Option("messages.log", "notice,warning,error,verbose(1)",
                                        " => ")]),
        ],
        "manager.conf": _manager(settings, secrets),
        "rtp.conf": [Section("general", [Option("rtpstart", a.rtp_start),
                                         Option("rtpend", a.rtp_end)])],
        "udptl.conf": [Section("general", [Option("udptlstart", fax.udptl_start),
                                           Option("udptlend", fax.udptl_end)])],
        "musiconhold.conf": [Section("default", [Option("mode", "files"),
                                                 Option("directory", "moh"),
                                                 Option("sort", "random")])],
        "pjsip.conf": _pjsip(settings, secrets),
        "queues.conf": _queues(settings),
        "cdr.conf": [Section("general", [Option("enable", "no")])],
        "http.conf": [Section("general", [Option("enabled", "no")])],
        "indications.conf": [Section("general", [Option("country", "jp")]),
                             Section("jp", [Option(k, v) for k, v in JP_TONES])],
    }


EMPTY_FILES = ("cel.conf", "features.conf", "ccss.conf", "acl.conf",
               "sorcery.conf", "pjproject.conf")


def render(settings: Settings, secrets: Secrets, layout: Layout) -> dict[str, str]:
    """Every file's text, all made through conffile: a value that could add or cut
    configuration raises ConfWriteError before anything is written."""
    files = {name: render_file(name, secs)
             for name, secs in sections(settings, secrets, layout).items()}
    files["extensions.conf"] = _dialplan(settings, secrets, layout)
    files.update((name, render_file(name, [])) for name in EMPTY_FILES)
    return files


JP_TONES = (
    ("description", "Japan"), ("ringcadence", "1000,2000"), ("dial", "400"),
    ("busy", "400/500,0/500"), ("ring", "400+15/1000,0/2000"), ("congestion", "400/500,0/500"),
    ("callwaiting", "400+16/4000,0/4000"),
    ("dialrecall", "!400/200,!0/200,!400/200,!0/200,!400/200,!0/200,400"),
    ("record", "1400/500,0/15000"), ("info", "!950/330,!1400/330,!1800/330,0"),
)

# The events the engine acts on; Asterisk sends its AMI login no others (bench/load.py:
# without the filter, decoding the rest was most of the engine's CPU per call)
ENGINE_EVENTS = ("Hangup", "DeviceStateChange", "AttendedTransfer", "UserEvent",
                 "OriginateResponse")


def _manager(settings: Settings, secrets: Secrets) -> list[Section]:
    a = settings.asterisk
    only_here = [Option("deny", "0.0.0.0/0.0.0.0"),
                 Option("permit", f"{a.ami_host}/255.255.255.255")]
    return [
        Section("general", [
            Option("enabled", "yes"), Option("bindaddr", a.ami_host), Option("port", a.ami_port),
            Option("displayconnects", "no"),
            Comment("Timestamp on every event: latency measured from the PBX's own clock "
                    "(bench/load.py)"),
            Option("timestampevents", "yes")]),
        Section(a.ami_username, [
            Option("secret", secrets.ami_secret), *only_here,
            Comment("only what the engine uses: no 'system' (module load, shell) and no "
                    "'command'"),
            Option("read", "call,user,reporting"),
            Option("write", "call,originate,user,reporting"),
            Comment("the default 100 ms drops the engine on a short pause; events are small "
                    "and local"),
            Option("writetimeout", 5000),
            Comment("only the events the engine handles: a busy PBX sends hundreds per call"),
            *(Option(f"eventfilter(action(include),name({name}))", "")
              for name in ENGINE_EVENTS)]),
        Section(f"{a.ami_username}-monitor", [
            Option("secret", secrets.ami_monitor_secret), *only_here,
            Option("read", "call,user,dtmf,reporting,dialplan,agi"), Option("write", ""),
            Option("writetimeout", 5000)],
            comments=["read-only observer: diagnostics, AGIExec events showing which prompt "
                      "a caller heard"]),
    ]


# FAX machines on the trunks may switch to T.38 (a re-INVITE); without it they stay on G.711
T38 = (Comment("T.38 FAX when the other side asks for it (or SendFAX/ReceiveFAX do)"),
       Option("t38_udptl", "yes"), Option("t38_udptl_ec", "redundancy"),
       Option("t38_udptl_maxdatagram", 400))


def _pjsip(settings: Settings, secrets: Secrets) -> list[Section]:
    a = settings.asterisk
    sections = [
        Section("global", [
            Option("type", "global"), Option("user_agent", "madoguchi"),
            Comment("operators are matched by the user part first, the trunk by its address"),
            Option("endpoint_identifier_order", "username,ip")]),
        Section("transport-udp", [Option("type", "transport"), Option("protocol", "udp"),
                                  Option("bind", f"{a.sip_host}:{a.sip_port}")]),
        Section("trunk", [
            Option("type", "endpoint"), Option("transport", "transport-udp"),
            Option("context", Context.FROM_TRUNK), Option("identify_by", "ip"),
            Option("disallow", "all"), Option("allow", "alaw,ulaw"), Option("direct_media", "no"),
            Option("rtp_symmetric", "yes"), Option("dtmf_mode", "rfc4733"), *T38],
            comments=["Inbound trunk: only the address in [trunk-identify] may deliver calls. "
                      "There is no anonymous endpoint.",
                      "identify_by = ip: a request from elsewhere with the user part 'trunk' is "
                      "not the trunk"]),
        Section("trunk-identify", [Option("type", "identify"), Option("endpoint", "trunk"),
                                   Option("match", a.trunk_match)]),
    ]
    t = settings.transfers
    if t.pbx_host is not None:
        sections += [
            Section("citypbx", [
                Option("type", "endpoint"), Option("transport", "transport-udp"),
                Option("context", Context.FROM_CITYPBX), Option("identify_by", "ip"),
                Option("disallow", "all"), Option("allow", "alaw,ulaw"),
                Option("direct_media", "no"), Option("aors", "citypbx"), *T38],
                comments=["outbound only: transfers to city-hall extensions and allowed outside "
                          "numbers"]),
            Section("citypbx", [Option("type", "aor"),
                                Option("contact", f"sip:{t.pbx_host}:{t.pbx_port}")]),
        ]
    for agent in settings.agents:
        sections += [
            Section(agent.id, [
                Option("type", "endpoint"), Option("transport", "transport-udp"),
                Option("context", Context.OPERATORS), Option("disallow", "all"),
                Option("allow", "alaw,ulaw"),
                Comment("media through Asterisk so recording and supervision work"),
                Option("direct_media", "no"), Option("rtp_symmetric", "yes"),
                Option("force_rport", "yes"), Option("rewrite_contact", "yes"),
                Option("dtmf_mode", "rfc4733"), Option("auth", f"{agent.id}-auth"),
                Option("aors", agent.id), Option("callerid", f"{agent.id} <{agent.id}>")],
                comments=[f"operator {agent.id}"]),
            Section(f"{agent.id}-auth", [
                Option("type", "auth"), Option("auth_type", "digest"),
                Option("username", agent.id),
                Option("password", secrets.sip_passwords[agent.id])]),
            Section(agent.id, [
                Option("type", "aor"), Option("max_contacts", 1),
                Option("remove_existing", "yes"),
                *([Option("contact", agent.contact)] if agent.contact else [])]),
        ]
    return sections


def _queues(settings: Settings) -> list[Section]:
    sections = [Section("general", [Option("persistentmembers", "no")])]
    for q in settings.queues:
        sections.append(Section(f"{FAILOPEN_QUEUE}{q.id}", [
            Option("strategy", "leastrecent"), Option("timeout", q.ring_timeout),
            Option("wrapuptime", q.wrap_up), Option("retry", 1), Option("ringinuse", "no"),
            Option("musicclass", "default"), Option("joinempty", "yes"),
            Option("leavewhenempty", "no"),
            *(Option("member", f"PJSIP/{agent.id}", " => ")
              for agent in settings.agents if q.id in agent.queues)],
            comments=[f"fail-open copy of queue {q.id}, used only when the engine is "
                      "unreachable"]))
    return sections


# what the FastAGI secret may be: it is an argument of every AGI() call
AGI_KEY = Kind("a FastAGI key", re.compile(r"[A-Za-z0-9_-]"), "letters, digits, _ and -",
               KEY_PATTERN)


# what the FAX station id and header may hold in a dialplan argument (core/fax.py checks them
# at load time; checked again here like every value)
FAX_NUMBER = Kind("a FAX number", NUMBER_CHAR, "digits, + and -")
FAX_HEADER = Kind("a FAX page header", HEADER_CHAR, "ASCII letters, digits, space and "
                  ". + _ : / & ' @ # * ! ? = % -")


def _fax_routes(settings: Settings, fax: FaxSettings) -> list[DialplanLine]:
    """from-trunk lines sending each FAX DID to ReceiveFAX (no engine involved)."""
    services = {s.did for s in settings.services}
    routes: list[DialplanLine] = []
    for did in fax.dids:
        at = Place("extensions.conf", Context.FROM_TRUNK, f"FAX DID {did!r}")
        if did in services:
            raise ConfWriteError(at, "the DID is also a service's: a call cannot be both")
        field = Field(DIGITS, did, "FAX DID")
        routes += [exten(at, field, "1", "Set", f"__{Var.DID}=", field),
                   same(at, "Goto", f"{Context.FAX_IN},{ENTRY},1")]
    return routes


def _fax_station(fax: FaxSettings) -> list[DialplanLine]:
    """Our station id (the number receiving machines show) and the page header."""
    at = Place("extensions.conf", Context.FAX_OUT, "fax station")
    lines = []
    if fax.number:
        lines.append(same(at, "Set", "FAXOPT(localstationid)=",
                          Field(FAX_NUMBER, fax.number, "fax number")))
    if fax.header:
        lines.append(same(at, "Set", "FAXOPT(headerinfo)=",
                          Field(FAX_HEADER, fax.header, "fax header")))
    return lines


def _dialplan(settings: Settings, secrets: Secrets, layout: Layout) -> str:
    template = (DIALPLANS / "extensions.conf.in").read_text(encoding="utf-8")
    fax = fax_settings(settings)
    routes: list[DialplanLine] = []
    for s in settings.services:
        # service ids and DIDs are validated identifiers and digits; checked again here
        at = Place("extensions.conf", Context.FROM_TRUNK, f"service {s.id!r}")
        if s.id in set(AgiScript):
            # the service id is its IVR script's name: the engine would run the other script
            raise ConfWriteError(at, "the service id is the name of a FastAGI script "
                                 f"({', '.join(AgiScript)})")
        did = Field(DIGITS, s.did, f"did of service {s.id!r}")
        routes += [
            exten(at, did, "1", "Set", f"__{Var.SERVICE}=", Field(ID, s.id, "service id")),
            same(at, "Set", f"__{Var.DID}=", did),
            same(at, "Set", f"__{Var.QUEUE}=",
                 Field(ID, s.queue, f"queue of service {s.id!r}")),
            same(at, "Goto", f"{Context.INBOUND},{ENTRY},1"),
        ]
    routes += _fax_routes(settings, fax)
    return fill("extensions.conf", template, {
        TemplateField.DID_ROUTES: routes,
        TemplateField.AGI_KEY: Field(AGI_KEY, secrets.fastagi_secret),
        TemplateField.FASTAGI: Field(ADDRESS,
                                     f"{settings.fastagi.host}:{settings.fastagi.port}"),
        TemplateField.RECORDINGS: Field(PATH, layout.ast("recordings")),
        TemplateField.FAX_SPOOL: Field(PATH, layout.ast(str(fax.spool_dir))),
        TemplateField.FAX_STATION: _fax_station(fax),
    })


def write(settings: Settings, secrets: Secrets, layout: Layout) -> Path:
    """Write the configuration and create the instance folders; returns asterisk.conf."""
    for sub in ("etc", "db", "spool", "run", "log", "recordings", f"recordings/{FAILOPEN_DIR}",
                "sounds"):
        (layout.local / sub).mkdir(parents=True, exist_ok=True)
    for sub in layout.private:
        # personal data (received and outgoing FAXes): Asterisk's own (pbx/sharing.py)
        (layout.local / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    # Asterisk reads its configuration as another user of the folder's group (pbx/sharing.py)
    os.chmod(layout.local / "etc", 0o2750)  # noqa: S103 - the PBX group only
    for name, text in render(settings, secrets, layout).items():
        write_durably(layout.local / "etc" / name, text, mode=0o640)  # whatever the umask
    return layout.local / "etc" / "asterisk.conf"
