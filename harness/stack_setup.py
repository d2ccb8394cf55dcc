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
