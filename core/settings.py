"""Typed configuration, validated at start-up from the YAML files in the config folder.

Layout of a config folder:
  madoguchi.yaml  engine, Asterisk and service settings
  agents.yaml     operators (PJSIP endpoints)
  flows/*.yaml    IVR call flows, one per entry point
Secrets never live here: they come from the environment or the state folder. Environment
overrides (core/environ.py) win over the files' values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .environ import Environ, resolve
from .errors import ascii_digits
from .yamlconf import ConfigError, Location, Node, load_yaml

# top-level keys of madoguchi.yaml that belong to a feature's own settings type
FEATURE_SECTIONS = ("recordings", "bookings", "fax")
_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_EXTEN = re.compile(r"^[0-9]{2,8}$")
_CONTACT = re.compile(r"^sip:[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class HttpSettings:
    host: str
    port: int


@dataclass(frozen=True)
class FastAgiSettings:
    host: str
    port: int
    max_sessions: int = 500
    # below max_sessions, so one peer cannot take every slot from Asterisk
    max_sessions_per_peer: int = 400


@dataclass(frozen=True)
class AsteriskSettings:
    mode: str  # auto | chroot | system
    rootfs: Path
    ami_host: str
    ami_port: int
    ami_username: str
    sip_host: str
    sip_port: int
    rtp_start: int
    rtp_end: int
    trunk_match: str


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    did: str
    flow: str
    queue: str


@dataclass(frozen=True)
class CallbackPolicy:
    """A queue's callback offer (virtual hold): when a waiting caller hears it, the key that
    takes it, and how the citizen is called back (acd/callbacks.py)."""

    key: str = "5"  # the DTMF key pressed while waiting
    after: int = 60  # offered once the caller waited this long (seconds) ...
    min_expected_wait: int = 180  # ... or as soon as the expected wait is this long
    attempts: int = 3  # times the citizen is dialled before the callback fails
    retry_delay: int = 120  # seconds between attempts
    ring: int = 30  # seconds the citizen's phone rings
    outside_hours: str = "wait"  # wait: until the service opens again | expire


@dataclass(frozen=True)
class Queue:
    id: str
    ring_timeout: int  # seconds an operator's phone rings before the next operator is tried
    wrap_up: int = 30  # maximum after-call work in seconds; operators may end it earlier
    max_wait: int = 600  # seconds a caller waits before the overflow destination
    overflow: str = "message"  # "message" (apology, hang-up) or "transfer"
    overflow_target: str | None = None  # number for "transfer" (checked like any transfer)
    announce_every: int = 30  # seconds of music between waiting announcements
    callback: CallbackPolicy | None = None  # None: no callback offered


@dataclass(frozen=True)
class Agent:
    id: str  # extension, also the PJSIP endpoint name
    name: str
    queues: tuple[str, ...]
    contact: str | None  # static contact (a desk phone or a test peer) instead of registration


@dataclass(frozen=True)
class TransferSettings:
    """Where answered calls may be transferred (REQUIREMENTS §12(1)ケ–サ)."""

    pbx_host: str | None  # the city hall PBX trunk (additional-number dial-in), None = none
    pbx_port: int
    dial_in_prefix: str  # digits put before a city-hall extension on that trunk
    extension_length: tuple[int, int]  # accepted extension lengths (min, max)
    external_prefixes: tuple[str, ...]  # outside numbers allowed (0570, 0120, mobiles)


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    state_dir: Path
    http: HttpSettings
    fastagi: FastAgiSettings
    database_url: str
    asterisk: AsteriskSettings
    services: tuple[Service, ...]
    queues: tuple[Queue, ...]
    agents: tuple[Agent, ...]
    transfers: TransferSettings
    auto_login: bool = True  # operators start logged in (else: feature code or API)
    # features' own sections (e.g. `recordings:`), parsed by the feature into its own
    # settings type when the application composes it; kept raw here so the core never
    # imports a feature
    sections: Mapping[str, Node] = field(default_factory=dict, compare=False, repr=False)

    @property
    def recordings_dir(self) -> Path:
        return self.state_dir / "asterisk" / "recordings"

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def queue(self, queue_id: str) -> Queue | None:
        return next((q for q in self.queues if q.id == queue_id), None)


def _host(node: Node, key: str, default: str) -> str:
    value = node.text(key, default)
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ConfigError(node.at(key), f"{key!r} must be an IP address, got {value!r}") from exc
    return value


def _ident(node: Node, key: str, default: str | None = None) -> str:
    value = node.text(key, default)
    if not _ID.fullmatch(value):  # match() lets a final line break through (`$`)
        raise ConfigError(node.at(key), f"{key!r} must match {_ID.pattern}, got {value!r}")
    return value


def load_settings(config_dir: Path, state_dir: Path, env: Environ | None = None) -> Settings:
    """Read and validate a config folder; raises ConfigError naming file:line:column. `env`
    holds the environment's overrides (read now when not given)."""
    env = resolve(env)
    main_file = config_dir / "madoguchi.yaml"
    root = Node(load_yaml(main_file), Location(str(main_file), 1, 1), "madoguchi.yaml")

    engine = root.child("engine")
    http_node = engine.child("http")
    http = HttpSettings(_host(http_node, "host", "127.0.0.1"),
                        http_node.integer("port", 8080, 1, 65535))
    http_node.done()
    agi_node = engine.child("fastagi")
    max_sessions = agi_node.integer("max_sessions", 500, 1, 100_000)
    per_peer = agi_node.integer("max_sessions_per_peer", min(400, max_sessions), 1, 100_000)
    if per_peer > max_sessions:
        raise ConfigError(agi_node.at("max_sessions_per_peer"),
                          f"'max_sessions_per_peer' ({per_peer}) exceeds 'max_sessions' "
                          f"({max_sessions})")
    fastagi = FastAgiSettings(_host(agi_node, "host", "127.0.0.1"),
                              agi_node.integer("port", 4573, 1, 65535), max_sessions, per_peer)
    agi_node.done()
    default_db = f"sqlite+aiosqlite:///{state_dir.resolve() / 'madoguchi.db'}"
    file_db = engine.text("database_url", "")  # read (and checked) even when overridden
    database_url = env.database_url or file_db or default_db
    engine.done()

    ast = root.child("asterisk")
    # the file's value is read (and so checked) even when the environment overrides it
    mode = ast.text("mode", "auto")
    mode = env.asterisk_mode or mode
    if mode not in ("auto", "chroot", "system"):
        raise ConfigError(ast.at("mode"), f"'mode' must be auto, chroot or system, got {mode!r}")
    rootfs_text = ast.text("rootfs", "/var/cache/madoguchi/asterisk-sid")
    rootfs = env.rootfs or Path(rootfs_text)
    ami = ast.child("ami")
    sip = ast.child("sip")
    rtp = ast.child("rtp")
    asterisk = AsteriskSettings(
        mode=mode, rootfs=rootfs,
        ami_host=_host(ami, "host", "127.0.0.1"), ami_port=ami.integer("port", 5038, 1, 65535),
        ami_username=_ident(ami, "username", "madoguchi"),
        sip_host=_host(sip, "host", "127.0.0.1"), sip_port=sip.integer("port", 5060, 1, 65535),
        rtp_start=rtp.integer("start", 10000, 1024, 65535),
        rtp_end=rtp.integer("end", 10999, 1024, 65535),
        trunk_match=_host(ast, "trunk_match", "127.0.0.1"),
    )
    for n in (ami, sip, rtp):
        n.done()
    ast.done()
    if asterisk.rtp_end <= asterisk.rtp_start:
        raise ConfigError(rtp.where, "'rtp.end' must be above 'rtp.start'")

    queues: list[Queue] = []
    for item, where in root.items("queues"):
        q = Node(item, where, "queue")
        overflow = q.text("overflow", "message")
        if overflow not in ("message", "transfer"):
            raise ConfigError(q.at("overflow"), f"'overflow' must be message or transfer, "
                              f"got {overflow!r}")
        target = q.text("overflow_target", "") or None
        if overflow == "transfer" and target is None:
            raise ConfigError(q.where, "'overflow: transfer' needs 'overflow_target'")
        queues.append(Queue(_ident(q, "id"), q.integer("ring_timeout", 15, 3, 120),
                            q.integer("wrap_up", 30, 0, 3600), q.integer("max_wait", 600, 10,
                                                                         7200),
                            overflow, target, q.integer("announce_every", 30, 5, 600),
                            _callback_policy(q)))
        q.done()
    queue_ids = {q.id for q in queues}

    services: list[Service] = []
    for item, where in root.items("services"):
        s = Node(item, where, "service")
        did = s.text("did")
        if not _EXTEN.fullmatch(did):
            raise ConfigError(s.at("did"), f"'did' must be 2-8 digits, got {did!r}")
        queue = _ident(s, "queue")
        if queue not in queue_ids:
            raise ConfigError(s.at("queue"), f"unknown queue {queue!r}")
        services.append(Service(_ident(s, "id"), s.text("name"), did, _ident(s, "flow"), queue))
        s.done()
    transfers = _load_transfers(root.child("transfers"))
    sections = {key: root.child(key) for key in FEATURE_SECTIONS}
    acd = root.child("acd")
    auto_login = acd.flag("auto_login", True)
    acd.done()
    _unique([(s.id, s) for s in services], "service id", main_file)
    _unique([(s.did, s) for s in services], "service did", main_file)
    root.done()

    agents = _load_agents(config_dir / "agents.yaml", queue_ids)
    return Settings(config_dir, state_dir, http, fastagi, database_url, asterisk,
                    tuple(services), tuple(queues), tuple(agents), transfers, auto_login,
                    sections=sections)


