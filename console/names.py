"""What a person reads instead of an id, in the page's language: services, queues, topics,
flow nodes, languages, operators, interaction classes and kinds, call outcomes. The pages get
it as one JSON map (console.js shows names with it); the server's own texts (the audit log's
descriptions) use the same lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings

from .i18n import CALL_OUTCOME_LABELS, CLASS_LABELS, KIND_LABELS, LANGS, texts
from .labels import LabelFile, Labels
from .ports import ConsolePorts


@dataclass(frozen=True)
class Names:
    """The names in one language."""

    lang: str
    services: dict[str, str]
    queues: dict[str, str]
    topics: dict[str, str]
    nodes: dict[str, str]
    languages: dict[str, str]
    agents: dict[str, str]  # extension -> operator's name
    classes: dict[str, str]
    kinds: dict[str, str]
    outcomes: dict[str, str]

    def service(self, service_id: str) -> str:
        return self.services.get(service_id, service_id)

    def agent(self, agent_id: str) -> str:
        """An operator as people know them: name and extension."""
        name = self.agents.get(agent_id)
        return f"{name} ({agent_id})" if name and name != agent_id else agent_id

    def as_json(self) -> dict[str, Any]:
        return {"services": self.services, "queues": self.queues, "topics": self.topics,
                "nodes": self.nodes, "languages": self.languages, "agents": self.agents,
                "classes": self.classes, "kinds": self.kinds, "outcomes": self.outcomes}


def build_names(lang: str, settings: Settings, labels: Labels, topics: list[str],
                nodes: list[str]) -> Names:
    """`topics` and `nodes`: the ids the flows in service use; an id without a label is shown
    as it is (better than nothing)."""
    i = LANGS.index(lang)
    t = texts(lang)

    def named(section: str, key: str, default: str) -> str:
        return labels.get(section, key, lang) or default

    services = {s.id: named("services", s.id, s.name) for s in settings.services}
    queues = {}
    for q in settings.queues:
        # a queue without a label is known by the services it serves
        serving = [services[s.id] for s in settings.services if s.queue == q.id]
        queues[q.id] = named("queues", q.id, "・".join(serving) or q.id)
    return Names(
        lang=lang, services=services, queues=queues,
        topics={k: named("topics", k, k) for k in sorted({*topics, *labels.keys("topics")})},
        nodes={k: named("nodes", k, k) for k in sorted({*nodes, *labels.keys("nodes")})},
        languages={code: t[f"lang_{code}"] for code in LANGS},
        agents={a.id: a.name for a in settings.agents},
        classes={str(k): v[i] for k, v in CLASS_LABELS.items()},
        kinds={str(k): v[i] for k, v in KIND_LABELS.items()},
        outcomes={str(k): v[i] for k, v in CALL_OUTCOME_LABELS.items()})


class NameBook:
    """The console's names: settings (fixed while the engine runs), labels.yaml (read again
    when it changes) and the flows in service (replaced by a reload)."""

    def __init__(self, ports: ConsolePorts) -> None:
        self.ports = ports
        settings = ports.settings
        self.labels = LabelFile(settings.config_dir / "labels.yaml",
                                [s.id for s in settings.services],
                                [q.id for q in settings.queues])

    def names(self, lang: str) -> Names:
        center = self.ports.center
        return build_names(lang, self.ports.settings, self.labels.current(), center.topics(),
                           center.flow_nodes())
