"""The engine's lifecycle: its parts start in one order and stop in exactly the reverse one,
and a start that fails half-way stops what had already started (in reverse), releases the
state folder's lock and leaves no task running."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.statelock import StateLock
from harness.offline_engine import offline_engine
from ivr.errors import FlowSetInvalid
from ivr.service import IvrService
from madoguchi.engine import PARTS, Engine

Events = list[tuple[str, str]]


def record_parts(engine: Engine, monkeypatch: pytest.MonkeyPatch, events: Events,
                 fail: str | None = None) -> None:
    """Note each part once it has started and when it stops; `fail` raises instead of
    starting that part."""
    real = engine.part

    @asynccontextmanager
    async def part(name: str) -> AsyncIterator[None]:
        if name == fail:
            raise RuntimeError(f"{name} refused to start")
        async with real(name):
            events.append(("start", name))
            try:
                yield
            finally:
                events.append(("stop", name))

    def factory(name: str) -> AbstractAsyncContextManager[None]:
        return part(name)

    monkeypatch.setattr(engine, "part", factory)


def spy_resources(engine: Engine, monkeypatch: pytest.MonkeyPatch, events: Events) -> None:
    """Note the real start and stop calls of the objects behind the parts."""
    resources: dict[str, tuple[Any, str, str]] = {
        "state lock": (engine.state_lock, "acquire", "release"),
        "database": (engine.db, "create_schema", "close"),
        "agent history": (engine.history, "start", "stop"),
        "recording jobs": (engine.recording_jobs, "start", "stop"),
        "ivr": (engine.ivr_state, "start", "stop"),
        "ami": (engine.ami, "start", "close"),
        "acd": (engine.acd, "start", "close"),
        "fastagi": (engine.fastagi, "start", "close"),
    }
    for name, (obj, start, stop) in resources.items():
        for method, kind in ((start, "start"), (stop, "stop")):
            monkeypatch.setattr(obj, method, _spy(getattr(obj, method), kind, name, events))


def _spy(fn: Callable[..., Any], kind: str, name: str, events: Events) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):
        async def async_spy(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            events.append((kind, name))
            return result
        return async_spy

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        events.append((kind, name))
        return result
    return spy


def names(events: Events, kind: str) -> list[str]:
    return [name for k, name in events if k == kind]


def lock_is_free(state: Path) -> bool:
    lock = StateLock(state)
    try:
        lock.acquire()
    except Exception:
        return False
    lock.release()
    return True


def other_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


@contextmanager
def port_taken(host: str, port: int) -> Iterator[None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        sock.listen()
        yield
    finally:
        sock.close()


async def test_stop_is_the_reverse_of_start(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    engine = offline_engine(tmp_path)
    parts: Events = []
    resources: Events = []
    record_parts(engine, monkeypatch, parts)
    spy_resources(engine, monkeypatch, resources)
    await engine.start()
    assert parts == [("start", name) for name in PARTS]
    assert names(resources, "start") == ["state lock", "ivr", "database", "agent history",
                                         "recording jobs", "ami", "acd", "fastagi"]
    assert engine.fastagi.listening and not lock_is_free(engine.settings.state_dir)
    await engine.stop()
    assert names(parts, "stop") == list(reversed(PARTS))
    assert names(resources, "stop") == list(reversed(names(resources, "start")))
    assert not engine.fastagi.listening and lock_is_free(engine.settings.state_dir)
    assert other_tasks() == []
    await engine.stop()  # stopping a stopped engine does nothing
    assert names(parts, "stop") == list(reversed(PARTS))


async def test_running_starts_and_stops(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    async with engine.running():
        assert engine.fastagi.listening
        with pytest.raises(RuntimeError, match="already started"):
            await engine.start()
    assert not engine.fastagi.listening and lock_is_free(engine.settings.state_dir)


async def test_fastagi_port_in_use_stops_everything_started_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = offline_engine(tmp_path)
    parts: Events = []
    resources: Events = []
    record_parts(engine, monkeypatch, parts)
    spy_resources(engine, monkeypatch, resources)
    agi = engine.settings.fastagi
    with port_taken(agi.host, agi.port), pytest.raises(OSError):
        await engine.start()
    started = names(parts, "start")
    assert started == list(PARTS[:-1])  # FastAGI is the last part
    assert names(parts, "stop") == list(reversed(started))
    # the objects behind the parts, FastAGI included (it cleans up its own failed start)
    assert names(resources, "start") == ["state lock", "ivr", "database", "agent history",
                                         "recording jobs", "ami", "acd"]
    assert names(resources, "stop") == ["fastagi", "acd", "ami", "recording jobs",
                                        "agent history", "database", "ivr", "state lock"]
    assert lock_is_free(engine.settings.state_dir)
    assert not engine.fastagi.listening
    assert engine.metrics.registry.get_sample_value("madoguchi_fastagi_listening") == 0
    assert other_tasks() == []
    await engine.stop()  # nothing left to stop
    assert len(names(parts, "stop")) == len(started)


@pytest.mark.parametrize("failing", ["database", "ivr_service", "acd", "sighup"])
async def test_a_part_failing_stops_the_parts_before_it_in_reverse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    engine = offline_engine(tmp_path)
    parts: Events = []
    record_parts(engine, monkeypatch, parts, fail=failing)
    with pytest.raises(RuntimeError, match=f"{failing} refused to start"):
        await engine.start()
    before = list(PARTS[:PARTS.index(failing)])
    assert names(parts, "start") == before
    assert names(parts, "stop") == list(reversed(before))
    assert lock_is_free(engine.settings.state_dir)
    assert other_tasks() == []


async def test_an_object_failing_to_start_unwinds_the_real_parts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = offline_engine(tmp_path)
    resources: Events = []
    spy_resources(engine, monkeypatch, resources)

    def refuse() -> None:
        raise RuntimeError("the ACD refused to start")

    monkeypatch.setattr(engine.acd, "start", refuse)
    with pytest.raises(RuntimeError, match="the ACD refused"):
        await engine.start()
    assert names(resources, "start") == ["state lock", "ivr", "database", "agent history",
                                         "recording jobs", "ami"]
    assert names(resources, "stop") == ["ami", "recording jobs", "agent history", "database",
                                        "ivr", "state lock"]
    assert other_tasks() == []


async def test_an_invalid_flow_set_stops_the_start_and_nothing_is_left_running(
        tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    prompts = engine.settings.config_dir / "prompts.yaml"
    # the engine was built from these files already: building it read no flow
    prompts.write_text(prompts.read_text(encoding="utf-8").replace(
        '    en: "Thank you for calling. Goodbye."\n', ""), encoding="utf-8")
    with pytest.raises(FlowSetInvalid, match="prompt 'goodbye' is missing in 'en'"):
        await engine.start()
    assert not (engine.settings.state_dir / "madoguchi.db").exists()  # refused before it
    assert lock_is_free(engine.settings.state_dir)
    assert not engine.fastagi.listening
    assert other_tasks() == []


def test_the_ivr_service_reads_nothing_until_loaded(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    ivr = IvrService(engine.settings, tmp_path / "sounds", "/snd", tmp_path / "ivr-state")
    assert not ivr.loaded
    assert not (tmp_path / "sounds").exists()  # no prompt rendered, no board written
    ivr.load()
    assert ivr.loaded and ivr.current.entry
    assert (tmp_path / "sounds" / "board").is_dir()
