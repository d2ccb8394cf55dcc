"""YAML 1.1 number forms that would silently change a phone number are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.yamlconf import ConfigError, load_yaml


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    return load_yaml(path)


@pytest.mark.parametrize("value", ["0120", "0570", "0x10", "1:30", "1_000", "0b11"])
def test_a_number_that_is_not_plain_decimal_is_refused_with_its_position(
        tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"a: 1\nprefixes: [{value}]\n")
    assert str(err.value).startswith(f"{tmp_path / 'x.yaml'}:2:")
    assert "in quotes" in str(err.value)


def test_plain_and_quoted_numbers_are_read_as_written(tmp_path: Path) -> None:
    data = _load(tmp_path, 'a: 0\nb: -15\nc: 5060\nprefixes: ["0120", "0570"]\n')
    assert data == {"a": 0, "b": -15, "c": 5060, "prefixes": ["0120", "0570"]}