def _callback_policy(queue: Node) -> CallbackPolicy | None:
    if queue.data.get("callback") is None:
        queue.child("callback")  # marks it read
        return None
    node = queue.child("callback")
    key = node.text("key", "5")
    if key not in tuple("0123456789"):
        raise ConfigError(node.at("key"), f"'key' must be one digit, got {key!r}")
    outside = node.text("outside_hours", "wait")
    if outside not in ("wait", "expire"):
        raise ConfigError(node.at("outside_hours"),
                          f"'outside_hours' must be wait or expire, got {outside!r}")
    policy = CallbackPolicy(key, node.integer("after", 60, 0, 3600),
                            node.integer("min_expected_wait", 180, 0, 7200),
                            node.integer("attempts", 3, 1, 10),
                            node.integer("retry_delay", 120, 10, 86400),
                            node.integer("ring", 30, 10, 120), outside)
    node.done()
    return policy


def _load_transfers(node: Node) -> TransferSettings:
    pbx = node.child("city_pbx")
    host = pbx.text("host", "") or None
    if host is not None:
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise ConfigError(pbx.at("host"), f"'host' must be an IP address, got {host!r}") \
                from exc
    port = pbx.integer("port", 5060, 1, 65535)
    prefix = pbx.text("dial_in_prefix", "")
    if prefix != "" and not ascii_digits(prefix):  # it is put into dial strings
        raise ConfigError(pbx.at("dial_in_prefix"),
                          f"'dial_in_prefix' must be digits 0-9, got {prefix!r}")
    lengths = (pbx.integer("extension_min_length", 3, 2, 8),
               pbx.integer("extension_max_length", 5, 2, 8))
    pbx.done()
    external = node.text_list("external_prefixes", ["0570", "0120", "070", "080", "090"])
    for p in external:
        if not ascii_digits(p):
            raise ConfigError(node.at("external_prefixes"), f"prefix {p!r} must be digits 0-9")
    node.done()
    return TransferSettings(host, port, prefix, lengths, tuple(external))


