"""Each feature's schemas module on its own: good input gives a typed value, each kind of bad
input the ApiError (status, error id) the API answers with."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.web import FileField
from multidict import CIMultiDict, CIMultiDictProxy

from acd import schemas as acd
from console import schemas as console
from console.directory import MAX_CSV_BYTES
from console.errors import FormError
from core.clock import CITY_TZ
from core.errors import ApiError
from core.interactions import OtherKind, OutcomeClass
from core.settings import TransferSettings
from ivr import schemas as ivr
from ivr.closures import DatedClosure
from ivr.events import Status
from kpi import schemas as kpi
from kpi.errors import InvalidRecord
from recordings import schemas as recordings
from recordings.service import RecordingQuery


def refused(call: Callable[[], object], status: int, error_id: str,
            message: str | None = None) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    exc = info.value
    assert (exc.status, exc.error_id) == (status, error_id), exc.body()
    if message is not None:
        assert exc.message == message
    return exc


# ---- recordings -----------------------------------------------------------------------------
def test_recordings_search_defaults_and_filters() -> None:
    assert recordings.search({}) == RecordingQuery()
    q = recordings.search({
        "from": "2025-04-01T00:00:00+09:00", "to": "2025-04-02T00:00:00+09:00",
        "agent": "201", "caller": "+8190", "caller_contains": "1234", "service": "kosodate-1",
        "outcome": "failopen", "min_duration": "1.5", "max_duration": "60", "sort": "duration",
        "limit": "10", "offset": "20"})
    assert q.start == datetime(2025, 4, 1, tzinfo=CITY_TZ)
    assert q.end == datetime(2025, 4, 2, tzinfo=CITY_TZ)
    assert (q.agent, q.caller, q.caller_contains, q.service) == ("201", "+8190", "1234",
                                                                 "kosodate-1")
    assert (q.outcome, q.min_duration, q.max_duration, q.sort) == ("failopen", 1.5, 60.0,
                                                                   "duration")
    assert (q.limit, q.offset) == (10, 20)
    assert recordings.search({"outcome": "answered", "agent": ""}).outcome == "answered"


@pytest.mark.parametrize(("query", "error_id", "message"), [
    ({"sort": "name"}, "bad_parameter", None),
    ({"outcome": "lost"}, "bad_parameter", None),
    ({"agent": "20a"}, "bad_parameter", "agent must be an operator's extension"),
    ({"agent": "1" * 17}, "bad_parameter", "agent must be an operator's extension"),
    ({"service": "a b"}, "bad_parameter", "service must be a service id"),
    ({"service": "s" * 33}, "bad_parameter", "service must be a service id"),
    ({"from": "yesterday"}, "bad_time", "from must be an ISO 8601 time"),
    ({"to": "2025-04-01T00:00:00"}, "bad_time", "to must include a time zone offset"),
    ({"caller": "09O"}, "bad_parameter", "caller must be digits"),
    ({"caller_contains": "1" * 33}, "bad_parameter", "caller_contains must be digits"),
    ({"min_duration": "1e3"}, "bad_parameter", None),
    ({"max_duration": "90000"}, "bad_parameter", "max_duration must be 0..86400 seconds"),
    ({"limit": "0"}, "bad_parameter", "limit must be a whole number 1..1000"),
    ({"offset": "-1"}, "bad_parameter", None),
    ({"limit": "１２"}, "bad_parameter", None),
])
def test_recordings_search_refusals(query: dict[str, str], error_id: str,
                                    message: str | None) -> None:
    refused(lambda: recordings.search(query), 400, error_id, message)


def test_recordings_ids_audio_peaks_audit() -> None:
    assert recordings.recording_id("42") == 42
    for raw in ("4x", "", "1" * 13, "٤٢"):
        refused(partial(recordings.recording_id, raw), 404, "not_found")
    assert recordings.audio({}) == recordings.AudioRequest("wav", False)
    assert recordings.audio({"format": "mp3", "download": "1"}) == recordings.AudioRequest(
        "mp3", True)
    refused(lambda: recordings.audio({"format": "flac"}), 400, "bad_parameter")
    assert recordings.peaks_buckets({}) == 800
    assert recordings.peaks_buckets({"buckets": "10"}) == 10
    refused(lambda: recordings.peaks_buckets({"buckets": "9"}), 400, "bad_parameter")
    assert recordings.audit({}) == recordings.AuditQuery(None, 100)
    assert recordings.audit({"recording": "7", "limit": "5"}) == recordings.AuditQuery(7, 5)
    refused(lambda: recordings.audit({"recording": "x"}), 400, "bad_parameter")


# ---- ACD ------------------------------------------------------------------------------------
def test_acd_state_change() -> None:
    assert acd.state_change({"action": "login"}) == acd.StateChange("login", None)
    assert acd.state_change({"action": "away", "reason": "break"}) == acd.StateChange(
        "away", "break")
    refused(lambda: acd.state_change({"action": "dance"}), 400, "bad_action")
    refused(lambda: acd.state_change({"action": ["login"]}), 400, "bad_action")
    refused(lambda: acd.state_change({}), 400, "bad_action")
    refused(lambda: acd.state_change({"action": "away"}), 400, "bad_reason",
            "away needs a reason")
    for reason in ("coffee break", 5, "x" * 33, "1st"):
        refused(partial(acd.state_change, {"action": "away", "reason": reason}),
                400, "bad_reason", "reason must be a short word like break, meeting")


def test_acd_monitor_request() -> None:
    assert acd.monitor_request({"mode": "whisper", "supervisor": "290"}) == (
        acd.MonitorRequest("whisper", "290"))
    refused(lambda: acd.monitor_request({"mode": "spy", "supervisor": "290"}), 400,
            "bad_mode")
    refused(lambda: acd.monitor_request({"mode": {}, "supervisor": "290"}), 400, "bad_mode")
    refused(lambda: acd.monitor_request({"mode": "listen", "supervisor": 290}), 400,
            "bad_supervisor")


def test_acd_stats_day() -> None:
    today = date(2025, 4, 1)
    assert acd.stats_day(None, today) == today
    assert acd.stats_day("", today) == today
    assert acd.stats_day("2025-03-31", today) == date(2025, 3, 31)
    refused(lambda: acd.stats_day("31/03/2025", today), 400, "bad_date",
            "date must be YYYY-MM-DD")


def test_acd_transfer_target() -> None:
    rules = TransferSettings("192.0.2.10", 5060, "81", (3, 5), ("0570", "090"))
    target = acd.transfer_target({"target": " 2345 "}, rules)
    assert (target.kind, target.number, target.dial) == ("extension", "2345",
                                                         "PJSIP/812345@citypbx")
    assert acd.transfer_target({"type": "blind", "target": "09012345678"}, rules).kind == (
        "external")
    refused(lambda: acd.transfer_target({"type": "attended", "target": "2345"}, rules), 400,
            "bad_type")
    refused(lambda: acd.transfer_target({"target": "0312345678"}, rules), 403,
            "transfer_refused")
    refused(lambda: acd.transfer_target({}, rules), 403, "transfer_refused")


# ---- KPI ------------------------------------------------------------------------------------
NOW = datetime(2025, 4, 15, 3, 0, tzinfo=UTC)


def test_kpi_periods() -> None:
    assert kpi.parse_time("2025-04") == datetime(2025, 4, 1, tzinfo=CITY_TZ)
    assert kpi.parse_time("2025-12", end=True) == datetime(2026, 1, 1, tzinfo=CITY_TZ)
    assert kpi.parse_time("2025-04-30", end=True) == datetime(2025, 5, 1, tzinfo=CITY_TZ)
    assert kpi.parse_time("2025-04-01T09:00") == datetime(2025, 4, 1, 9, tzinfo=CITY_TZ)
    refused(lambda: kpi.parse_time("April"), 400, "bad_query")
    assert kpi.period({}, NOW) == (datetime(2025, 4, 1, tzinfo=CITY_TZ),
                                   datetime(2025, 5, 1, tzinfo=CITY_TZ))
    assert kpi.period({"from": "2025-04-02", "to": "2025-04-02"}, NOW) == (
        datetime(2025, 4, 2, tzinfo=CITY_TZ), datetime(2025, 4, 3, tzinfo=CITY_TZ))
    refused(lambda: kpi.period({"from": "2025-04-03", "to": "2025-04-01"}, NOW), 400,
            "bad_query", "`to` must be after `from`")
    q = kpi.period_query({"service": "kosodate"}, NOW)
    assert (q.service, q.start) == ("kosodate", datetime(2025, 4, 1, tzinfo=CITY_TZ))
    assert kpi.period_query({"service": ""}, NOW).service is None


def test_kpi_query() -> None:
    q = kpi.kpi_query({"by": "day", "short_abandon_s": "5", "service": "s1"}, NOW)
    assert (q.by, q.short_abandon_s, q.service) == ("day", 5.0, "s1")
    q = kpi.kpi_query({}, NOW)
    assert (q.by, q.short_abandon_s, q.service) == (None, None, None)
    refused(lambda: kpi.kpi_query({"by": "year"}, NOW), 400, "bad_query")
    refused(lambda: kpi.kpi_query({"short_abandon_s": "601"}, NOW), 400, "bad_query",
            "short_abandon_s must be between 0 and 600 seconds")
    refused(lambda: kpi.kpi_query({"short_abandon_s": "nan"}, NOW), 400, "bad_query",
            "short_abandon_s must be a decimal number like 0.85")


def test_kpi_staffing_query() -> None:
    q = kpi.staffing_query({}, NOW)
    assert (q.max_occupancy, q.shrinkage) == (1.0, 0.0)
    q = kpi.staffing_query({"max_occupancy": "0.85", "shrinkage": "0.3"}, NOW)
    assert (q.max_occupancy, q.shrinkage) == (0.85, 0.3)
    for bad in ({"max_occupancy": "0"}, {"max_occupancy": "1.5"}, {"shrinkage": "1"}):
        refused(partial(kpi.staffing_query, bad, NOW), 400, "bad_query",
                "max_occupancy must be in (0, 1] and shrinkage in [0, 1)")
    refused(lambda: kpi.staffing_query({"shrinkage": "-0.1"}, NOW), 400, "bad_query")


GOOD_RECORD: dict[str, Any] = {"call_id": "c1", "topic": " 児童手当 ",
                               "outcome_class": OutcomeClass.COMPLETE.value, "text": "ok",
                               "faq_refs": ["faq-1"]}


def test_kpi_interaction() -> None:
    new = kpi.interaction(GOOD_RECORD, frozenset({"201"}))
    assert new == kpi.NewInteraction("c1", "児童手当", OutcomeClass.COMPLETE, None, "ok",
                                     ("faq-1",), None)
    other = kpi.interaction({**GOOD_RECORD, "outcome_class": OutcomeClass.OTHER.value,
                             "other_kind": OtherKind.WRONG_NUMBER.value, "agent_id": "201"},
                            {"201"})
    assert (other.other_kind, other.agent_id) == (OtherKind.WRONG_NUMBER, "201")


@pytest.mark.parametrize(("change", "field"), [
    ({"extra": 1}, "extra"),
    ({"call_id": None}, "call_id"),
    ({"topic": "  "}, "topic"),
    ({"topic": "t" * 65}, "topic"),
    ({"outcome_class": "Z"}, "outcome_class"),
    ({"outcome_class": OutcomeClass.OTHER.value}, "other_kind"),
    ({"other_kind": OtherKind.SALES.value}, "other_kind"),
    ({"text": 5}, "text"),
    ({"faq_refs": "faq-1"}, "faq_refs"),
    ({"faq_refs": [""]}, "faq_refs"),
    ({"faq_refs": ["f"] * 21}, "faq_refs"),
    ({"agent_id": "999"}, "agent_id"),  # not a known operator
])
def test_kpi_interaction_refusals(change: dict[str, Any], field: str) -> None:
    data = {k: v for k, v in {**GOOD_RECORD, **change}.items() if v is not None}
    exc = refused(lambda: kpi.interaction(data, {"201"}), 422, "invalid_interaction")
    assert isinstance(exc, InvalidRecord) and exc.field == field


# ---- IVR ------------------------------------------------------------------------------------
def test_ivr_override_request() -> None:
    assert ivr.override_request({"mode": "closed", "minutes": 30}) == ivr.OverrideRequest(
        "closed", 30, None)
    assert ivr.override_request({}) == ivr.OverrideRequest("", None, None)
    msg = {"ja": "本日は休業です"}
    assert ivr.override_request({"mode": "emergency", "message": msg}).message == msg
    for minutes in ("30", True, 1.5):
        refused(partial(ivr.override_request, {"minutes": minutes}), 400,
                "invalid", "'minutes' must be an integer")
    refused(lambda: ivr.override_request({"mode": "open", "until": "5"}), 400, "invalid",
            "unknown field(s): until")


def test_ivr_board_language() -> None:
    assert ivr.board_language({}) == "ja"
    assert ivr.board_language({"lang": "en"}) == "en"
    refused(lambda: ivr.board_language({"lang": "fr"}), 400, "invalid")


def test_ivr_closures() -> None:
    services = {"kosodate", "zeimu"}
    assert ivr.new_closure({"date": "2025-12-29", "name": " 年末 ", "service": "*"},
                           services) == DatedClosure(date(2025, 12, 29), "年末", ())
    assert ivr.new_closure({"date": "2025-12-29", "name": "n", "service": "zeimu"},
                           services).services == ("zeimu",)
    refused(lambda: ivr.new_closure({"date": "29/12", "name": "n", "service": "*"},
                                    services), 400, "invalid",
            "'date' must be a date YYYY-MM-DD")
    refused(lambda: ivr.new_closure({"date": "2025-12-29", "name": "", "service": "*"},
                                    services), 400, "invalid")
    refused(lambda: ivr.new_closure({"date": "2025-12-29", "name": "a\nb", "service": "*"},
                                    services), 400, "invalid")
    refused(lambda: ivr.new_closure({"date": "2025-12-29", "name": "n", "service": "x"},
                                    services), 400, "invalid",
            "'service' must be a service id or * (every one)")
    assert ivr.closure_removal({"date": "2025-12-29", "service": "zeimu"}, services) == (
        ivr.ClosureRemoval(date(2025, 12, 29), "zeimu"))
    refused(lambda: ivr.closure_removal({"date": "2025-12-29", "service": "*"}, services),
            400, "invalid", "'service' must be a service id")
    refused(lambda: ivr.closure_removal({"service": "zeimu"}, services), 400, "invalid")


STATUSES = {"cancelled": Status("cancelled", {"ja": "中止", "en": "cancelled"},
                                {"ja": "{title}は中止です", "en": "{title} is cancelled"})}
EVENT = {"id": "ev-1", "date": "2025-05-01", "status": "cancelled",
         "title": {"ja": "健診", "en": "Checkup"}, "venue": {"ja": "本庁", "en": "City hall"}}


def test_ivr_tts_preview() -> None:
    tz = ZoneInfo("Asia/Tokyo")
    asked = ivr.tts_preview({"lang": "en", "event": EVENT}, STATUSES, tz)
    assert (asked.lang, asked.event.id, asked.event.date) == ("en", "ev-1", date(2025, 5, 1))
    refused(lambda: ivr.tts_preview({"lang": "fr", "event": EVENT}, STATUSES, tz), 400,
            "invalid", "'lang' must be one of ja, en")
    refused(lambda: ivr.tts_preview({"lang": ["ja"], "event": EVENT}, STATUSES, tz), 400,
            "invalid")
    refused(lambda: ivr.tts_preview({"lang": "ja"}, STATUSES, tz), 400, "invalid",
            "an event must be an object")
    refused(lambda: ivr.tts_preview({"lang": "ja", "event": {**EVENT, "status": "x"}},
                                    STATUSES, tz), 400, "invalid")


def test_ivr_tts_file_name() -> None:
    assert ivr.tts_file_name("ja", "0123456789abcdef01234567") == "ja/0123456789abcdef01234567.wav"
    for lang, key in (("fr", "0" * 24), ("ja", "0" * 23), ("ja", "../" + "0" * 21),
                      ("ja", "0" * 23 + "G")):
        refused(partial(ivr.tts_file_name, lang, key), 404, "not_found")


# ---- console --------------------------------------------------------------------------------
def test_console_login_and_next() -> None:
    form = console.login({"name": "ana\x00\n" + "x" * 80, "password": "pw", "csrf": "t",
                          "next": "/console/admin"})
    assert (form.password, form.csrf, form.next) == ("pw", "t", "/console/admin")
    assert form.audit_name == "ana??" + "x" * 59
    assert console.login({}).audit_name == "?"
    for bad in ("https://evil.example/", "//evil", "/console//evil", "/console/\\x", "", None):
        assert console.safe_next(bad) is None
    assert console.login({"next": "/api/audit"}).next is None


def test_console_desk_agent() -> None:
    assert console.desk_agent("201") == "201"
    for bad in ("", "20a", "1" * 17, "２０１"):
        assert console.desk_agent(bad) == ""


def test_console_users() -> None:
    assert console.new_user({"name": "n", "role": "operator", "password": "p",
                             "agent_id": "201"}) == console.NewUser("n", "operator", "p", "201")
    assert console.new_user({}).agent_id is None
    assert console.user_change({"action": "role", "role": "supervisor",
                                "agent_id": " 201 "}) == console.UserChange(
        "role", "supervisor", "201")
    assert console.user_change({"action": "disable"}).action == "disable"
    refused(lambda: console.user_change({"action": "delete"}), 400, "bad_form",
            "choose a role change, disable or enable")


def test_console_retention_and_export() -> None:
    assert console.retention_days({"days": " 365 "}) == 365
    assert console.retention_days({"days": "-1"}) == -1  # the recordings feature refuses it
    for bad in ("", "1.5", "1234567", "三"):
        with pytest.raises(FormError, match="whole number"):
            console.retention_days({"days": bad})
    span = console.export_range({"from": "2025-04-01", "to": "2025-04-30"})
    assert (span.start, span.end) == (datetime(2025, 4, 1, tzinfo=CITY_TZ),
                                      datetime(2025, 5, 1, tzinfo=CITY_TZ))
    refused(lambda: console.export_range({"from": "2025-04-01"}), 400, "bad_form",
            "choose the first and last day (YYYY-MM-DD)")
    for last in ("2025-03-31", "2026-04-02"):
        refused(partial(console.export_range, {"from": "2025-04-01", "to": last}),
                400, "bad_form", "the last day must be on or after the first, at most 366 days")
    assert console.export_range({"from": "2025-04-01", "to": "2026-04-01"}).last == date(
        2026, 4, 1)


def test_console_csv_upload_and_search() -> None:
    field = FileField("file", "staff.csv", io.BytesIO(b"a,b\n"), "text/csv",
                      CIMultiDictProxy(CIMultiDict()))
    assert console.csv_upload({"kind": "faq", "file": field}) == console.CsvUpload("faq", field)
    for form in ({"kind": "users", "file": field}, {"kind": "faq", "file": "x"}, {}):
        refused(partial(console.csv_upload, form), 400, "bad_form",
                "choose directory or faq and a CSV file")
    assert console.csv_size(b"x") == b"x"
    refused(lambda: console.csv_size(b"x" * (MAX_CSV_BYTES + 1)), 413, "bad_form")
    assert console.search_text({"q": " 税 "}) == "税"
    for q in ({}, {"q": "  "}, {"q": "x" * 65}):
        refused(partial(console.search_text, q), 400, "bad_parameter",
                "q must be 1-64 characters")
