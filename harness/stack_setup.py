"""Pieces shared by the end-to-end stack (tests/e2e/conftest.py) and the load benchmark
(bench/load.py): both run the real engine on a copy of config/."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def madoguchi_cmd(config: Path, state: Path, *args: str) -> list[str]:
    """argv of the `madoguchi` command for one instance, run by this Python."""
    return [sys.executable, "-m", "madoguchi.cli", "--config", str(config), "--state",
            str(state), *args]


def seed_demo_board(config: Path) -> None:
    """Seed the event board with the shipped demo events (config/examples/events-demo.yaml),
    as an operator trying the board would."""
    events = config / "events.yaml"
    demo = (config / "examples" / "events-demo.yaml").read_text(encoding="utf-8")
    text = events.read_text(encoding="utf-8")
    assert "\nevents: []\n" in text, "config/events.yaml no longer ships an empty board"
    events.write_text(text.replace("\nevents: []\n", demo[demo.index("\nevents:\n"):]),
                      encoding="utf-8")


def open_around_the_clock(config: Path) -> None:
    """Every service open all day, every day, no closures: what runs must not depend on
    when it runs (tests that need closed or holiday switch to it explicitly)."""
    path = config / "schedules.yaml"
    schedules = yaml.safe_load(path.read_text(encoding="utf-8"))
    for hours in schedules["services"].values():
        hours.update(dict.fromkeys(("weekdays", "saturday", "sunday", "holidays"),
                                   "00:00-24:00"))
    schedules["closures"] = []
    path.write_text(yaml.safe_dump(schedules, allow_unicode=True), encoding="utf-8")