def _load_agents(path: Path, queue_ids: set[str]) -> list[Agent]:
    root = Node(load_yaml(path), Location(str(path), 1, 1), "agents.yaml")
    agents: list[Agent] = []
    seen: set[str] = set()
    for item, where in root.items("agents"):
        a = Node(item, where, "agent")
        agent_id = a.text("id")
        if not _EXTEN.fullmatch(agent_id):
            raise ConfigError(a.at("id"),
                              f"'id' must be an extension of 2-8 digits, got {agent_id!r}")
        if agent_id in seen:
            raise ConfigError(a.at("id"), f"duplicate agent id {agent_id!r}")
        seen.add(agent_id)
        agent_queues = a.text_list("queues")
        for q in agent_queues:
            if q not in queue_ids:
                raise ConfigError(a.at("queues"), f"unknown queue {q!r}")
        contact = a.text("contact", "") or None
        if contact is not None and not _CONTACT.fullmatch(contact):
            raise ConfigError(a.at("contact"),
                              f"'contact' must look like sip:host:port, got {contact!r}")
        agents.append(Agent(agent_id, a.text("name", agent_id), tuple(agent_queues), contact))
        a.done()
    root.done()
    return agents


def _unique(pairs: list[tuple[str, Service]], what: str, path: Path) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ConfigError(Location(str(path), 1, 1), f"duplicate {what} {key!r}")
        seen.add(key)
