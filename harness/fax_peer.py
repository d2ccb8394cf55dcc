"""A citizen's FAX machine for the tests and the benchmark: a second Asterisk from the same
root file system (or the system's), on its own ports, with its own instance folder.

It sends a TIFF to the centre's FAX DID through the centre's trunk (it calls from 127.0.0.1,
the trunk's address) with SendFAX, over G.711 only or with T.38, and receives what the centre
sends it with ReceiveFAX. Each FAX call ends with a UserEvent(PeerFax) on its AMI carrying
FAXOPT's results, the way Asterisk's own testsuite reads them (tests/fax/pjsip).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ami_bridge.pbx import confgen
from ami_bridge.pbx.conffile import Option, Section, render
from ami_bridge.pbx.confgen import CHROOT_MOUNT, Layout
from ami_bridge.pbx.runner import Pbx, rootfs_ready, system_asterisk_version

MODULES = confgen.MODULES  # the centre's own list: it has everything FAX needs
EVENT = "PeerFax"
NUMBER = "0120555000"  # the peer's FAX number as the centre dials it (an allowed prefix)
BUSY_NUMBER = "0120555486"  # the same machine, always busy
RESULT_KEYS = ("Status", "StatusStr", "Error", "Pages", "Resolution", "Rate",
               "RemoteStationId", "LocalStationId", "HeaderInfo", "File", "CallerId")


@dataclass(frozen=True)
class PeerPorts:
    sip: int
    ami: int
    rtp: tuple[int, int]
    udptl: tuple[int, int]


@dataclass(frozen=True)
class CentreTrunk:
    """Where the peer reaches the centre: its SIP port on 127.0.0.1 and the FAX DID."""

    sip_port: int
    did: str


def _dialplan(folder: str) -> str:
    # the dialplan is fixed text: values come in channel variables set by Originate
    result = ",".join(f"{k}: ${{FAXOPT({k.lower()})}}" for k in RESULT_KEYS[:-2])
    send_tail = "File: ${PEER_FILE},CallerId: -"
    receive_tail = "File: ${PEER_FILE},CallerId: ${CALLERID(num)}"
    return f"""[general]
static=yes
writeprotect=yes

[peer-send]
exten => send,1,Set(FAXOPT(localstationid)=${{PEER_STATION}})
 same => n,Set(FAXOPT(headerinfo)=${{PEER_HEADER}})
 same => n,SendFAX({folder}/send/${{PEER_FILE}},${{PEER_OPTIONS}})
 same => n,Hangup(16)
exten => h,1,UserEvent({EVENT},Role: send,Tag: ${{PEER_TAG}},{result},{send_tail})

