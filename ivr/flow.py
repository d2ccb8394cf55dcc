"""Call-flow language: YAML flows (config/flows/*.yaml) validated into frozen nodes.

One table, NODE_SPECS, describes every node type and its fields. The loader, the JSON
Schema given to editors (`madoguchi flows schema`) and the reference in docs/ivr.md all come
from it, so they cannot drift apart. Loading collects every problem with file:line:column
instead of stopping at the first: an admin fixes a whole file in one go.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ascii_digits
from core.settings import TransferSettings
from core.transfers import TransferRefused, resolve
from core.yamlconf import ConfigError, Location, Node, load_yaml

from .errors import Problems
from .prompts import LANGUAGES, PromptSource

_NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_VAR = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CATEGORY = re.compile(r"^[a-z0-9_-]{1,32}$")  # as the bookings catalogue spells one
MAX_BOOKING_CHOICES = 9  # one key per event, 1 to 9
DTMF_KEYS = "0123456789*#"
# variables every call has; `set` nodes may add their own
BUILTIN_VARS = ("caller", "did", "service", "language", "time", "date", "weekday", "topic",
                "schedule")
SCHEDULE_BRANCHES = ("open", "closed", "holiday", "emergency", "forward")


# ---- the table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    kind: str  # see _SCHEMA_OF for the kinds
    required: bool = False
    doc: str = ""
    lo: int | None = None
    hi: int | None = None
    default: Any = None


_SAY = {
    "prompt": FieldSpec("prompt", doc="prompt id from config/prompts.yaml"),
    "text": FieldSpec("texts", doc="inline text per language, spoken by TTS"),
    "audio": FieldSpec("audio", doc="recorded file per language, relative to the config folder"),
}

NODE_SPECS: dict[str, tuple[str, dict[str, FieldSpec]]] = {
    "play": ("Play a prompt, then go on.", {
        **_SAY,
        "next": FieldSpec("target", True, "node to go to afterwards"),
        "barge_in": FieldSpec("bool", doc="a key pressed while playing answers the next menu",
                              default=False),
    }),
    "menu": ("Play a prompt and branch on one DTMF key.", {
        **_SAY,
        "choices": FieldSpec("choices", True, "key (0-9, *, #) -> node"),
        "timeout": FieldSpec("int", doc="seconds to wait for a key", lo=1, hi=30, default=5),
        "retries": FieldSpec("int", doc="times the menu is repeated after a wrong key or no key",
                             lo=0, hi=5, default=2),
        "invalid_prompt": FieldSpec("prompt", doc="prompt before repeating after a wrong key"),
        "timeout_prompt": FieldSpec("prompt", doc="prompt before repeating after no key"),
        "on_timeout": FieldSpec("target", True, "node when retries ran out without a key"),
        "on_invalid": FieldSpec("target", True, "node when retries ran out on wrong keys"),
    }),
    "language": ("Set the call's language; prompts resolve in it from here on.", {
        "language": FieldSpec("language", True, "ja or en"),
        "next": FieldSpec("target", True, "node to go to afterwards"),
    }),
    "schedule": ("Branch on the service's hours, holidays and override.", {
        "service": FieldSpec("service", True, "service id from config/madoguchi.yaml"),
        "open": FieldSpec("target", True, "within opening hours"),
        "closed": FieldSpec("target", True, "outside hours, or override 'closed'"),
        "holiday": FieldSpec("target", doc="national holiday or city closure on which the "
                             "service is shut (default: closed)"),
        "emergency": FieldSpec("target", doc="override 'emergency' (its message plays first; "
                               "default: closed)"),
        "forward": FieldSpec("target", doc="override 'forward to city hall' (default: closed)"),
    }),
    "events": ("Play the event-information board in the call's language.", {
        "next": FieldSpec("target", True, "node to go to afterwards"),
        "intro": FieldSpec("prompt", doc="prompt before the first event"),
        "empty": FieldSpec("prompt", doc="prompt when no event is published"),
    }),
    "queue": ("Send the caller to an ACD queue (ends the IVR).", {
        "queue": FieldSpec("queue", True, "queue id from config/madoguchi.yaml"),
        "topic": FieldSpec("topic", doc="inquiry type tag, or {variable}"),
        "priority": FieldSpec("int", doc="higher is served first", lo=0, hi=9, default=0),
        "survey": FieldSpec("bool", doc="after the operator hangs up, the caller hears the "
                            "post-call survey (config/survey.yaml)", default=False),
    }),
    "transfer": ("Transfer to a city-hall extension (city PBX trunk) or an allowed number.", {
        "to": FieldSpec("number", True, "extension or outside number (checked like any "
                        "transfer)"),
        **{k: v for k, v in _SAY.items()},
    }),
    "goto": ("Jump, optionally by a variable's value.", {
        "next": FieldSpec("target", True, "node to go to (when no case matches)"),
        "switch": FieldSpec("variable", doc="variable whose value selects a case"),
        "cases": FieldSpec("cases", doc="value -> node"),
    }),
    "set": ("Set variables (topic, language, priority or your own).", {
        "values": FieldSpec("values", True, "variable -> value; {variable} is replaced"),
        "next": FieldSpec("target", True, "node to go to afterwards"),
    }),
    "hangup": ("Optionally play a prompt, then hang up.", dict(_SAY)),
    "booking": ("Self-service course and event booking: 1 lists the open events of a "
                "category and books one for the caller's number, 2 cancels one of the "
                "caller's bookings; then go on.", {
        "category": FieldSpec("category", True, "bookings catalogue category (a-z, 0-9, -, _)"),
        "next": FieldSpec("target", True, "node to go to afterwards"),
        "max_events": FieldSpec("int", doc="at most this many event dates are offered (one "
                                "key each)", lo=1, hi=MAX_BOOKING_CHOICES,
                                default=MAX_BOOKING_CHOICES),
    }),
}

TOP_FIELDS = {"start": "first node", "nodes": "node id -> node",
              "description": "free text for admins"}


# ---- nodes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Play:
    id: str
    say: str
    next: str
    barge_in: bool = False


@dataclass(frozen=True)
class Menu:
    id: str
    say: str
    choices: dict[str, str] = field(hash=False)
    timeout: int = 5
    retries: int = 2
    on_timeout: str = ""
    on_invalid: str = ""
    invalid_say: str | None = None
    timeout_say: str | None = None


@dataclass(frozen=True)
class SetLanguage:
    id: str
    language: str
    next: str


@dataclass(frozen=True)
class Schedule:
    id: str
    service: str
    branches: dict[str, str] = field(hash=False)  # every SCHEDULE_BRANCHES key filled


@dataclass(frozen=True)
class Events:
    id: str
    next: str
    intro: str | None = None
    empty: str | None = None


@dataclass(frozen=True)
class ToQueue:
    id: str
    queue: str
    topic: str | None = None
    priority: int = 0
    survey: bool = False  # the post-call survey once the operator hangs up


@dataclass(frozen=True)
class Transfer:
    id: str
    to: str
    dial: str  # from core.transfers.resolve at load time, never from the caller
    say: str | None = None


@dataclass(frozen=True)
class Goto:
    id: str
    next: str
    switch: str | None = None
    cases: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SetVars:
    id: str
    values: dict[str, str] = field(hash=False)
    next: str = ""


@dataclass(frozen=True)
class Hangup:
    id: str
    say: str | None = None


@dataclass(frozen=True)
class BookingNode:
    id: str
    category: str
    next: str
    max_events: int = MAX_BOOKING_CHOICES


FlowNode = Play | Menu | SetLanguage | Schedule | Events | ToQueue | Transfer | Goto | SetVars \
    | Hangup | BookingNode
TERMINALS = (ToQueue, Transfer, Hangup)


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    nodes: dict[str, FlowNode] = field(hash=False)
    where: dict[str, Location] = field(default_factory=dict, hash=False)


def targets(node: FlowNode) -> list[str]:
    if isinstance(node, Play | SetLanguage | Events | SetVars | BookingNode):
        return [node.next]
    if isinstance(node, Menu):
        return [*node.choices.values(), node.on_timeout, node.on_invalid]
    if isinstance(node, Schedule):
        return list(dict.fromkeys(node.branches.values()))
    if isinstance(node, Goto):
        return [*node.cases.values(), node.next]
    return []


def says(node: FlowNode) -> list[str]:
    """Prompt keys a node may play."""
    if isinstance(node, Play):
        return [node.say]
    if isinstance(node, Menu):
        return [k for k in (node.say, node.invalid_say, node.timeout_say) if k]
    if isinstance(node, Events):
        return [k for k in (node.intro, node.empty) if k]
    if isinstance(node, Transfer | Hangup):
        return [node.say] if node.say else []
    return []


# ---- loading -------------------------------------------------------------------------------

@dataclass
class LoadContext:
    """What a flow may refer to outside itself, and where collected prompts go."""

    queues: set[str]
    services: set[str]
    transfers: TransferSettings | None
    config_dir: Path
    prompts: dict[str, PromptSource]  # prompts.yaml, plus inline ones added while loading
    problems: Problems = field(default_factory=Problems)
    # (prompt key, where it is referred to) for the per-language check
    refs: list[tuple[str, Location]] = field(default_factory=list)
    schedule_services: set[str] = field(default_factory=set)


class _NodeReader:
    """Reads one node's fields by the table, adding problems instead of raising."""

    def __init__(self, flow: str, node_id: str, n: Node, ctx: LoadContext) -> None:
        self.flow, self.node_id, self.n, self.ctx = flow, node_id, n, ctx

    def target(self, key: str, required: bool = True) -> str:
        value = self.n.text(key, None if required else "")
        return value

    def say(self, required: bool) -> str | None:
        """prompt | text | audio: exactly one (or none when optional)."""
        given = [k for k in ("prompt", "text", "audio") if k in self.n.data]
        if len(given) > 1:
            raise ConfigError(self.n.at(given[1]),
                              f"use one of prompt, text or audio, not {' and '.join(given)}")
        if not given:
            if required:
                raise ConfigError(self.n.where, "missing required field 'prompt' "
                                  "(or 'text' or 'audio')")
            return None
        key = given[0]
        if key == "prompt":
            return self.prompt_ref("prompt")
        inline = f"{self.flow}/{self.node_id}"
        sub = self.n.child(key)
        texts: dict[str, str] = {}
        files: dict[str, Path] = {}
        for lang in list(sub.data):
            if lang not in LANGUAGES:
                raise ConfigError(sub.at(lang), f"unknown language {lang!r}")
            value = sub.text(lang)
            if key == "text":
                texts[lang] = value
            else:
                path = (self.ctx.config_dir / value).resolve()
                if not path.is_relative_to(self.ctx.config_dir.resolve()):
                    raise ConfigError(sub.at(lang), f"audio file {value!r} is outside the "
                                      "config folder")
                if not path.is_file():
                    raise ConfigError(sub.at(lang), f"audio file {value!r} does not exist")
                files[lang] = path
        sub.done()
        self.ctx.prompts[inline] = PromptSource(texts, files, self.n.at(key))
        self.ctx.refs.append((inline, self.n.at(key)))
        return inline

    def prompt_ref(self, key: str) -> str | None:
        if key not in self.n.data:
            self.n.text(key, "")
            return None
        value = self.n.text(key)
        self.ctx.refs.append((value, self.n.at(key)))
        return value


