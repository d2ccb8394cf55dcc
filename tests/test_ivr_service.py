"""The IVR service: reload under load (calls keep their version), refused reloads, overrides
(persisted, expiring, logged, feature code), and the event board (8 events x 10 statuses,
both languages, publish windows, changes seen by the next call only)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.calls import Call, CallTracker
from ivr.agi_runner import IvrRunner
from ivr.events import announcement_text, parse_event
from ivr.schedule import OverrideMode, OverrideStore
from tests.ivr_doubles import NOON, Clock, FakeSession, service


async def test_reload_under_load_calls_keep_the_version_they_started_on(tmp_path: Path) -> None:
    ivr, settings = service(tmp_path, Clock(NOON))
    tracker = CallTracker()
    queued: list[Call] = []

    async def enqueue(call: Call) -> None:
        queued.append(call)

    runner = IvrRunner(settings, ivr, tracker, "/rec", lambda c: None, enqueue, Clock(NOON))
    gate = asyncio.Event()
    old = ivr.current.version
    first = [FakeSession("city", n, gate) for n in range(50)]
    tasks = [asyncio.create_task(runner.handle(s)) for s in first]
    await asyncio.sleep(0.05)  # all 50 wait in the language menu
    city = settings.config_dir / "flows" / "city.yaml"
    city.write_text(city.read_text(encoding="utf-8").replace("topic: general", "topic: new"),
                    encoding="utf-8")
    result = await ivr.reload()
    assert result.ok and result.version != old
    later = [FakeSession("city", 100 + n, asyncio.Event()) for n in range(10)]
    for s in later:
        s.gate.set()
    await asyncio.gather(*[runner.handle(s) for s in later])
    gate.set()
    await asyncio.gather(*tasks)
    by_caller = {c.caller: c for c in queued}
    for s in first:
        call = by_caller[s.env["agi_callerid"]]
        assert (call.flow_version, call.topic) == (old, "general")
        assert s.vars["MADO_DEST"] == "queue" and s.vars["IVR_DONE"] == "1"
    for s in later:
        call = by_caller[s.env["agi_callerid"]]
        assert (call.flow_version, call.topic) == (result.version, "new")
    assert queued[0].flow_path == ["greeting", "choose-language", "english", "hours",
                                   "to-queue"]


async def test_an_invalid_set_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    ivr, settings = service(tmp_path, Clock(NOON))
    old = ivr.current
    prompts = settings.config_dir / "prompts.yaml"
    prompts.write_text(prompts.read_text(encoding="utf-8").replace(
        '    en: "Thank you for calling. Goodbye."\n', ""), encoding="utf-8")
    result = await ivr.reload()
    assert not result.ok and result.version == old.version
    assert any("prompt 'goodbye' is missing in 'en'" in e for e in result.errors)
    assert all(str(settings.config_dir / "flows") in e for e in result.errors)
    assert ivr.current is old


async def test_overrides_persist_expire_and_are_logged(tmp_path: Path) -> None:
    clock = Clock(NOON)
    ivr, _ = service(tmp_path, clock)
    assert ivr.status("city")["state"] == "open"
    await ivr.set_override("city", "forward", "test", minutes=30)
    assert ivr.override("city") is not None
    assert ivr.status("city")["state"] == "forward"
    again = OverrideStore(tmp_path / "state" / "ivr" / "overrides.json", clock)
    kept = again.get("city")
    assert kept is not None and kept.mode is OverrideMode.FORWARD  # survives a restart
    clock.now = NOON + timedelta(minutes=31)
    assert ivr.override("city") is None
    assert ivr.status("city")["state"] == "open"
    history = ivr.overrides.history()
    assert [h["mode"] for h in history] == ["forward", "normal"]
    assert history[1]["by"] == "expiry"
    with pytest.raises(Exception, match="unknown mode"):
        await ivr.set_override("city", "party", "test")


async def test_supervisor_feature_code_switches_the_override(tmp_path: Path) -> None:
    ivr, settings = service(tmp_path, Clock(NOON))
    runner = IvrRunner(settings, ivr, CallTracker(), "/rec", lambda c: None,
                       lambda c: asyncio.sleep(0), Clock(NOON))
    stranger = FakeSession("ivr/override", 1, asyncio.Event())
    stranger.args, stranger.channel = ["1", "1"], "PJSIP/7001-00000001"
    await runner.handle(stranger)
    assert stranger.played == ["invalid"] and ivr.override("city") is None
    boss = FakeSession("ivr/override", 2, asyncio.Event())
    boss.args, boss.channel = ["1", "1"], "PJSIP/7004-00000002"
    await runner.handle(boss)
    assert boss.played == ["beep"]
    ov = ivr.override("city")
    assert ov is not None and ov.mode is OverrideMode.CLOSED and "7004" in ov.set_by


def test_eight_events_each_with_ten_statuses_in_both_languages(tmp_path: Path) -> None:
    ivr, _ = service(tmp_path, Clock(NOON))
    statuses = ivr.current.board.statuses
    assert len(statuses) >= 10
    texts = set()
    for i in range(8):
        for status in statuses:
            ev = parse_event({"id": f"ev{i}", "date": "2026-11-25", "time": "10:30",
                              "status": status, "title": {"ja": f"行事{i}", "en": f"event {i}"},
                              "venue": {"ja": "会館", "en": "the hall"},
                              "new_date": "2026-12-01", "new_time": "13:00",
                              "new_venue": {"ja": "体育館", "en": "the gym"}},
                             statuses, ivr.current.schedules.tz)
            for lang in ("ja", "en"):
                text = announcement_text(ev, statuses[status], lang)
                assert "{" not in text and (f"行事{i}" in text or f"Event {i}" in text
                                            or f"event {i}" in text)
                texts.add(text)
    assert len(texts) == 8 * len(statuses) * 2
    ev = parse_event({"id": "x", "date": "2026-11-25", "time": "10:30", "status": "postponed",
                      "title": {"ja": "祭り", "en": "the fair"}, "venue": {"ja": "a", "en": "b"},
                      "new_date": "2026-12-01"}, statuses, ivr.current.schedules.tz)
    assert announcement_text(ev, statuses["postponed"], "ja") == \
        "11月25日に予定していた祭りは、12月1日に延期となりました。"
    assert announcement_text(ev, statuses["postponed"], "en") == \
        "The fair, planned for November 25, has been postponed to December 1."


async def test_board_changes_reach_the_next_call_only(tmp_path: Path) -> None:
    clock = Clock(NOON)
    ivr, _ = service(tmp_path, clock)
    during = ivr.world()  # a call in progress
    for ev in list(ivr.board.events):
        await ivr.delete_event(ev.id)
    await ivr.put_event({"id": "fair", "date": "2026-11-25", "time": "10:00",
                         "status": "held", "title": {"ja": "市民祭り", "en": "the fair"},
                         "venue": {"ja": "公園", "en": "the park"},
                         "publish_until": "2026-11-25T13:00"})
    nxt = ivr.world()
    en = nxt.board(clock(), "en")
    assert [a.key for a in en] == ["event:fair"]
    assert en[0].sound is not None and (tmp_path / "sounds" / f"{en[0].sound}.wav").exists()
    assert nxt.board(clock(), "ja")[0].text.startswith("11月25日の市民祭りは")
    assert len(during.board(clock(), "en")) == 8  # the seeded board it started with
    assert nxt.board(NOON + timedelta(hours=2), "en") == ()  # 13:00 Tokyo: window closed
    hold = tmp_path / "sounds" / "board" / "en.wav"
    assert hold.exists() and hold.stat().st_size > 8000
    await ivr.set_event_status("fair", {"status": "cancelled"})
    assert "cancelled" in ivr.world().board(clock(), "en")[0].text
    with pytest.raises(Exception, match="needs 'new_date'"):
        await ivr.set_event_status("fair", {"status": "postponed"})
    with pytest.raises(Exception, match="unknown status"):
        await ivr.put_event({"id": "bad", "date": date(2026, 1, 1).isoformat(),
                             "status": "exploded", "title": "t", "venue": "v"})
    assert (tmp_path / "state" / "ivr" / "events.json").exists()
