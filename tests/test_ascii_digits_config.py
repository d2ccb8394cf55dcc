"""Digits that reach dial strings, config values or int() are ASCII 0-9 only: '²', full-width
'１２' and other Unicode digits (which str.isdigit() accepts) are refused with file:line:column
in config, ignored in a dialled number, and never end in a traceback."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from console.auth import ConsoleConfig
from core.calls import Call, CallTracker
from core.settings import load_settings
from core.yamlconf import ConfigError
from ivr.agi_runner import IvrRunner
from kpi.errors import BadQuery
from kpi.report import write_report
from madoguchi.cli import main
from tests.ivr_doubles import NOON, Clock, FakeSession, service

ROOT = Path(__file__).resolve().parents[1]
UNICODE_DIGITS = ["８１", "8²", "٨١", "81\n"]  # full-width, superscript, Arabic-Indic, a break


def _config(tmp_path: Path) -> Path:
    dest = tmp_path / "config"
    shutil.copytree(ROOT / "config", dest)
    return dest


def _refused_at(tmp_path: Path, file: str, old: str, new: str, marker: str,
                at: str | None = None) -> ConfigError:
    """Replace `old` by `new` in a config file; the error must point at the first line
    holding `marker`, at the column of `at` (default: the marker) on that line."""
    cfg = _config(tmp_path)
    path = cfg / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, tmp_path / "state")
    loc = err.value.location
    lines = text.splitlines()
    line = next(i for i, ln in enumerate(lines, 1) if marker in ln)
    assert loc is not None and (loc.file, loc.line) == (str(path), line), str(err.value)
    assert loc.column == lines[line - 1].index(at or marker) + 1, str(err.value)
    assert str(err.value).startswith(f"{path}:{line}:{loc.column}: ")
    return err.value


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
def test_dial_in_prefix_takes_ascii_digits_only(tmp_path: Path, digits: str) -> None:
    value = '"' + digits.replace("\n", "\\n") + '"'
    err = _refused_at(tmp_path, "madoguchi.yaml", 'dial_in_prefix: "81"',
                      f"dial_in_prefix: {value}", value)
    assert "'dial_in_prefix' must be digits 0-9" in err.reason


@pytest.mark.parametrize("digits", ["０５７０", "057²", "٠٥٧٠", ""])
def test_external_prefixes_take_ascii_digits_only(tmp_path: Path, digits: str) -> None:
    err = _refused_at(tmp_path, "madoguchi.yaml", 'external_prefixes: ["0570"',
                      f'external_prefixes: ["{digits}"', f'["{digits}"')
    assert f"prefix {digits!r} must be digits 0-9" in err.reason


def test_ascii_prefixes_still_load(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    path = cfg / "madoguchi.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        'dial_in_prefix: "81"', 'dial_in_prefix: "0081"'), encoding="utf-8")
    transfers = load_settings(cfg, tmp_path / "state").transfers
    assert transfers.dial_in_prefix == "0081"
    assert transfers.external_prefixes == ("0570", "0120", "070", "080", "090")


@pytest.mark.parametrize(("file", "old", "new", "marker", "at"), [
    # a block scalar keeps its line break: it would end up inside the generated dialplan
    ("madoguchi.yaml", 'did: "1000"', "did: |\n      1000\n", "did: |", "|"),
    ("madoguchi.yaml", 'did: "1000"', 'did: "１０００"', "１０００", '"'),
    ("agents.yaml", '"7001"', '"7001\\n"', "7001", '"'),
])
def test_numbers_with_a_line_break_or_unicode_digits_are_refused(
        tmp_path: Path, file: str, old: str, new: str, marker: str, at: str) -> None:
    err = _refused_at(tmp_path, file, old, new, marker, at)
    assert "2-8 digits" in err.reason


@pytest.mark.parametrize("priority", ["²", "１", "٣", "10", "x"])
def test_a_set_priority_of_unicode_digits_is_a_flow_error_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], priority: str) -> None:
    cfg = _config(tmp_path)
    flow = cfg / "flows" / "city.yaml"
    text = flow.read_text(encoding="utf-8")
    old = "    queue: city\n    topic: general\n"
    assert old in text
    node = (f"    type: set\n    values: {{priority: \"{priority}\"}}\n    next: real-queue\n"
            f"  real-queue:\n    type: queue\n{old}")
    text = text.replace(f"    type: queue\n{old}", node, 1)
    flow.write_text(text, encoding="utf-8")
    assert main(["--config", str(cfg), "--state", str(tmp_path / "state"),
                 "flows", "check"]) == 1
    out = capsys.readouterr()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "priority:" in ln)
    column = text.splitlines()[line - 1].index('"') + 1
    assert f"{flow}:{line}:{column}: priority must be 0-9, got {priority!r}" in out.out
    assert "Traceback" not in out.out + out.err


@pytest.mark.parametrize(("dialled", "recorded"), [
    ("2000", "2000"),  # a number as dialled is kept
    ("１０００", "1000"), ("100²", "1000"), ("١٠٠٠", "1000"),  # the service's own instead
    ("1" * 17, "1000"), ("", "1000"), ("1000;x", "1000"),
])
async def test_the_dialled_number_is_recorded_only_in_ascii_digits(
        tmp_path: Path, dialled: str, recorded: str) -> None:
    ivr, settings = service(tmp_path, Clock(NOON))
    offered: list[Call] = []
    queued = asyncio.Event()

    async def enqueue(call: Call) -> None:
        queued.set()

    runner = IvrRunner(settings, ivr, CallTracker(), "/rec", offered.append, enqueue,
                       Clock(NOON))
    gate = asyncio.Event()
    gate.set()
    session = FakeSession("city", 1, gate)
    session.args = [dialled]
    await runner.handle(session)  # type: ignore[arg-type]
    assert queued.is_set() and session.vars["MADO_DEST"] == "queue"
    assert [c.did for c in offered] == [recorded]


@pytest.mark.parametrize("raw", ["１５", "1５", "nan", "inf", "1e3", "0", "-5", "1441", "",
                                 "15 minutes"])
def test_console_idle_minutes_from_the_environment_are_checked(
        monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("MADOGUCHI_CONSOLE_IDLE_MINUTES", raw)
    with pytest.raises(ConfigError, match="MADOGUCHI_CONSOLE_IDLE_MINUTES must be"):
        ConsoleConfig.from_env()


@pytest.mark.parametrize(("raw", "minutes"), [("30", 30.0), ("2.5", 2.5), (" 15 ", 15.0)])
def test_console_idle_minutes_in_ascii_are_taken(monkeypatch: pytest.MonkeyPatch, raw: str,
                                                 minutes: float) -> None:
    monkeypatch.setenv("MADOGUCHI_CONSOLE_IDLE_MINUTES", raw)
    assert ConsoleConfig.from_env().idle.total_seconds() == minutes * 60


def test_a_report_month_in_unicode_digits_is_refused(tmp_path: Path) -> None:
    untouched: Any = object()  # the month is refused before the service is asked anything
    with pytest.raises(BadQuery, match="month must be YYYY-MM"):
        asyncio.run(write_report(untouched, "２０２６-０１", tmp_path))
    assert list(tmp_path.iterdir()) == []
