"""The post-call survey: what a caller hears after the operator hangs up when the call is
marked for it (a queue node's `survey: true`, or the operator's request over the API), and
the dialogue that asks it over FastAGI.

config/survey.yaml holds 1 to 3 questions, each said like a flow node's prompt (a prompt id,
an inline text per language or a recorded file), an intro played before the first question,
the prompt played before a question is asked again, a closing prompt and how long a question
waits for its key. The file is part of the flow set: validated with it (every problem with
file:line:column), rendered with it (TTS in both languages) and versioned with it.

Each question takes one key, 1 (poor) to 5 (very good). No key within the timeout leaves the
question unanswered; another key plays `invalid` and asks once more, and a second wrong key
leaves it unanswered too. A key pressed during the intro answers the first question. A
caller who hangs up keeps the answers already given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.yamlconf import ConfigError, Location, Node, load_yaml

from .flow import LoadContext, _NodeReader

ANSWER_KEYS = "12345"
ANY_KEY = "0123456789*#"  # a wrong key also interrupts, to be asked again
MAX_QUESTIONS = 3
DEFAULT_TIMEOUT_S = 8
_QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
SURVEY_FILE = "survey.yaml"
T = TypeVar("T")


@dataclass(frozen=True)
class Question:
    id: str  # stored with each answer
    say: str  # prompt key


@dataclass(frozen=True)
class SurveyConfig:
    """No questions: no survey (a queue node asking for one is refused)."""

    questions: tuple[Question, ...] = ()
    intro: str | None = None
    invalid: str | None = None
    thanks: str | None = None
    timeout: int = DEFAULT_TIMEOUT_S  # seconds a question waits for its key
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Answer:
    question: str
    position: int  # 1 for the first question asked
    value: int | None  # 1..5; None: no key in time, or wrong keys twice


@dataclass(frozen=True)
class SurveyResult:
    """One call's answers, as the IVR hands them to the application to store."""

    call_id: str
    service: str
    agent_id: str | None
    language: str
    offered_at: datetime
    answers: tuple[Answer, ...]


def load_survey(path: Path, ctx: LoadContext) -> SurveyConfig:
    """config/survey.yaml; a missing file means no survey. Every problem goes to
    ctx.problems, each with its position."""
    if not path.exists():
        return SurveyConfig()
    try:
        root = Node(load_yaml(path), Location(str(path), 1, 1), "the survey file")
        s = root.child("survey", required=True)
        root.done()
    except ConfigError as exc:
        ctx.problems.add(exc)
        return SurveyConfig()

    def read(get: Callable[[], T], default: T) -> T:
        try:
            return get()
        except ConfigError as exc:
            ctx.problems.add(exc)
            return default

    reader = _NodeReader("survey", "survey", s, ctx)
    intro = read(lambda: reader.prompt_ref("intro"), None)
    invalid = read(lambda: reader.prompt_ref("invalid"), None)
    thanks = read(lambda: reader.prompt_ref("thanks"), None)
    timeout = read(lambda: s.integer("timeout", DEFAULT_TIMEOUT_S, 2, 30), DEFAULT_TIMEOUT_S)
    none: list[tuple[Any, Location]] = []
    items = read(lambda: s.items("questions"), none)
    read(s.done, None)
    if not 1 <= len(items) <= MAX_QUESTIONS:
        ctx.problems.at(s.at("questions"), f"the survey needs 1 to {MAX_QUESTIONS} questions, "
                        f"got {len(items)}")
    questions: list[Question] = []
    for item, where in items[:MAX_QUESTIONS]:
        try:
            q = Node(item, where, "a survey question")
            qid = q.text("id")
            if not _QUESTION_ID.match(qid):
                raise ConfigError(q.at("id"), f"question id {qid!r} must be lower-case "
                                  "letters, digits, - or _ (at most 32)")
            if any(other.id == qid for other in questions):
                raise ConfigError(q.at("id"), f"question id {qid!r} is used twice")
            say = _NodeReader("survey", qid, q, ctx).say(True) or ""
            q.done()
            questions.append(Question(qid, say))
        except ConfigError as exc:
            ctx.problems.add(exc)
    return SurveyConfig(tuple(questions), intro, invalid, thanks, timeout, s.where)


def prompt_keys(config: SurveyConfig) -> list[str]:
    """Every prompt the survey may play (rendered with the flow set)."""
    return [k for k in (config.intro, *(q.say for q in config.questions), config.invalid,
                        config.thanks) if k]


class SurveySession(Protocol):
    """What the dialogue needs of a FastAGI session."""

    async def stream_file(self, name: str, escape_digits: str = "") -> str: ...

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str: ...


Files = Callable[[str], list[str]]  # prompt key -> files to play, in the caller's language


async def ask(session: SurveySession, config: SurveyConfig, files: Files,
              answers: list[Answer]) -> None:
    """Ask every question; each answer is appended as soon as it is known, so a hang-up
    (an AgiError from the session) leaves the answers already given in `answers`."""
    for position, question in enumerate(config.questions, 1):
        lead = [config.intro] if position == 1 and config.intro else []
        value: int | None = None
        for attempt in range(2):
            keys = [*lead, question.say] if attempt == 0 else [
                *([config.invalid] if config.invalid else []), question.say]
            # GET DATA plays one file (it does not split on '&' as Playback does): the lead
            # plays first, any key interrupting it is the answer, then the question waits
            played = [f for k in keys for f in files(k)] or ["silence/1"]
            digits = ""
            for lead_file in played[:-1]:
                digits = await session.stream_file(lead_file, ANY_KEY)
                if digits:
                    break
            if not digits:
                digits = await session.get_data(played[-1], config.timeout * 1000, 1)
            if digits and digits in ANSWER_KEYS:
                value = int(digits)
                break
            if not digits:
                break  # no key in time: unanswered, on to the next question
        answers.append(Answer(question.id, position, value))
    if config.thanks:
        for f in files(config.thanks):
            await session.stream_file(f)
