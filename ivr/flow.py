"""Call-flow model: YAML flows validated into frozen nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from madoguchi.yamlconf import ConfigError, Location, Node, load_yaml

LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class Play:
    id: str
    prompt: str
    next: str


@dataclass(frozen=True)
class Menu:
    id: str
    prompt: str
    timeout: int
    retries: int
    choices: dict[str, str] = field(hash=False)
    on_timeout: str
    on_invalid: str


@dataclass(frozen=True)
class SetLanguage:
    id: str
    language: str
    next: str


@dataclass(frozen=True)
class ToQueue:
    id: str
    queue: str


@dataclass(frozen=True)
class Hangup:
    id: str


FlowNode = Play | Menu | SetLanguage | ToQueue | Hangup


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    nodes: dict[str, FlowNode] = field(hash=False)


def _targets(node: FlowNode) -> list[str]:
    if isinstance(node, Play | SetLanguage):
        return [node.next]
    if isinstance(node, Menu):
        return [*node.choices.values(), node.on_timeout, node.on_invalid]
    return []


def load_flow(path: Path, queues: set[str]) -> Flow:
    root = Node(load_yaml(path), Location(str(path), 1, 1), "flow")
    start = root.text("start")
    raw_nodes = root.child("nodes", required=True)
    nodes: dict[str, FlowNode] = {}
    where: dict[str, Location] = {}
    for node_id in raw_nodes.data:
        n = raw_nodes.child(node_id)
        kind = n.text("type")
        parsed: FlowNode
        if kind == "play":
            parsed = Play(node_id, n.text("prompt"), n.text("next"))
        elif kind == "menu":
            choices_node = n.child("choices", required=True)
            choices = {}
            for digit in choices_node.data:
                if digit not in "0123456789*#" or len(digit) != 1:
                    raise ConfigError(choices_node.at(digit),
                                      f"choice {digit!r} is not one DTMF key")
                choices[digit] = choices_node.text(digit)
            choices_node.done()
            parsed = Menu(node_id, n.text("prompt"), n.integer("timeout", 5, 1, 30),
                          n.integer("retries", 2, 0, 5), choices, n.text("on_timeout"),
                          n.text("on_invalid"))
        elif kind == "language":
            lang = n.text("language")
            if lang not in LANGUAGES:
                raise ConfigError(n.at("language"), f"unknown language {lang!r}")
            parsed = SetLanguage(node_id, lang, n.text("next"))
        elif kind == "queue":
            queue = n.text("queue")
            if queue not in queues:
                raise ConfigError(n.at("queue"), f"unknown queue {queue!r}")
            parsed = ToQueue(node_id, queue)
        elif kind == "hangup":
            parsed = Hangup(node_id)
        else:
            raise ConfigError(n.at("type"), f"unknown node type {kind!r}")
        n.done()
        nodes[node_id] = parsed
        where[node_id] = n.where
    raw_nodes.done()
    root.done()
    if start not in nodes:
        raise ConfigError(root.at("start"), f"start node {start!r} does not exist")
    for node in nodes.values():
        for target in _targets(node):
            if target not in nodes:
                raise ConfigError(where[node.id],
                                  f"node {node.id!r} goes to missing node {target!r}")
    return Flow(path.stem, start, nodes)


def load_flows(flow_dir: Path, queues: set[str]) -> dict[str, Flow]:
    return {p.stem: load_flow(p, queues) for p in sorted(flow_dir.glob("*.yaml"))}
