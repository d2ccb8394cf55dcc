"""Generate every Asterisk configuration file from config/ and dialplans/.

Nothing is edited by hand inside Asterisk's own folders: the generated folder is the whole
configuration (asterisk.conf points all writable directories at the instance folder).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ami_bridge.agi_auth import KEY_PATTERN

from ..secrets import Secrets
from ..settings import Settings

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
]


@dataclass(frozen=True)
class Layout:
    """Where the instance folder is, as the engine sees it and as Asterisk sees it."""

    local: Path  # state/asterisk on this host
    asterisk: str  # the same folder seen from inside Asterisk (chroot mount point or local)

    def ast(self, sub: str) -> str:
        return f"{self.asterisk}/{sub}"


CHROOT_MOUNT = "/srv/madoguchi"


def layout_for(settings: Settings, chroot: bool) -> Layout:
    local = (settings.state_dir / "asterisk").resolve()
    return Layout(local, CHROOT_MOUNT if chroot else str(local))


def render(settings: Settings, secrets: Secrets, layout: Layout) -> dict[str, str]:
    a = settings.asterisk
    files: dict[str, str] = {}
    # only the instance's own folders; modules, sounds and music stay at the build's defaults
    files["asterisk.conf"] = f"""[directories]
astetcdir => {layout.ast('etc')}
astdbdir => {layout.ast('db')}
astspooldir => {layout.ast('spool')}
astrundir => {layout.ast('run')}
astlogdir => {layout.ast('log')}

[options]
verbose = 1
maxcalls = 2000
transmit_silence = yes
defaultlanguage = en
"""
    files["modules.conf"] = "[modules]\nautoload=no\n" + "".join(
        f"load = {m}\n" for m in MODULES)
    files["logger.conf"] = """[general]
dateformat = %F %T.%3q
[logfiles]
console => notice,warning,error
messages.log => notice,warning,error,verbose(1)
"""
    files["manager.conf"] = f"""[general]
enabled = yes
bindaddr = {a.ami_host}
port = {a.ami_port}
displayconnects = no
; Timestamp on every event: latency measured from the PBX's own clock (bench/load.py)
timestampevents = yes

[{a.ami_username}]
secret = {secrets.ami_secret}
deny = 0.0.0.0/0.0.0.0
permit = {a.ami_host}/255.255.255.255
; only what the engine uses: no 'system' (module load, shell) and no 'command'
read = call,user,reporting
write = call,originate,user,reporting
; the default 100 ms drops the engine on a short pause; events are small and local
writetimeout = 5000
; only the events the engine handles: a busy PBX sends hundreds per call
{_event_filters()}
; read-only observer: diagnostics, AGIExec events showing which prompt a caller heard
[{a.ami_username}-monitor]
secret = {secrets.ami_monitor_secret}
deny = 0.0.0.0/0.0.0.0
permit = {a.ami_host}/255.255.255.255
read = call,user,dtmf,reporting,dialplan,agi
write =
writetimeout = 5000
"""
    files["rtp.conf"] = f"[general]\nrtpstart = {a.rtp_start}\nrtpend = {a.rtp_end}\n"
    files["musiconhold.conf"] = (
        "[default]\nmode = files\ndirectory = moh\nsort = random\n")
    files["pjsip.conf"] = _pjsip(settings, secrets)
    files["queues.conf"] = _queues(settings)
    files["extensions.conf"] = _dialplan(settings, secrets, layout)
    for name in ("cdr.conf", "cel.conf", "features.conf", "udptl.conf", "ccss.conf",
                 "indications.conf", "acl.conf", "http.conf", "sorcery.conf", "pjproject.conf"):
        files.setdefault(name, "")
    files["cdr.conf"] = "[general]\nenable = no\n"
    files["http.conf"] = "[general]\nenabled = no\n"
    files["indications.conf"] = "[general]\ncountry = jp\n\n[jp]\ndescription = Japan\n" \
        "ringcadence = 1000,2000\ndial = 400\nbusy = 400/500,0/500\nring = 400+15/1000,0/2000\n" \
        "congestion = 400/500,0/500\ncallwaiting = 400+16/4000,0/4000\ndialrecall = !400/200," \
        "!0/200,!400/200,!0/200,!400/200,!0/200,400\nrecord = 1400/500,0/15000\n" \
        "info = !950/330,!1400/330,!1800/330,0\n"
    return files


# The events the engine acts on; Asterisk sends its AMI login no others (bench/load.py:
# without the filter, decoding the rest was most of the engine's CPU per call)
ENGINE_EVENTS = ("Hangup", "DeviceStateChange", "AttendedTransfer", "UserEvent",
                 "OriginateResponse")


def _event_filters() -> str:
    return "\n".join(f"eventfilter(action(include),name({name})) =" for name in ENGINE_EVENTS)


def _pjsip(settings: Settings, secrets: Secrets) -> str:
    a = settings.asterisk
    out = [f"""[global]
