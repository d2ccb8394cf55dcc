"""A flow set: every flow, prompt, schedule and board setting, validated together, versioned.

The engine serves exactly one flow set at a time and replaces it only by a fully valid one.
The version is a hash of the files' contents, so the same files always give the same version
and every call record names the exact configuration the call ran on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from core.settings import Settings, TransferSettings
from core.yamlconf import ConfigError, Location

from .errors import FlowSetInvalid, Problems
from .events import Board, BoardConfig, load_board_config
from .flow import Flow, LoadContext, ToQueue, load_flow
from .prompts import LANGUAGES, Audio, Prompt, PromptSource, read_prompts, render_prompt
from .schedule import Override, Schedules, ScheduleState, load_schedules
from .survey import SURVEY_FILE, SurveyConfig, load_survey
from .tts import Tts


@dataclass(frozen=True)
class FlowSet:
    version: str
    flows: dict[str, Flow] = field(hash=False)
    prompts: dict[str, Prompt] = field(hash=False)
    schedules: Schedules = field(hash=False)
    board: BoardConfig = field(hash=False)
    entry: dict[str, str] = field(hash=False)  # service id -> flow name
    loaded_at: datetime | None = None
    survey: SurveyConfig = field(default_factory=SurveyConfig, hash=False)


@dataclass(frozen=True)
class Sources:
    """Where a flow set is read from: config/{prompts,schedules,events}.yaml and a flows dir."""

    config_dir: Path
    flow_dir: Path
    queues: frozenset[str]
    services: dict[str, str]  # service id -> flow name
    transfers: TransferSettings | None

    @classmethod
    def from_settings(cls, settings: Settings, flow_dir: Path | None = None) -> Sources:
        return cls(settings.config_dir, flow_dir or settings.config_dir / "flows",
                   frozenset(q.id for q in settings.queues),
                   {s.id: s.flow for s in settings.services}, settings.transfers)


def read_flow_set(src: Sources, tts: Tts | None, sounds_dir: Path, dry: bool = False,
                  now: datetime | None = None) -> FlowSet:
    """Validate and render a flow set; raises FlowSetInvalid listing every problem."""
    problems = Problems()
    prompts = read_prompts(src.config_dir / "prompts.yaml", problems)
    ctx = LoadContext(set(src.queues), set(src.services), src.transfers, src.config_dir,
                      dict(prompts), problems)
    flows: dict[str, Flow] = {}
    files = sorted(src.flow_dir.glob("*.yaml")) if src.flow_dir.is_dir() else []
    if not files:
        problems.at(Location(str(src.flow_dir), 1, 1), "no flows (*.yaml) in this folder")
    for path in files:
        flow = load_flow(path, ctx)
        if flow is not None:
            flows[flow.name] = flow
    for service, flow_name in sorted(src.services.items()):
        if flow_name not in flows and not any(p.stem == flow_name for p in files):
            problems.at(Location(str(src.flow_dir), 1, 1),
                        f"service {service!r} uses flow {flow_name!r}, which does not exist")
    schedules = load_schedules(src.config_dir / "schedules.yaml", set(src.services), problems)
    if schedules is not None:
        for service in sorted(ctx.schedule_services - set(schedules.hours)):
            problems.at(Location(str(src.config_dir / "schedules.yaml"), 1, 1),
                        f"a schedule node uses service {service!r}, which has no hours")
    board = load_board_config(src.config_dir / "events.yaml", problems)
    survey = load_survey(src.config_dir / SURVEY_FILE, ctx)
    if not survey.questions:
        for flow in flows.values():
            for node in flow.nodes.values():
                if isinstance(node, ToQueue) and node.survey:
                    problems.at(flow.where[node.id], f"node {node.id!r} asks for the post-call "
                                f"survey, but {SURVEY_FILE} has no questions")
    for key, where in ctx.refs:
        source = ctx.prompts.get(key)
        if source is None:
            problems.at(where, f"unknown prompt {key!r} (not in prompts.yaml)")
            continue
        for lang in LANGUAGES:
            if lang not in source.texts and lang not in source.files:
                problems.at(where, f"prompt {key!r} is missing in {lang!r}")
    if problems or schedules is None or board is None:
        raise FlowSetInvalid(problems.sorted())
    used = {key for key, _ in ctx.refs} | _board_prompts(ctx.prompts)
    catalog = {key: render_prompt(key, ctx.prompts[key], tts, sounds_dir, dry)
               for key in sorted(used) if key in ctx.prompts}
    return FlowSet(_version(src, files, ctx.prompts), flows, catalog, schedules, board,
                   dict(src.services), now, survey)


def _board_prompts(prompts: dict[str, PromptSource]) -> set[str]:
    # the hold loop's board file starts with this prompt when it exists
    return {k for k in ("events-intro", "events-none") if k in prompts}


def _version(src: Sources, files: list[Path], prompts: dict[str, PromptSource]) -> str:
    h = hashlib.sha256()
    names = [src.config_dir / n for n in ("prompts.yaml", "schedules.yaml", "events.yaml",
                                          SURVEY_FILE)]
    for path in [*names, *files]:
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes() if path.exists() else b"")
    for source in prompts.values():
        for lang, f in sorted(source.files.items()):
            h.update(lang.encode() + f.read_bytes())
    return h.hexdigest()[:12]


def check(src: Sources) -> list[ConfigError]:
    """Every problem in a flow set, without rendering anything (`madoguchi flows check`)."""
    try:
        read_flow_set(src, None, Path("/nonexistent"), dry=True)
    except FlowSetInvalid as exc:
        return exc.errors
    return []


@dataclass(frozen=True)
class CallWorld:
    """The outside world as one call sees it: frozen when the call starts."""

    flowset: FlowSet
    overrides: dict[str, Override]
    board_snapshot: Board

    @property
    def tz(self) -> ZoneInfo:
        return self.flowset.schedules.tz

    def prompt(self, key: str, language: str) -> Audio:
        p = self.flowset.prompts.get(key)
        if p is None:
            return Audio(key, language, "", None)
        return p.audio(language)

    def schedule_state(self, service: str, at: datetime) -> ScheduleState:
        return self.flowset.schedules.state(service, at, self.overrides.get(service))

    def override_message(self, service: str, language: str) -> Audio | None:
        ov = self.overrides.get(service)
        if ov is None or not ov.message:
            return None
        prompt = Prompt(f"override:{service}", ov.message, ov.message_sounds)
        return prompt.audio(language)

    def board(self, at: datetime, language: str) -> tuple[Audio, ...]:
        return self.board_snapshot.announcements(at, language)
