"""Flow validation: every error with file:line:column, all of them at once; the JSON Schema;
`madoguchi flows check` and `flows simulate`."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from core.settings import load_settings
from harness.stack_setup import seed_demo_board
from ivr.flow import json_schema
from ivr.flowset import Sources, check
from madoguchi.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    dest = tmp_path / "config"
    shutil.copytree(ROOT / "config", dest)
    return dest


def errors_for(config: Path, name: str, text: str) -> tuple[Path, list[str]]:
    path = config / "flows" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    settings = load_settings(config, config.parent / "state")
    return path, [str(e) for e in check(Sources.from_settings(settings))]


def test_the_shipped_config_is_valid(config: Path) -> None:
    settings = load_settings(config, config.parent / "state")
    assert check(Sources.from_settings(settings)) == []


def test_every_problem_is_reported_with_file_line_column(config: Path) -> None:
    (config / "sounds").mkdir()
    (config / "sounds" / "ok.wav").write_bytes(b"RIFF")
    path, errors = errors_for(config, "bad", """\
        start: a
        nodes:
          a:
            type: play
            prompt: greeting-city
            next: nowhere
          b:
            type: dance
          c:
            type: menu
            prompt: no-such-prompt
            choices: {"1": d, "12": d}
            on_timeout: d
            on_invalid: d
          d:
            type: queue
            queue: city
            colour: red
          e:
            type: play
            text: {ja: "日本語だけ"}
            next: f
          f:
            type: play
            audio: {ja: sounds/ok.wav, en: sounds/missing.wav}
            next: e
          g:
            type: transfer
            to: "0312345678"
          h:
            type: queue
            queue: nowhere
        """)
    p = str(path)
    assert f"{p}:6:11: node 'a' goes to missing node 'nowhere'" in errors
    assert any(e.startswith(f"{p}:8:11: unknown node type 'dance'") for e in errors)
    assert f"{p}:12:29: choice '12' is not one DTMF key (0-9, *, #)" in errors
    assert any(e.startswith(f"{p}:18:13: unknown field 'colour' for a queue node") for e in errors)
    assert f"{p}:21:11: prompt 'bad/e' is missing in 'en'" in errors
    assert f"{p}:25:36: audio file 'sounds/missing.wav' does not exist" in errors
    assert any(e.startswith(f"{p}:29:9: transfer refused:") for e in errors)
    assert f"{p}:32:12: unknown queue 'nowhere'" in errors
    assert errors == sorted(errors, key=lambda e: (e.split(":")[0], int(e.split(":")[1])))


def test_unreachable_nodes_and_loops_without_a_way_out(config: Path) -> None:
    path, errors = errors_for(config, "loops", """\
        start: menu
        nodes:
          menu:
            type: menu
            prompt: choose-language
            choices: {"1": spin-a, "2": ask}
            on_timeout: done
            on_invalid: done
          spin-a:
            type: goto
            next: spin-b
          spin-b:
            type: play
            prompt: goodbye
            next: spin-a
          ask:
            type: menu
            prompt: choose-language
            choices: {"1": ask}
            on_timeout: ask
            on_invalid: ask
          done:
            type: hangup
          orphan:
            type: hangup
        """)
    p = str(path)
    assert f"{p}:25:5: node 'orphan' is unreachable from 'menu'" in errors
    assert f"{p}:10:5: node 'spin-a' is in a loop with no way out (no queue, transfer or " \
           "hangup can be reached from it)" in errors
    assert f"{p}:10:5: loop with no way out: spin-a -> spin-b -> spin-a never waits for a " \
           "key" in errors
    assert f"{p}:17:5: node 'ask' is in a loop with no way out (no queue, transfer or " \
           "hangup can be reached from it)" in errors


def test_unknown_variable_and_language(config: Path) -> None:
    path, errors = errors_for(config, "vars", """\
        start: s
        nodes:
          s:
            type: set
            values: {topic: "{nonsense}", language: fr}
            next: q
          q:
            type: queue
            queue: city
        """)
    assert errors == [f"{path}:5:45: unknown language 'fr'"]
    path, errors = errors_for(config, "vars", """\
        start: s
        nodes:
          s:
            type: set
            values: {topic: "{nonsense}"}
            next: q
          q:
            type: queue
            queue: city
        """)
    assert errors == [f"{path}:4:5: node 's' uses unknown variable 'nonsense' (known: caller, "
                      "date, did, language, schedule, service, time, topic, weekday)"]


def test_schedules_and_events_errors_name_their_lines(config: Path) -> None:
    sched = config / "schedules.yaml"
    sched.write_text(sched.read_text(encoding="utf-8").replace(
        'weekdays: "08:30-17:15"', 'weekdays: "17:15-08:30"'), encoding="utf-8")
    events = config / "events.yaml"
    data = events.read_text(encoding="utf-8").replace("{new_venue}", "{new_place}")
    events.write_text(data, encoding="utf-8")
    settings = load_settings(config, config.parent / "state")
    errors = [str(e) for e in check(Sources.from_settings(settings))]
    line = sched.read_text(encoding="utf-8").splitlines().index(
        '    weekdays: "17:15-08:30"') + 1
    assert f"{sched}:{line}:15: 'weekdays': '17:15-08:30' ends before it starts" in errors
    assert any(str(events) in e and "unknown template field(s) new_place" in e for e in errors)


def test_committed_json_schema_is_generated_and_validates_the_flows() -> None:
    committed = json.loads((ROOT / "config" / "flows" / "flow.schema.json").read_text(
        encoding="utf-8"))
    assert committed == json_schema(), "run: madoguchi flows schema > config/flows/flow.schema.json"
    jsonschema.Draft202012Validator.check_schema(committed)
    for flow in sorted((ROOT / "config" / "flows").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(flow.read_text(encoding="utf-8")), committed)
    bad = {"start": "a", "nodes": {"a": {"type": "play", "prompt": "x", "nxt": "a"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, committed)


def test_flows_check_cli_prints_every_error_and_fails(config: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    staging = config.parent / "staging" / "flows"
    shutil.copytree(config / "flows", staging)
    city = staging / "city.yaml"
    city.write_text(city.read_text(encoding="utf-8").replace("prompt: goodbye",
                                                             "prompt: good-bye"),
                    encoding="utf-8")
    args = ["--config", str(config), "--state", str(config.parent / "state")]
    assert main([*args, "flows", "check"]) == 0
    assert capsys.readouterr().out == "flows OK\n"
    assert main([*args, "flows", "check", str(staging)]) == 1
    out = capsys.readouterr().out.splitlines()
    line = city.read_text(encoding="utf-8").splitlines().index("    prompt: good-bye") + 1
    assert out == [f"{city}:{line}:13: unknown prompt 'good-bye' (not in prompts.yaml)"]


def test_flows_simulate_prints_path_and_prompts(config: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    seed_demo_board(config)
    args = ["--config", str(config), "--state", str(config.parent / "state")]
    assert main([*args, "flows", "simulate", "city", "--at", "2026-12-30T19:00",
                 "--dtmf", "2,1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["path"] == ["greeting", "choose-language", "english", "hours", "closed",
                              "after-hours-menu", "events", "goodbye"]
    board = result["steps"][4]
    assert board["node"] == "events" and board["language"] == "en"
    assert len(board["say"]) == 9  # the intro and the eight seeded events of that day
    assert board["say"][1].startswith("«The morning market, planned for December 30")
    assert result["end"] == "hang up (hangup)"
    assert main([*args, "flows", "simulate", "water", "--at", "2026-11-25T10:00",
                 "--dtmf", "1"]) == 0
    text = capsys.readouterr().out
    assert "path: greeting -> choose-language -> japanese -> hours -> to-queue" in text
    assert "end: queue city (topic water, priority 0)" in text