def _read_node(flow: str, node_id: str, n: Node, ctx: LoadContext) -> FlowNode:
    kind = n.text("type")
    if kind not in NODE_SPECS:
        raise ConfigError(n.at("type"), f"unknown node type {kind!r} (known: "
                          f"{', '.join(NODE_SPECS)})")
    specs = NODE_SPECS[kind][1]
    for key in n.data:
        if key != "type" and key not in specs:
            raise ConfigError(n.at(key), f"unknown field {key!r} for a {kind} node "
                              f"(known: {', '.join(specs)})")
    r = _NodeReader(flow, node_id, n, ctx)
    node: FlowNode
    if kind == "play":
        node = Play(node_id, r.say(True) or "", r.target("next"),
                    _flag(n, "barge_in", False))
    elif kind == "menu":
        say = r.say(True) or ""
        choices_node = n.child("choices", required=True)
        choices: dict[str, str] = {}
        for digit in choices_node.data:
            if len(digit) != 1 or digit not in DTMF_KEYS:
                raise ConfigError(choices_node.at(digit), f"choice {digit!r} is not one DTMF "
                                  "key (0-9, *, #)")
            choices[digit] = choices_node.text(digit)
        choices_node.done()
        if not choices:
            raise ConfigError(n.at("choices"), "a menu needs at least one choice")
        node = Menu(node_id, say, choices, n.integer("timeout", 5, 1, 30),
                    n.integer("retries", 2, 0, 5), r.target("on_timeout"),
                    r.target("on_invalid"), r.prompt_ref("invalid_prompt"),
                    r.prompt_ref("timeout_prompt"))
    elif kind == "language":
        lang = n.text("language")
        if lang not in LANGUAGES:
            raise ConfigError(n.at("language"), f"unknown language {lang!r} (known: "
                              f"{', '.join(LANGUAGES)})")
        node = SetLanguage(node_id, lang, r.target("next"))
    elif kind == "schedule":
        service = n.text("service")
        if service not in ctx.services:
            raise ConfigError(n.at("service"), f"unknown service {service!r}")
        ctx.schedule_services.add(service)
        branches = {"open": r.target("open"), "closed": r.target("closed")}
        for b in ("holiday", "emergency", "forward"):
            branches[b] = r.target(b, required=False) or branches["closed"]
        node = Schedule(node_id, service, branches)
    elif kind == "events":
        node = Events(node_id, r.target("next"), r.prompt_ref("intro"), r.prompt_ref("empty"))
    elif kind == "queue":
        queue = n.text("queue")
        if queue not in ctx.queues:
            raise ConfigError(n.at("queue"), f"unknown queue {queue!r}")
        topic = n.text("topic", "") or None
        if topic is not None and not (_TOPIC.match(topic) or _is_template(topic)):
            raise ConfigError(n.at("topic"), f"topic {topic!r} must be a short tag "
                              "(a-z, 0-9, -, _) or {variable}")
        node = ToQueue(node_id, queue, topic, n.integer("priority", 0, 0, 9),
                       _flag(n, "survey", False))
    elif kind == "transfer":
        to = n.text("to")
        if ctx.transfers is None:
            raise ConfigError(n.at("to"), "transfers are not configured")
        try:
            target = resolve(ctx.transfers, to)
        except TransferRefused as exc:
            raise ConfigError(n.at("to"), f"transfer refused: {exc}") from exc
        node = Transfer(node_id, target.number, target.dial, r.say(False))
    elif kind == "goto":
        switch = n.text("switch", "") or None
        if switch is not None and not _VAR.match(switch):
            raise ConfigError(n.at("switch"), f"{switch!r} is not a variable name")
        cases: dict[str, str] = {}
        if "cases" in n.data:
            cases_node = n.child("cases")
            for value in cases_node.data:
                cases[value] = cases_node.text(value)
            cases_node.done()
            if switch is None:
                raise ConfigError(n.at("cases"), "'cases' needs 'switch'")
        node = Goto(node_id, r.target("next"), switch, cases)
    elif kind == "set":
        values_node = n.child("values", required=True)
        values: dict[str, str] = {}
        for var in values_node.data:
            if not _VAR.match(var) or var in ("caller", "did", "service", "time", "date",
                                              "weekday", "schedule"):
                raise ConfigError(values_node.at(var), f"cannot set {var!r} (read-only or "
                                  "not a variable name)")
            value = values_node.text(var)
            if var == "language" and value not in LANGUAGES:
                raise ConfigError(values_node.at(var), f"unknown language {value!r}")
            if var == "priority" and not (ascii_digits(value) and int(value) <= 9):
                raise ConfigError(values_node.at(var), f"priority must be 0-9, got {value!r}")
            values[var] = value
        values_node.done()
        node = SetVars(node_id, values, r.target("next"))
    elif kind == "booking":
        category = n.text("category")
        if not _CATEGORY.match(category):
            raise ConfigError(n.at("category"), f"category {category!r} must be 1-32 of "
                              "a-z, 0-9, - or _")
        node = BookingNode(node_id, category, r.target("next"),
                           n.integer("max_events", MAX_BOOKING_CHOICES, 1,
                                     MAX_BOOKING_CHOICES))
    else:
        node = Hangup(node_id, r.say(False))
    # unknown fields were refused against the table above, so n.done() has nothing to add
    return node


