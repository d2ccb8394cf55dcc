from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import load_flow
from ivr.interpreter import Collect, Digits, Enqueue, Interpreter, Played, PlayPrompt
from madoguchi.yamlconf import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def city() -> Interpreter:
    return Interpreter(load_flow(ROOT / "config/flows/city.yaml", {"city"}))


def test_dtmf_2_chooses_english_then_queue() -> None:
    ivr = city()
    assert ivr.start() == PlayPrompt("greeting-city", "ja")
    assert ivr.feed(Played()) == Collect("choose-language", "ja", 5000)
    assert ivr.feed(Digits("2")) == Enqueue("city")
    assert ivr.language == "en"
    assert ivr.path == ["greeting", "choose-language", "english", "to-queue"]


def test_invalid_key_retries_then_falls_back() -> None:
    ivr = city()
    ivr.start()
    ivr.feed(Played())
    assert ivr.feed(Digits("9")) == Collect("choose-language", "ja", 5000)
    assert ivr.feed(Digits("")) == Collect("choose-language", "ja", 5000)
    assert ivr.feed(Digits("7")) == Enqueue("city")
    assert ivr.language == "ja"


def test_outcome_that_does_not_fit_raises() -> None:
    ivr = city()
    ivr.start()
    with pytest.raises(ValueError):
        ivr.feed(Digits("1"))


def test_flow_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: a\nnodes:\n  a:\n    type: play\n    prompt: x\n    next: nowhere\n")
    with pytest.raises(ConfigError) as err:
        load_flow(bad, {"city"})
    assert str(err.value).startswith(f"{bad}:4:5:")
    assert "missing node 'nowhere'" in str(err.value)

    bad.write_text("start: a\nnodes:\n  a:\n    type: dance\n")
    with pytest.raises(ConfigError, match=r":4:11: unknown node type 'dance'"):
        load_flow(bad, {"city"})
