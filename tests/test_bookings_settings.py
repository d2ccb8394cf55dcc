"""The `bookings:` section of madoguchi.yaml: the shipped values load, a bad one stops the
check with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bookings.settings import booking_settings
from core.settings import load_settings
from core.yamlconf import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_section_loads(tmp_path: Path) -> None:
    s = booking_settings(load_settings(ROOT / "config", tmp_path))
    assert (s.retention_days, s.public_writes_per_minute) == (90, 10)
    assert s.reports(tmp_path) == tmp_path / "deletion-reports"


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("  retention_days: 90", "  retention_days: 0", "between 1 and 36500"),
    ("  public_writes_per_minute: 10", "  public_writes_per_minute: many", "integer"),
    ("  retention_days: 90", "  retention_days: 90\n  keep_forever: true",
     "unknown field 'keep_forever'"),
])
def test_a_bad_value_names_its_line(tmp_path: Path, old: str, new: str, reason: str) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    main = cfg / "madoguchi.yaml"
    text = main.read_text(encoding="utf-8")
    assert old in text
    main.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        booking_settings(load_settings(cfg, tmp_path / "state"))
    assert str(err.value).startswith(f"{main}:") and reason in str(err.value), str(err.value)