[peer-in]
; a FAX machine that is busy (for the centre's retries)
exten => {BUSY_NUMBER},1,Busy(5)
exten => _X.,1,Set(PEER_FILE=${{FILTER(0-9,${{UNIQUEID}})}}.tif)
 same => n,Set(FAXOPT(localstationid)={NUMBER})
 same => n,Answer()
 same => n,ReceiveFAX({folder}/in/${{PEER_FILE}},f)
 same => n,Hangup(16)
exten => h,1,UserEvent({EVENT},Role: receive,Tag: -,{result},{receive_tail})
"""


def _files(ports: PeerPorts, centre: CentreTrunk, folder: str, secret: str) -> dict[str, str]:
    def endpoint(name: str, t38: bool) -> Section:
        return Section(name, [
            Option("type", "endpoint"), Option("transport", "transport-udp"),
            Option("context", "peer-in"), Option("disallow", "all"), Option("allow", "alaw,ulaw"),
            Option("direct_media", "no"), Option("aors", "centre"),
            Option("t38_udptl", "yes" if t38 else "no"), Option("t38_udptl_ec", "redundancy"),
            Option("t38_udptl_maxdatagram", 400)])

    sections = {
        "asterisk.conf": [
            Section("directories", [Option(f"ast{d}dir", f"{folder}/{d}", " => ")
                                    for d in ("etc", "db", "spool", "run", "log")]),
            Section("options", [Option("verbose", 0), Option("transmit_silence", "yes")])],
        "modules.conf": [Section("modules", [Option("autoload", "no", "="),
                                             *(Option("load", m) for m in MODULES)])],
        "logger.conf": [Section("logfiles", [Option("messages.log", "notice,warning,error",
                                                    " => ")])],
        "manager.conf": [
            Section("general", [Option("enabled", "yes"), Option("bindaddr", "127.0.0.1"),
                                Option("port", ports.ami)]),
            Section("peer", [Option("secret", secret), Option("deny", "0.0.0.0/0.0.0.0"),
                             Option("permit", "127.0.0.1/255.255.255.255"),
                             Option("read", "call,user,system,reporting"),
                             Option("write", "call,originate,user,system,reporting")])],
        "rtp.conf": [Section("general", [Option("rtpstart", ports.rtp[0]),
                                         Option("rtpend", ports.rtp[1])])],
        "udptl.conf": [Section("general", [Option("udptlstart", ports.udptl[0]),
                                           Option("udptlend", ports.udptl[1])])],
        "pjsip.conf": [
            Section("transport-udp", [Option("type", "transport"), Option("protocol", "udp"),
                                      Option("bind", f"127.0.0.1:{ports.sip}")]),
            Section("centre", [Option("type", "aor"),
                               Option("contact", f"sip:127.0.0.1:{centre.sip_port}")]),
            endpoint("centre-t38", True),
            endpoint("centre-g711", False),
            Section("centre-identify", [Option("type", "identify"),
                                        Option("endpoint", "centre-t38"),
                                        Option("match", "127.0.0.1")],
                    comments=["what the centre sends arrives here; T.38 when it asks"]),
        ],
    }
    files = {name: render(name, secs) for name, secs in sections.items()}
    files["extensions.conf"] = _dialplan(folder)
    for empty in ("cel.conf", "features.conf", "ccss.conf", "acl.conf", "sorcery.conf",
                  "pjproject.conf", "indications.conf", "musiconhold.conf"):
        files[empty] = render(empty, [])
    files["cdr.conf"] = render("cdr.conf", [Section("general", [Option("enable", "no")])])
    return files


@dataclass
class FaxPeer:
    folder: Path
    ports: PeerPorts
    centre: CentreTrunk
    rootfs: Path
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen[bytes] | None = None
    _ami: PeerAmi | None = field(default=None, repr=False)

    @property
    def chroot(self) -> bool:
        return (system_asterisk_version() or (0, 0)) < (20, 0)

    def _pbx(self) -> Pbx:
        local = self.folder.resolve()
        if self.chroot:
            return Pbx(True, self.rootfs, Layout(local, CHROOT_MOUNT))
        return Pbx(False, None, Layout(local, str(local)))

    @property
    def inside(self) -> str:
        """The instance folder as the peer's Asterisk sees it."""
        return self._pbx().layout.asterisk

    def start(self) -> None:
        if self.chroot and not rootfs_ready(self.rootfs):
            raise RuntimeError(f"no Asterisk root file system at {self.rootfs}")
        for sub in ("etc", "db", "spool", "run", "log", "send", "in"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        for name, text in _files(self.ports, self.centre, self.inside, self.secret).items():
            (self.folder / "etc" / name).write_text(text, encoding="utf-8")
        log = open(self.folder / "asterisk.out", "wb")
        self.proc = subprocess.Popen(self._pbx().command(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self._ami = PeerAmi(self.ports.ami, self.secret)
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
                continue
            # AMI opens before the dialplan is loaded: wait for the whole start
            self._ami.wait_event(lambda e: e.get("Event") == "FullyBooted",
                                 max(1.0, deadline - time.monotonic()))
            return
        raise RuntimeError("the FAX peer's Asterisk did not start: "
                           + (self.folder / "asterisk.out").read_text(errors="replace")[-2000:])

    def stop(self) -> None:
        if self._ami is not None:
            self._ami.close()
            self._ami = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    @property
    def ami(self) -> PeerAmi:
        assert self._ami is not None, "the peer is not running"
        return self._ami

    def send(self, tiff: Path, t38: bool, tag: str, caller: str = "0312345678",
             station: str = "+81 3 1234 5678", header: str = "Citizen Taro",
             options: str = "") -> str:
        """Start sending `tiff` to the centre's FAX DID; returns the peer channel's name.
        The outcome is a PeerFax event with Role send and this Tag (wait_result)."""
        name = f"{tag}.tif"
        shutil.copyfile(tiff, self.folder / "send" / name)
        endpoint = "centre-t38" if t38 else "centre-g711"
        reply = self.ami.action({
            "Action": "Originate", "Channel": f"PJSIP/{self.centre.did}@{endpoint}",
            "Context": "peer-send", "Exten": "send", "Priority": "1", "Timeout": "30000",
            "CallerID": f"<{caller}>", "Async": "true", "ChannelId": f"peer-{tag}",
            "Variable": f"PEER_FILE={name},PEER_TAG={tag},PEER_STATION={station},"
                        f"PEER_HEADER={header},PEER_OPTIONS={options or ('f' if t38 else 'F')}"})
        assert reply.get("Response") == "Success", reply
        return f"peer-{tag}"

    def hangup(self, channel_id: str) -> None:
        channels = [m for m in self.ami.command_list({"Action": "CoreShowChannels"})
                    if m.get("Event") == "CoreShowChannel"
                    and m.get("Uniqueid") == channel_id]
        for m in channels:
            self.ami.action({"Action": "Hangup", "Channel": m["Channel"], "Cause": "16"})

    def session_types(self, timeout: float = 30) -> set[str]:
        """The types (G.711, T.38) of the peer's FAX sessions, from the first moment one
        exists until one is T.38 or a few seconds have passed (FAXSessions)."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        first = 0.0
        while time.monotonic() < deadline:
            for m in self.ami.command_list({"Action": "FAXSessions"}):
                if m.get("Event") == "FAXSessionsEntry":
                    seen.add(m.get("SessionType", ""))
            if seen and not first:
                first = time.monotonic()
            if "T.38" in seen or (first and time.monotonic() - first > 5):
                break
            time.sleep(0.3)
        return seen

    def wait_result(self, role: str, tag: str | None = None,
                    timeout: float = 180) -> dict[str, str]:
        return self.ami.wait_event(lambda e: e.get("Event") == "UserEvent"
                                   and e.get("UserEvent") == EVENT and e.get("Role") == role
                                   and (tag is None or e.get("Tag") == tag), timeout)

    def received(self, name: str) -> Path:
        return self.folder / "in" / name


class PeerAmi:
    """A blocking AMI login with every event kept, for one test thread."""

    def __init__(self, port: int, secret: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._buf = b""
        self.events: list[dict[str, str]] = []
        self._n = 0
        self._sock.recv(128)  # the banner
        reply = self.action({"Action": "Login", "Username": "peer", "Secret": secret})
        if reply.get("Response") != "Success":
            raise OSError(f"peer AMI login refused: {reply}")

    def _read(self, timeout: float) -> dict[str, str] | None:
        self._sock.settimeout(max(timeout, 0.01))
        while b"\r\n\r\n" not in self._buf:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise ConnectionError("the peer closed AMI")
            self._buf += data
        raw, self._buf = self._buf.split(b"\r\n\r\n", 1)
        msg: dict[str, str] = {}
        for line in raw.decode(errors="replace").split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                msg.setdefault(key, value)
        return msg

    def _send(self, fields: dict[str, str]) -> str:
        self._n += 1
        action_id = f"peer-{os.getpid()}-{self._n}"
        self._sock.sendall("".join(f"{k}: {v}\r\n" for k, v in
                                   {**fields, "ActionID": action_id}.items()).encode() + b"\r\n")
        return action_id

    def action(self, fields: dict[str, str]) -> dict[str, str]:
        action_id = self._send(fields)
        while True:
            msg = self._read(10)
            if msg is None:
                raise TimeoutError(f"no reply to {fields.get('Action')}")
            if msg.get("ActionID") == action_id and "Response" in msg:
                return msg
            if "Event" in msg:
                self.events.append(msg)

    def command_list(self, fields: dict[str, str]) -> list[dict[str, str]]:
        action_id = self._send(fields)
        out: list[dict[str, str]] = []
        while True:
            msg = self._read(10)
            if msg is None:
                raise TimeoutError(f"no list for {fields.get('Action')}")
            if msg.get("ActionID") != action_id:
                if "Event" in msg:
                    self.events.append(msg)
                continue
            out.append(msg)
            # a list ends with its ...Complete event (some replies do not say EventList: start)
            if msg.get("EventList") == "Complete" or msg.get("Event", "").endswith("Complete") \
                    or msg.get("Response") == "Error":
                return out

    def drain(self) -> list[dict[str, str]]:
        """Every event received so far (a Ping reads what is waiting in the socket)."""
        self.action({"Action": "Ping"})
        return list(self.events)

    def wait_event(self, match: object, timeout: float) -> dict[str, str]:
        assert callable(match)
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if match(e):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event within {timeout:.0f} s")
            msg = self._read(min(left, 1.0))
            if msg is not None and "Event" in msg:
                self.events.append(msg)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
