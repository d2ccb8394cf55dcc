"""The post-call survey in the IVR: the queue node's `survey` flag and config/survey.yaml
validated with the flow set (file:line:column), the channel variable the flow sets, and the
dialogue over a stand-in AGI session (keys 1-5, a timeout, a wrong key asked again once, a
hang-up halfway), its answers handed on and the talk time ending when the operator left."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from ami_bridge.agi_errors import AgiHangup
from ami_bridge.dialplan import AgiScript, Var
from core.calls import Call, CallTracker
from core.settings import load_settings
from ivr.agi_runner import IvrRunner
from ivr.flowset import Sources, check
from ivr.survey import SurveyResult
from madoguchi.cli import main
from recordings.service import call_row
from tests.ivr_doubles import NOON, ROOT, Clock, FakeSession, service

CITY_QUEUE = """  to-queue:
    type: queue
    queue: city
    topic: general
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    dest = tmp_path / "config"
    shutil.copytree(ROOT / "config", dest)
    return dest


def _errors(config: Path) -> list[str]:
    settings = load_settings(config, config.parent / "state")
    return [str(e) for e in check(Sources.from_settings(settings))]


def _mark_city_flow(config: Path, value: str = "true") -> Path:
    city = config / "flows" / "city.yaml"
    text = city.read_text(encoding="utf-8")
    assert CITY_QUEUE in text
    city.write_text(text.replace(CITY_QUEUE, CITY_QUEUE + f"    survey: {value}\n"),
                    encoding="utf-8")
    return city


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if needle in line)


# ---- validation ----------------------------------------------------------------------------

def test_the_shipped_survey_is_valid_and_a_marked_flow_too(config: Path) -> None:
    _mark_city_flow(config)
    assert _errors(config) == []


def test_a_survey_flag_that_is_not_a_boolean_is_refused_with_its_line(config: Path) -> None:
    city = _mark_city_flow(config, '"yes"')
    line = _line_of(city, "survey:")
    assert any(e.startswith(f"{city}:{line}:") and "'survey' must be true or false" in e
               for e in _errors(config)), _errors(config)


def test_a_marked_flow_without_survey_questions_is_refused(config: Path) -> None:
    city = _mark_city_flow(config)
    (config / "survey.yaml").unlink()
    errors = _errors(config)
    line = _line_of(city, "to-queue:") + 1  # the node's mapping starts on the next line
    assert any(e.startswith(f"{city}:{line}:") and "asks for the post-call survey, but "
               "survey.yaml has no questions" in e for e in errors), errors


def test_every_problem_of_the_survey_file_is_reported_with_its_position(config: Path) -> None:
    path = config / "survey.yaml"
    path.write_text(textwrap.dedent("""\
        survey:
          intro: no-such-prompt
          questions:
            - id: Overall
              prompt: survey-overall
            - id: clarity
              text: {ja: "分かりやすかったですか。"}
            - id: speed
              prompt: survey-overall
              colour: red
            - id: extra
              prompt: survey-clarity
          thanks: survey-thanks
          timeout: 99
          tone: polite
        """), encoding="utf-8")
    errors = _errors(config)
    p = str(path)
    # all at once, each where it is (a value's position, as in the flows)
    assert errors == [
        f"{p}:2:10: unknown prompt 'no-such-prompt' (not in prompts.yaml)",
        f"{p}:4:5: the survey needs 1 to 3 questions, got 4",
        f"{p}:4:11: question id 'Overall' must be lower-case letters, digits, - or _ "
        "(at most 32)",
        f"{p}:7:13: prompt 'survey/clarity' is missing in 'en'",
        f"{p}:10:15: unknown field 'colour'",
        f"{p}:14:12: 'timeout' must be between 2 and 30, got 99",
        f"{p}:15:9: unknown field 'tone'",
    ]


def test_a_survey_file_with_one_inline_question_in_both_languages_is_fine(
        config: Path) -> None:
    (config / "survey.yaml").write_text(textwrap.dedent("""\
        survey:
          questions:
            - id: overall
              text: {ja: "満足されましたか。", en: "Were you satisfied?"}
        """), encoding="utf-8")
    _mark_city_flow(config)
    assert _errors(config) == []