type = global
user_agent = madoguchi
; operators are matched by the user part first, the trunk by its address
endpoint_identifier_order = username,ip

[transport-udp]
type = transport
protocol = udp
bind = {a.sip_host}:{a.sip_port}

; Inbound trunk: only {a.trunk_match} may deliver calls. There is no anonymous endpoint.
; identify_by = ip: a request from elsewhere with the user part 'trunk' is not the trunk
[trunk]
type = endpoint
transport = transport-udp
context = from-trunk
identify_by = ip
disallow = all
allow = alaw,ulaw
direct_media = no
rtp_symmetric = yes
dtmf_mode = rfc4733

[trunk-identify]
type = identify
endpoint = trunk
match = {a.trunk_match}
"""]
    t = settings.transfers
    if t.pbx_host is not None:
        # outbound only: transfers to city-hall extensions and allowed outside numbers
        out.append(f"""
[citypbx]
type = endpoint
transport = transport-udp
context = from-citypbx
identify_by = ip
disallow = all
allow = alaw,ulaw
direct_media = no
aors = citypbx

[citypbx]
type = aor
contact = sip:{t.pbx_host}:{t.pbx_port}
""")
    for agent in settings.agents:
        password = secrets.sip_passwords[agent.id]
        contact = f"contact = {agent.contact}\n" if agent.contact else ""
        out.append(f"""
; operator {agent.id}
[{agent.id}]
type = endpoint
transport = transport-udp
context = operators
disallow = all
allow = alaw,ulaw
; media through Asterisk so recording and supervision work
direct_media = no
rtp_symmetric = yes
force_rport = yes
rewrite_contact = yes
dtmf_mode = rfc4733
auth = {agent.id}-auth
aors = {agent.id}
callerid = {agent.id} <{agent.id}>

[{agent.id}-auth]
type = auth
auth_type = digest
username = {agent.id}
password = {password}

[{agent.id}]
type = aor
max_contacts = 1
remove_existing = yes
{contact}""")
    return "".join(out)


def _queues(settings: Settings) -> str:
    out = ["[general]\npersistentmembers = no\n"]
    for q in settings.queues:
        out.append(f"\n; fail-open copy of queue {q.id}, used only when the engine is unreachable\n"
                   f"[failopen-{q.id}]\nstrategy = leastrecent\ntimeout = {q.ring_timeout}\n"
                   f"wrapuptime = {q.wrap_up}\nretry = 1\nringinuse = no\nmusicclass = default\n"
                   "joinempty = yes\n"
                   "leavewhenempty = no\n")
        for agent in settings.agents:
            if q.id in agent.queues:
                out.append(f"member => PJSIP/{agent.id}\n")
    return "".join(out)


def _dialplan(settings: Settings, secrets: Secrets, layout: Layout) -> str:
    template = (DIALPLANS / "extensions.conf.in").read_text(encoding="utf-8")
    routes = []
    for s in settings.services:
        # service ids and DIDs are validated identifiers/digits, safe in dialplan
        routes.append(
            f"exten => {s.did},1,Set(__MADO_SERVICE={s.id})\n"
            f" same => n,Set(__MADO_DID={s.did})\n"
            f" same => n,Set(__MADO_QUEUE={s.queue})\n"
            f" same => n,Goto(mado-inbound,s,1)")
    if not KEY_PATTERN.fullmatch(secrets.fastagi_secret):
        # it is written into every AGI() call: only characters with no dialplan meaning
        raise ValueError("FastAGI secret has characters that are unsafe in the dialplan")
    fields = {
        "did_routes": "\n".join(routes),
        "agi_key": secrets.fastagi_secret,
        "fastagi": f"{settings.fastagi.host}:{settings.fastagi.port}",
        "recordings": layout.ast("recordings"),
    }
    for key, value in fields.items():
        template = template.replace("{{" + key + "}}", value)
    if re.search(r"\{\{[a-z_]+\}\}", template):
        raise ValueError("dialplan template has an unfilled field")
    return template


def write(settings: Settings, secrets: Secrets, layout: Layout) -> Path:
    """Write the configuration and create the instance folders; returns asterisk.conf."""
    for sub in ("etc", "db", "spool", "run", "log", "recordings", "recordings/failopen",
                "sounds"):
        (layout.local / sub).mkdir(parents=True, exist_ok=True)
    # Asterisk reads its configuration as another user of the folder's group (pbx/sharing.py)
    os.chmod(layout.local / "etc", 0o2750)  # noqa: S103 - the PBX group only
    for name, text in render(settings, secrets, layout).items():
        path = layout.local / "etc" / name
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.fchmod(fd, 0o640)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return layout.local / "etc" / "asterisk.conf"