def _flag(n: Node, key: str, default: bool) -> bool:
    value = n.data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(n.at(key), f"{key!r} must be true or false")
    return value


def _is_template(text: str) -> bool:
    try:
        return any(name for _, name, _, _ in string.Formatter().parse(text))
    except ValueError:
        return False


def template_vars(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return set()


def load_flow(path: Path, ctx: LoadContext) -> Flow | None:
    """Read one flow, adding every problem found to ctx.problems."""
    problems = ctx.problems
    try:
        root = Node(load_yaml(path), Location(str(path), 1, 1), "flow")
        start = root.text("start")
        raw_nodes = root.child("nodes", required=True)
        root.text("description", "")
        root.done()
    except ConfigError as exc:
        problems.add(exc)
        return None
    nodes: dict[str, FlowNode] = {}
    where: dict[str, Location] = {}
    target_at: dict[tuple[str, str], Location] = {}
    for node_id in raw_nodes.data:
        loc = raw_nodes.at(node_id)
        if not _NODE_ID.match(node_id):
            problems.at(loc, f"node id {node_id!r} must be lower-case letters, digits, - or _")
            continue
        try:
            n = raw_nodes.child(node_id)
            for key, spec in NODE_SPECS.get(str(n.data.get("type")), ("", {}))[1].items():
                if spec.kind in ("target",):
                    target_at[(node_id, str(n.data.get(key)))] = n.at(key)
            for sub in ("choices", "cases"):
                if isinstance(n.data.get(sub), dict):
                    inner = Node(n.data[sub], n.at(sub), sub)
                    for k, v in inner.data.items():
                        target_at[(node_id, str(v))] = inner.at(k)
            nodes[node_id] = _read_node(path.stem, node_id, n, ctx)
            where[node_id] = n.where
        except ConfigError as exc:
            problems.add(exc)
            where[node_id] = loc
    if start not in nodes and start not in where:
        problems.at(root.at("start"), f"start node {start!r} does not exist")
    flow = Flow(path.stem, start, nodes, where)
    _check_graph(flow, target_at, problems)
    _check_vars(flow, problems)
    return flow


def _check_graph(flow: Flow, target_at: dict[tuple[str, str], Location],
                 problems: Problems) -> None:
    nodes = flow.nodes
    broken = False
    for node in nodes.values():
        for t in targets(node):
            if t not in nodes:
                if t not in flow.where:  # a node that failed to load is reported already
                    problems.at(target_at.get((node.id, t), flow.where[node.id]),
                                f"node {node.id!r} goes to missing node {t!r}")
                broken = True
    if broken or flow.start not in nodes or len(nodes) != len(flow.where):
        return  # the graph checks below need a complete graph
    reachable = _walk([flow.start], lambda n: targets(nodes[n]))
    for node_id in nodes:
        if node_id not in reachable:
            problems.at(flow.where[node_id], f"node {node_id!r} is unreachable from "
                        f"{flow.start!r}")
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes.values():
        for t in targets(node):
            preds[t].append(node.id)
    exits = _walk([n.id for n in nodes.values() if isinstance(n, TERMINALS)],
                  lambda n: preds[n])
    stuck = [n for n in nodes if n in reachable and n not in exits]
    for node_id in stuck:
        problems.at(flow.where[node_id], f"node {node_id!r} is in a loop with no way out "
                    "(no queue, transfer or hangup can be reached from it)")
    for scc in _cycles({n: targets(nodes[n]) for n in reachable}):
        if not any(isinstance(nodes[n], Menu | BookingNode) for n in scc):
            first = min(scc, key=lambda n: (flow.where[n].line, n))
            problems.at(flow.where[first], "loop with no way out: "
                        f"{' -> '.join([*sorted(scc), sorted(scc)[0]])} never waits for a key")


def _walk(start: Iterable[str], step: Callable[[str], list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(step(n))
    return seen


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that are cycles (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = [w for w in graph.get(v, []) if w in graph]
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            for w in succ:
                if w in on_stack:
                    low[v] = min(low[v], low[w])
            if low[v] == index[v]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph.get(v, []):
                    out.append(comp)
    return out


def _check_vars(flow: Flow, problems: Problems) -> None:
    known = set(BUILTIN_VARS)
    for node in flow.nodes.values():
        if isinstance(node, SetVars):
            known |= set(node.values)
    for node in flow.nodes.values():
        used: list[str] = []
        if isinstance(node, SetVars):
            for v in node.values.values():
                used += template_vars(v)
        elif isinstance(node, ToQueue) and node.topic:
            used += template_vars(node.topic)
        elif isinstance(node, Goto) and node.switch:
            used.append(node.switch)
        for name in used:
            if name not in known:
                problems.at(flow.where[node.id], f"node {node.id!r} uses unknown variable "
                            f"{name!r} (known: {', '.join(sorted(known))})")


# ---- JSON Schema -------------------------------------------------------------------------

def _schema_of(spec: FieldSpec) -> dict[str, Any]:
    lang_map = {"type": "object", "additionalProperties": False,
                "properties": {lg: {"type": "string", "minLength": 1} for lg in LANGUAGES}}
    kinds: dict[str, dict[str, Any]] = {
        "target": {"type": "string", "pattern": _NODE_ID.pattern},
        "prompt": {"type": "string", "minLength": 1},
        "texts": lang_map, "audio": lang_map,
        "bool": {"type": "boolean"},
        "int": {"type": "integer"},
        "language": {"enum": list(LANGUAGES)},
        "service": {"type": "string"}, "queue": {"type": "string"},
        "topic": {"type": "string"},
        "category": {"type": "string", "pattern": _CATEGORY.pattern},
        "number": {"type": "string", "pattern": "^[0-9]{1,15}$"},
        "variable": {"type": "string", "pattern": _VAR.pattern},
        "choices": {"type": "object", "minProperties": 1,
                    "propertyNames": {"pattern": "^[0-9*#]$"},
                    "additionalProperties": {"type": "string", "pattern": _NODE_ID.pattern}},
        "cases": {"type": "object",
                  "additionalProperties": {"type": "string", "pattern": _NODE_ID.pattern}},
        "values": {"type": "object", "propertyNames": {"pattern": _VAR.pattern},
                   "additionalProperties": {"type": ["string", "integer"]}},
    }
    out = dict(kinds[spec.kind])
    if spec.lo is not None:
        out["minimum"] = spec.lo
    if spec.hi is not None:
        out["maximum"] = spec.hi
    if spec.default is not None:
        out["default"] = spec.default
    if spec.doc:
        out["description"] = spec.doc
    return out


def json_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for kind, (doc, specs) in NODE_SPECS.items():
        props: dict[str, Any] = {"type": {"const": kind}}
        props.update({k: _schema_of(s) for k, s in specs.items()})
        defs[kind] = {"type": "object", "description": doc, "additionalProperties": False,
                      "required": ["type", *[k for k, s in specs.items() if s.required]],
                      "properties": props}
    defs["node"] = {"oneOf": [{"$ref": f"#/$defs/{k}"} for k in NODE_SPECS]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "madoguchi IVR call flow",
        "description": "One file per entry point in config/flows/. Generated by "
                       "`madoguchi flows schema`; do not edit.",
        "type": "object", "additionalProperties": False, "required": ["start", "nodes"],
        "properties": {
            "start": {"type": "string", "pattern": _NODE_ID.pattern,
                      "description": TOP_FIELDS["start"]},
            "description": {"type": "string", "description": TOP_FIELDS["description"]},
            "nodes": {"type": "object", "description": TOP_FIELDS["nodes"],
                      "propertyNames": {"pattern": _NODE_ID.pattern},
                      "additionalProperties": {"$ref": "#/$defs/node"}},
        },
        "$defs": defs,
    }