# ---- the flow marks the call ----------------------------------------------------------------

async def _queue_one(tmp_path: Path, mark: bool) -> tuple[FakeSession, Call]:
    config = tmp_path / "config"
    if not config.exists():
        shutil.copytree(ROOT / "config", config)
    if mark:
        _mark_city_flow(config)
    ivr, settings = service(tmp_path, Clock(NOON))
    queued: list[Call] = []

    async def enqueue(call: Call) -> None:
        queued.append(call)

    runner = IvrRunner(settings, ivr, CallTracker(), "/rec", lambda c: None, enqueue,
                       Clock(NOON))
    gate = asyncio.Event()
    gate.set()
    session = FakeSession("city", 1, gate, keys="2")
    await runner.handle(session)
    return session, queued[0]


async def test_a_marked_queue_node_sets_the_survey_variable(tmp_path: Path) -> None:
    session, _ = await _queue_one(tmp_path, mark=True)
    assert session.vars[Var.SURVEY] == "1" and session.vars[Var.IVR_DONE] == "1"


def test_flows_simulate_shows_the_survey(config: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _mark_city_flow(config)
    assert main(["--config", str(config), "--state", str(config.parent / "state"), "flows",
                 "simulate", "city", "--at", "2026-12-02T10:00", "--dtmf", "2"]) == 0
    assert "end: queue city (topic general, priority 0, post-call survey)" \
        in capsys.readouterr().out


async def test_an_unmarked_queue_node_leaves_it_unset(tmp_path: Path) -> None:
    session, _ = await _queue_one(tmp_path, mark=False)
    assert Var.SURVEY not in session.vars and session.vars[Var.DEST] == "queue"


# ---- the dialogue ---------------------------------------------------------------------------

class SurveySession(FakeSession):
    """mado-after's AGI for one call: each GET DATA is answered by the next scripted key
    ("" a timeout; None: the caller hangs up)."""

    def __init__(self, call: Call, keys: list[str | None]) -> None:
        super().__init__(AgiScript.SURVEY, 1, asyncio.Event())
        self.args = [call.id]
        self.env = {"agi_uniqueid": call.uniqueid, "agi_channel": call.channel}
        self.script_keys = list(keys)
        self.prompts: list[str] = []

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        assert max_digits == 1 and timeout_ms == 8000
        self.prompts.append(file)
        key = self.script_keys.pop(0)
        if key is None:
            raise AgiHangup("caller hung up")
        return key


class Survey:
    """An IVR runner with one answered call whose operator has just hung up."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock(NOON)
        self.ivr, self.settings = service(tmp_path, self.clock)
        self.tracker = CallTracker(self.clock)
        self.results: list[SurveyResult] = []

        async def stored(result: SurveyResult) -> None:
            self.results.append(result)

        async def enqueue(call: Call) -> None:
            return None

        self.runner = IvrRunner(self.settings, self.ivr, self.tracker, "/rec", lambda c: None,
                                enqueue, self.clock, on_survey=stored)
        self.call = self.tracker.offer("1700000000.1", "PJSIP/trunk-00000001", "city", "1000",
                                       "0312345678")
        self.call.language = "en"
        self.call.answer("7001", NOON + timedelta(seconds=20))
        self.clock.now = NOON + timedelta(seconds=80)  # the operator hangs up now

    def files(self, key: str, language: str = "en") -> str:
        audio = self.ivr.current.prompts[key].audio(language)
        path = self.ivr.sound_path(audio)
        return path or ""

    async def run(self, keys: list[str | None]) -> SurveySession:
        session = SurveySession(self.call, keys)
        await self.runner.handle(session)
        return session


def _values(result: SurveyResult) -> list[tuple[str, int, int | None]]:
    return [(a.question, a.position, a.value) for a in result.answers]


async def test_two_questions_answered_4_and_5(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    session = await s.run(["4", "5"])
    [result] = s.results
    assert _values(result) == [("overall", 1, 4), ("clarity", 2, 5)]
    assert (result.call_id, result.agent_id, result.service, result.language) == (
        s.call.id, "7001", "city", "en")
    # the intro, then the question waiting for its key; then the closing words
    intro, first, second = (s.files(k) for k in ("survey-intro", "survey-overall",
                                                  "survey-clarity"))
    assert intro and first and second  # rendered by the TTS engines
    assert session.prompts == [first, second]
    assert session.played == [intro, s.files("survey-thanks")]


async def test_the_caller_s_language_picks_the_prompts(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    s.call.language = "ja"
    session = await s.run(["3", "3"])
    assert _values(s.results[0]) == [("overall", 1, 3), ("clarity", 2, 3)]
    assert session.prompts[1] == s.files("survey-clarity", "ja")
    assert s.files("survey-clarity", "ja") != s.files("survey-clarity", "en")


async def test_no_key_in_time_leaves_the_question_unanswered(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    session = await s.run(["", "2"])
    assert _values(s.results[0]) == [("overall", 1, None), ("clarity", 2, 2)]
    assert len(session.prompts) == 2  # no repeat after a timeout


async def test_a_wrong_key_plays_invalid_and_asks_once_more(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    session = await s.run(["7", "5", "0", "#"])
    assert _values(s.results[0]) == [("overall", 1, 5), ("clarity", 2, None)]
    invalid, first = s.files("survey-invalid"), s.files("survey-overall")
    assert len(session.prompts) == 4  # each question asked twice
    assert session.prompts[1] == first and invalid in session.played


async def test_a_wrong_key_twice_leaves_it_unanswered(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    await s.run(["9", "*", "1"])
    assert _values(s.results[0]) == [("overall", 1, None), ("clarity", 2, 1)]


async def test_a_hang_up_keeps_the_answers_already_given(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    session = await s.run(["4", None])
    assert _values(s.results[0]) == [("overall", 1, 4)]
    assert session.played == [s.files("survey-intro")]  # no closing words for one who left


async def test_a_hang_up_before_any_answer_stores_nothing(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    await s.run([None])
    assert s.results == []


async def test_the_talk_time_ends_when_the_operator_left(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    await s.run(["5", "5"])
    assert s.call.operator_left_at == NOON + timedelta(seconds=80)
    s.clock.now = NOON + timedelta(seconds=110)  # the survey took 30 s
    ended = s.tracker.end(s.call.uniqueid)
    assert ended is not None
    row = call_row(ended)
    assert row.talk_s == 60.0 and row.ended_at == NOON + timedelta(seconds=110)


async def test_a_channel_that_is_not_an_answered_call_hears_nothing(tmp_path: Path) -> None:
    s = Survey(tmp_path)
    other = SurveySession(s.call, ["5", "5"])
    other.args = ["0" * 32]  # the dialplan's call id is not this channel's call
    await s.runner.handle(other)
    unanswered = s.tracker.offer("1700000000.2", "PJSIP/trunk-00000002", "city", "1000", "")
    await s.runner.handle(SurveySession(unanswered, ["5", "5"]))
    assert s.results == [] and other.prompts == []
    assert s.call.operator_left_at is None


async def test_without_a_place_to_store_the_answers_the_survey_still_runs(
        tmp_path: Path) -> None:
    s = Survey(tmp_path)
    s.runner.on_survey = None
    session = await s.run(["1", "2"])
    assert len(session.prompts) == 2


async def test_the_questions_are_those_in_force_when_the_survey_starts(
        tmp_path: Path) -> None:
    s = Survey(tmp_path)
    survey = s.settings.config_dir / "survey.yaml"
    survey.write_text(survey.read_text(encoding="utf-8").replace(
        "    - id: clarity\n      prompt: survey-clarity\n", ""), encoding="utf-8")
    result = await s.ivr.reload()
    assert result.ok, result.errors
    await s.run(["4"])
    assert _values(s.results[0]) == [("overall", 1, 4)]
