"""The admin page's edits of files it did not write itself: schedules.yaml as it is on disk
(invalid UTF-8, a hand-edited closure of the wrong shape) is refused with a 4xx and its
position and left as it was; a CSV upload's bad byte is named by line and column, and the
CSV is parsed off the event loop."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from aiohttp import FormData

from console import directory as directory_module
from ivr.closures import remove_closure
from madoguchi.engine import Engine
from tests.console_users import App, admin_session

CLOSURES = "closures:\n  - {name: 年末年始, from: \"12-29\", until: \"01-03\", services: [water]}\n"


def _schedules(engine: Engine) -> Path:
    return engine.ivr_state.sources.config_dir / "schedules.yaml"


async def test_schedules_with_invalid_utf8_on_disk_is_refused_with_its_position(
        app_client: App) -> None:
    client, engine, console = app_client
    _, headers = admin_session(console)
    path = _schedules(engine)
    text = path.read_text(encoding="utf-8")
    assert CLOSURES in text
    line = text[:text.index(CLOSURES)].count("\n") + 2  # the closure's line
    broken = text.replace("年末年始", "年末\udcff年始").encode("utf-8", "surrogateescape")
    path.write_bytes(broken)
    column = len("  - {name: 年末") + 1
    for url, body in (("/api/closures", {"date": "2030-04-02", "name": "x", "service": "water"}),
                      ("/api/closures/delete", {"date": "2030-04-02", "service": "water"})):
        resp = await client.post(url, headers=headers, json=body)
        assert resp.status == 422, await resp.text()
        reply = await resp.json()
        assert reply["error"] == "invalid_schedules"
        assert reply["errors"] == [f"{path}:{line}:{column}: invalid UTF-8 (byte 0xff)"]
        assert path.read_bytes() == broken
    # the hours in force were never touched
    assert (await client.get("/api/closures", headers=headers)).status == 200


async def test_a_hand_edited_closure_of_the_wrong_shape_is_a_400_and_the_file_stays(
        app_client: App) -> None:
    client, engine, console = app_client
    _, headers = admin_session(console)
    path = _schedules(engine)
    text = path.read_text(encoding="utf-8")
    for entry, key, reason in (
            ('{name: 臨時, date: "2030-04-02", services: 5}', "services:",
             "'services' must be a list of service ids"),
            ('{name: 臨時, date: "2030-04-02", services: water}', "services:",
             "'services' must be a list of service ids"),
            ('{name: 臨時, date: "2030-04-02", services: [water, [city]]}', "services:",
             "'services' must be a list of service ids"),
            ('{name: {ja: 臨時}, date: "2030-04-02", services: [water, city]}', "name:",
             "'name' must be a text")):
        edited = text.replace(CLOSURES, CLOSURES + f"  - {entry}\n")
        path.write_text(edited, encoding="utf-8")
        line = edited.splitlines().index(f"  - {entry}") + 1
        column = f"  - {entry}".index(key) + len(key) + 2  # where the value starts
        resp = await client.post("/api/closures/delete", headers=headers,
                                 json={"date": "2030-04-02", "service": "water"})
        assert resp.status == 400, (entry, await resp.text())
        message = (await resp.json())["message"]
        assert message.startswith(f"{path}:{line}:{column}: {reason}"), (entry, message)
        assert path.read_text(encoding="utf-8") == edited


def test_remove_closure_takes_a_null_or_missing_services_as_every_service(
        tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    for entry in ('{name: 臨時, date: "2030-04-02", services: null}',
                  '{name: 臨時, date: "2030-04-02"}'):
        text = f"closures:\n  - {entry}\n"
        path.write_text(text, encoding="utf-8")
        assert remove_closure(text, path, date(2030, 4, 2), "water", ["city", "water"]) == \
            'closures:\n  - {name: "臨時", date: "2030-04-02", services: [city]}\n'


async def test_a_csv_upload_names_the_line_and_column_of_a_bad_byte_off_the_loop(
        app_client: App, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, console = app_client
    s, headers = admin_session(console)
    parsed_in: list[threading.Thread] = []
    original = directory_module.directory_rows

    def spy(data: str | bytes) -> list[dict[str, str]]:
        parsed_in.append(threading.current_thread())
        return original(data)

    monkeypatch.setattr(directory_module, "directory_rows", spy)
    form = FormData()
    form.add_field("csrf", s.csrf)
    form.add_field("kind", "directory")
    form.add_field("file", "section,name,extension\n総務課,鈴木,2401\n環境課,山".encode()
                   + b"\xff" + "田,2101\n".encode(), filename="staff.csv",
                   content_type="text/csv")
    resp = await client.post("/console/admin/import", data=form,
                             headers={"Cookie": headers["Cookie"]}, allow_redirects=False)
    assert resp.status == 400
    assert "staff.csv: line 3, column 6: invalid UTF-8 (byte 0xff)" in await resp.text()
    assert len(parsed_in) == 1 and parsed_in[0] is not threading.main_thread()
