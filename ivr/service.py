"""The IVR's runtime state: the flow set being served, overrides and the event board.

No aiohttp here. The engine owns one `IvrService` (`engine.ivr_state`); the FastAGI adapter
asks it for a `CallWorld` when a call starts, the HTTP handlers and the supervisor feature
code change it. Every change builds new immutable objects and swaps a reference, so a call in
progress keeps what it started with and the per-call path only reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.settings import Settings

from .errors import FlowSetInvalid, InvalidRequest, UnknownEvent, UnknownService
from .events import Board, Event, load_events, parse_event, save_events
from .flowset import CallWorld, FlowSet, Sources, read_flow_set
from .prompts import LANGUAGES, Audio
from .schedule import Override, OverrideMode, OverrideStore, ScheduleState, utc_now
from .tts import Tts, concat

log = logging.getLogger(__name__)

BOARD_REFRESH_S = 60.0  # how often the hold-loop files follow publish windows


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str
    errors: list[str]


class IvrService:
    """Built without touching a file; `start()` (or `load()`, for a service used without its
    background refresh) reads the flow set, overrides and events and renders their sounds."""

    def __init__(self, settings: Settings, sounds_dir: Path, asterisk_sounds: str,
                 state_dir: Path, clock: Callable[[], datetime] = utc_now,
                 tts_cache: Path | None = None) -> None:
        self.settings = settings
        self.sounds_dir = sounds_dir
        self.asterisk_sounds = asterisk_sounds
        self.clock = clock
        self.tts = Tts(sounds_dir / "tts", tts_cache)
        self.sources = Sources.from_settings(settings)
        self.reloads = 0
        self._state = state_dir / "ivr"
        self.events_file = self._state / "events.json"
        # set by load()
        self.current: FlowSet
        self.overrides: OverrideStore
        self.board: Board
        self.loaded = False
        self._lock = asyncio.Lock()
        self._hold_key: tuple[str, ...] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[ReloadResult]] = set()

    def load(self) -> None:
        """Read and render what the service serves; FlowSetInvalid (or a damaged state
        file's ConfigError) stops the start. Blocking: files and text-to-speech."""
        self.current = read_flow_set(self.sources, self.tts, self.sounds_dir, now=self.clock())
        self.overrides = OverrideStore(self._state / "overrides.json", self.clock)
        for service, ov in self.overrides.snapshot().items():
            if ov.message:  # re-render after a restart (cached by content: cheap)
                self.overrides.attach_sounds(service, self._render_texts(ov.message))
        events = load_events(self.events_file, self.current.board.statuses,
                             self.current.schedules.tz, self.current.board.seed)
        self.board = Board((), {}).with_events(events, self._render_board(events))
        self.refresh_hold_files()
        self.loaded = True

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.loaded:
            await asyncio.to_thread(self.load)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def reload_soon(self) -> None:
        """Start a reload from a signal handler; stop() waits for it."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(BOARD_REFRESH_S)
            try:
                await asyncio.to_thread(self.refresh_hold_files)
            except Exception:
                log.exception("event board hold files not refreshed")

    # ---- per call ----------------------------------------------------------------------------
    def world(self) -> CallWorld:
        return CallWorld(self.current, self.overrides.snapshot(), self.board)

    def override(self, service_id: str) -> Override | None:
        """The override in force for a service (None = normal); read by the ACD too."""
        return self.overrides.get(service_id)

    def hold_board(self, language: str) -> str | None:
        """The file the hold loop plays between music, as Asterisk sees it (no extension)."""
        if self.current.board.hold_interval == 0 or language not in LANGUAGES:
            return None
        return f"{self.asterisk_sounds}/board/{language}"

    def sound_path(self, audio: Audio) -> str | None:
        return f"{self.asterisk_sounds}/{audio.sound}" if audio.sound else None

    # ---- reload ------------------------------------------------------------------------------
    async def reload(self) -> ReloadResult:
        """Load a new flow set; keep serving the old one when anything is wrong."""
        async with self._lock:
            try:
                candidate = await asyncio.to_thread(
                    read_flow_set, self.sources, self.tts, self.sounds_dir, False, self.clock())
            except FlowSetInvalid as exc:
                log.error("flow reload refused, still serving %s:\n%s", self.current.version,
                          exc)
                return ReloadResult(False, self.current.version, exc.messages)
            try:
                events = tuple(parse_event(e.to_json(), candidate.board.statuses,
                                           candidate.schedules.tz) for e in self.board.events)
            except InvalidRequest as exc:
                reason = f"the event board no longer fits config/events.yaml: {exc}"
                log.error("flow reload refused, still serving %s: %s", self.current.version,
                          reason)
                return ReloadResult(False, self.current.version, [reason])
            old = self.current.version
            self.current = candidate
            self.reloads += 1
            audio = await asyncio.to_thread(self._render_board, events)
            self.board = self.board.with_events(events, audio)
            await asyncio.to_thread(self.refresh_hold_files, True)
        log.info("flows reloaded: %s -> %s", old, candidate.version)
        return ReloadResult(True, candidate.version, [])

    # ---- overrides ---------------------------------------------------------------------------
    def service_ids(self) -> list[str]:
        return list(self.current.entry)

    async def set_override(self, service: str, mode: str, by: str,
                           minutes: int | None = None,
                           message: dict[str, str] | None = None) -> Override:
        if service not in self.current.entry:
            raise UnknownService(service)
        try:
            m = OverrideMode(mode)
        except ValueError as exc:
            raise InvalidRequest(f"unknown mode {mode!r}; known: "
                                 f"{', '.join(x.value for x in OverrideMode)}") from exc
        if minutes is not None and not 1 <= minutes <= 60 * 24 * 30:
            raise InvalidRequest("'minutes' must be between 1 and 43200")
        texts = _check_message(message)
        if texts and m is not OverrideMode.EMERGENCY:
            raise InvalidRequest("a message goes with mode 'emergency' only")
        sounds = await asyncio.to_thread(self._render_texts, texts) if texts else {}
        return self.overrides.set(service, m, by,
                                  timedelta(minutes=minutes) if minutes else None, texts, sounds)

    def status(self, service: str) -> dict[str, Any]:
        if service not in self.current.entry:
            raise UnknownService(service)
        now = self.clock()
        ov = self.override(service)
        sched = self.current.schedules
        state = (sched.state(service, now, ov) if service in sched.hours
                 else ScheduleState.OPEN)
        return {"service": service, "state": state.value,
                "override": ov.to_json() if ov else None, "now": now.isoformat()}

    # ---- event board -------------------------------------------------------------------------
    async def put_event(self, data: Any) -> Event:
        async with self._lock:
            event = parse_event(data, self.current.board.statuses, self.current.schedules.tz)
            others = tuple(e for e in self.board.events if e.id != event.id)
            if len(others) >= 100:
                raise InvalidRequest("the board holds at most 100 events")
            await self._swap_events((*others, event))
        log.info("event %s set: %s on %s", event.id, event.status, event.date)
        return event

    async def set_event_status(self, event_id: str, data: Any) -> Event:
        current = next((e for e in self.board.events if e.id == event_id), None)
        if current is None:
            raise UnknownEvent()
        if not isinstance(data, dict):
            raise InvalidRequest("body must be an object")
        return await self.put_event({**current.to_json(), **data, "id": event_id})

    async def delete_event(self, event_id: str) -> None:
        async with self._lock:
            if not any(e.id == event_id for e in self.board.events):
                raise UnknownEvent()
            await self._swap_events(tuple(e for e in self.board.events if e.id != event_id))
        log.info("event %s deleted", event_id)

    async def _swap_events(self, events: tuple[Event, ...]) -> None:
        # render first, swap after: a call never meets an announcement without its file
        audio = await asyncio.to_thread(self._render_board, events)
        await asyncio.to_thread(save_events, self.events_file, events)
        self.board = self.board.with_events(events, audio)
        await asyncio.to_thread(self.refresh_hold_files, True)

    def _render_board(self, events: tuple[Event, ...]) -> dict[str, dict[str, Audio]]:
        from .events import announcement_text

        statuses = self.current.board.statuses
        out: dict[str, dict[str, Audio]] = {}
        for ev in events:
            out[ev.id] = {}
            for lang in LANGUAGES:
                text = announcement_text(ev, statuses[ev.status], lang)
                key = self.tts.render(text, lang)
                out[ev.id][lang] = Audio(f"event:{ev.id}", lang, text,
                                         f"tts/{key}" if key else None)
        return out

    def _render_texts(self, texts: dict[str, str]) -> dict[str, str]:
        out = {}
        for lang, text in texts.items():
            key = self.tts.render(text, lang)
            if key is not None:
                out[lang] = f"tts/{key}"
        return out

    def refresh_hold_files(self, force: bool = False) -> None:
        """Rewrite board/<lang>.wav when the published events changed (or when forced)."""
        now = self.clock()
        world = self.world()
        items = {lang: world.board(now, lang) for lang in LANGUAGES}
        key = tuple(f"{lang}:{a.sound}" for lang in LANGUAGES for a in items[lang])
        if not force and key == self._hold_key:
            return
        for lang in LANGUAGES:
            parts: list[Path] = []
            head = "events-intro" if items[lang] else "events-none"
            intro = world.prompt(head, lang)
            for audio in ((intro,) if intro.sound else ()) + items[lang]:
                if audio.sound:
                    parts.append(self.sounds_dir / f"{audio.sound}.wav")
            concat([p for p in parts if p.exists()], self.sounds_dir / "board" / f"{lang}.wav")
        self._hold_key = key
        log.info("event board for waiting callers: %d announcement(s)", len(items["ja"]))


def _check_message(message: Any) -> dict[str, str]:
    if message in (None, {}):
        return {}
    if not isinstance(message, dict):
        raise InvalidRequest("'message' must map languages to texts")
    out: dict[str, str] = {}
    for lang, text in message.items():
        if lang not in LANGUAGES:
            raise InvalidRequest(f"'message': unknown language {lang!r}")
        if not isinstance(text, str) or not 0 < len(text.strip()) <= 300 \
                or any(ord(c) < 32 for c in text):
            raise InvalidRequest(f"'message'.{lang} must be a text of 1-300 characters")
        out[lang] = text
    return out
