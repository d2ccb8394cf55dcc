"""The banner `make run` prints: at 03:00 in Tokyo it says each service is closed, when it
opens, and how to open it for a test; the console and the first admin's command; and the
open override really opens a service outside its hours."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.secrets import load_or_create
from ivr.schedule import ScheduleState
from madoguchi.banner import command_name, ready_banner, service_lines
from tests.ivr_doubles import Clock, service

NIGHT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # Wednesday 2 December, 03:00 in Tokyo


async def test_at_three_in_the_night_the_banner_says_closed_and_how_to_open(
        tmp_path: Path) -> None:
    ivr, settings = service(tmp_path, Clock(NIGHT))
    secrets = load_or_create(settings.state_dir, [a.id for a in settings.agents])
    text = ready_banner(settings, secrets, ivr, has_users=False, show_passwords=False,
                        now=NIGHT, command=".venv/bin/madoguchi")
    assert "madoguchi is ready" in text
    assert "Console : http://127.0.0.1:8080/console/" in text
    assert ".venv/bin/madoguchi --config config --state" not in text  # the real folders
    assert f"--state {settings.state_dir} users add --role admin" in text
    lines = service_lines(settings, ivr, "http://127.0.0.1:8080", NIGHT)
    assert lines[0] == "Services now (2026年12月2日 3:00, Japan time):"
    city = next(line for line in lines if "(city," in line)
    water = next(line for line in lines if "(water," in line)
    assert city.endswith(": closed; opens 2026年12月2日 8:00"), city
    assert water.endswith(": closed; opens 2026年12月2日 8:30"), water
    assert any('"mode": "open", "minutes": 60' in line and
               "/api/schedules/city/override" in line for line in lines)


async def test_the_open_override_opens_a_service_at_night(tmp_path: Path) -> None:
    ivr, _settings = service(tmp_path, Clock(NIGHT))
    assert ivr.status("city")["state"] == ScheduleState.CLOSED
    await ivr.set_override("city", "open", "test", 60, None)
    assert ivr.status("city")["state"] == ScheduleState.OPEN
    lines = service_lines(_settings, ivr, "http://h", NIGHT)
    assert any(line.endswith("(city, DID 1000): open") for line in lines)
    await ivr.set_override("city", "normal", "test", None, None)
    assert ivr.status("city")["state"] == ScheduleState.CLOSED


async def test_once_a_user_exists_it_says_log_in(tmp_path: Path) -> None:
    ivr, settings = service(tmp_path, Clock(NIGHT))
    secrets = load_or_create(settings.state_dir, [a.id for a in settings.agents])
    text = ready_banner(settings, secrets, ivr, has_users=True, show_passwords=False,
                        now=NIGHT)
    assert "users add" not in text and "Log in with your console account." in text


def test_command_name_is_what_the_user_typed() -> None:
    assert command_name(".venv/bin/madoguchi") == ".venv/bin/madoguchi"
    assert command_name("/usr/lib/python3/x/cli.py") == "madoguchi"
