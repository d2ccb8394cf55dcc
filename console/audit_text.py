"""The audit log as the admin page shows it: each action and its detail in the page's language,
with names instead of ids. The stored rows keep their stable English form (scripts and
`GET /api/audit` read it); a detail this module does not recognise is shown as stored."""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import parse_qsl

from .dates import day_text, time_text
from .i18n import AUDIT_ACTIONS, LANGS, pick, texts
from .names import Names

W: dict[str, tuple[str, str]] = {
    "sessions_ended": ("{n}件のセッションを終了", "{n} session(s) ended"),
    "ext": ("内線 {ext}", "extension {ext}"),
    "replaced": ("置き換え", "replaced"),
    "retention": ("録音の保存期間: {old}日 → {new}日", "Recording retention: {old} → {new} days"),
    "import_directory": ("職員名簿の取込: {n}件", "Staff directory imported: {n} rows"),
    "import_faq": ("FAQの取込: {n}件", "FAQ imported: {n} rows"),
    "export": ("{days}: 録音{n}件、{size}、チェックサム {sum}、問題{p}件",
               "{days}: {n} recordings, {size}, checksum {sum}, {p} problem(s)"),
    "interrupted": ("{days}: 途中で中断({why})", "{days}: interrupted ({why})"),
    "recording": ("録音 #{id}", "recording #{id}"),
    "format": ("形式 {fmt}", "format {fmt}"),
    "range": ("範囲 {range}", "range {range}"),
    "supervise": ("オペレーター: {agent}、スーパーバイザーの内線: {sv}",
                  "operator: {agent}, supervisor's extension: {sv}"),
    "no_filter": ("条件なし", "no filter"),
    "api_token": ("APIトークン", "API token"),
    "cli": ("コマンドライン({who})", "command line ({who})"),
    "flows_reload": ("IVRフローの再読込", "IVR flows reloaded"),
    "override": ("受付時間の切替: {service}", "Hours override: {service}"),
    "closure_add": ("臨時休業日の追加", "Dated closure added"),
    "closure_delete": ("臨時休業日の削除", "Dated closure removed"),
    "event_save": ("イベント案内の保存", "Event saved"),
    "event_status": ("イベントの状況変更: {event}", "Event status changed: {event}"),
    "event_delete": ("イベントの削除: {event}", "Event deleted: {event}"),
    "q_from": ("開始", "from"),
    "q_to": ("終了", "to"),
    "q_agent": ("オペレーター", "operator"),
    "q_caller": ("発信者番号", "caller"),
    "q_caller_contains": ("発信者番号(一部)", "caller contains"),
    "q_service": ("サービス", "service"),
    "q_outcome": ("通話の結果", "outcome"),
    "q_min_duration": ("最短の長さ(秒)", "minimum duration (s)"),
    "q_max_duration": ("最長の長さ(秒)", "maximum duration (s)"),
    "q_sort": ("並び順", "sort"),
    "q_limit": ("件数", "limit"),
    "q_offset": ("開始位置", "offset"),
}

_ROLE_CHANGE = re.compile(r"^(\S+) role (\w+)->(\w+)(?: ext=(\d+))?; (\d+) session\(s\) ended$")
_USER_ADD = re.compile(r"^(\S+) role=(\w+)(?: ext=(\d+))?( \(replaced\))?$")
_USER_SESSIONS = re.compile(r"^(\S+)(?:; (\d+) session\(s\) ended)?$")
_SETTING = re.compile(r"^POST (/api/\S+)$")
_RETENTION = re.compile(r"^retention_days (\d+) -> (\d+)$")
_IMPORT = re.compile(r"^import (directory|faq): (\d+) rows$")
_EXPORT = re.compile(r"^(\d{4}-\d\d-\d\d)\.\.(\d{4}-\d\d-\d\d): (\d+) recordings, (\d+) bytes, "
                     r"manifest (\w+), (\d+) problem\(s\)$")
_INTERRUPTED = re.compile(r"^(\d{4}-\d\d-\d\d)\.\.(\d{4}-\d\d-\d\d): interrupted \((\w+)\)$")
_AUDIO = re.compile(r"^format=(\w+)(?: range=(\S+))?$")
_SUPERVISE = re.compile(r"^agent (\d+), supervisor (\d+)$")


def _w(key: str, lang: str, **values: object) -> str:
    return W[key][LANGS.index(lang)].format(**values)


def action_text(action: str, lang: str) -> str:
    return pick(AUDIT_ACTIONS, action, lang)


def actor_text(actor: str, lang: str) -> str:
    if actor == "api-token":
        return _w("api_token", lang)
    if actor.startswith("cli:"):
        return _w("cli", lang, who=actor[4:])
    return actor


def _role(role: str, lang: str) -> str:
    return texts(lang).get(f"role_{role}", role)


def _days(first: str, last: str, lang: str) -> str:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return day_text(a, lang) + ("〜" if lang == "ja" else " to ") + day_text(b, lang)


def _size(n: int, lang: str) -> str:
    mib = n / (1024 * 1024)
    return (f"{mib:.1f} MiB" if mib >= 0.1 else f"{n:,} バイト" if lang == "ja"
            else f"{n:,} bytes")


def _sep(lang: str) -> str:
    return "、" if lang == "ja" else ", "


def detail_text(action: str, detail: str, recording_id: int | None, names: Names) -> str:
    lang = names.lang
    rec = _w("recording", lang, id=recording_id) if recording_id is not None else ""
    text = _describe(action, detail or "", names)
    return _sep(lang).join(p for p in (rec, text) if p)


def _describe(action: str, detail: str, names: Names) -> str:
    lang = names.lang
    if action == "login" and detail.startswith("role="):
        return f"{texts(lang)['role']}: {_role(detail[5:], lang)}"
    if action == "user-add" and (m := _USER_ADD.match(detail)):
        parts = [_role(m.group(2), lang)]
        if m.group(3):
            parts.append(_w("ext", lang, ext=names.agent(m.group(3))))
        if m.group(4):
            parts.append(_w("replaced", lang))
        return f"{m.group(1)} ({_sep(lang).join(parts)})"
    if action == "user-role" and (m := _ROLE_CHANGE.match(detail)):
        change = f"{_role(m.group(2), lang)} → {_role(m.group(3), lang)}"
        if m.group(4):
            change += _sep(lang) + _w("ext", lang, ext=names.agent(m.group(4)))
        return f"{m.group(1)}: {change}{_sep(lang)}{_w('sessions_ended', lang, n=m.group(5))}"
    if action in ("user-disable", "user-enable", "user-remove") and (
            m := _USER_SESSIONS.match(detail)):
        ended = m.group(2)
        return m.group(1) + (f" ({_w('sessions_ended', lang, n=ended)})" if ended else "")
    if action == "setting":
        return _setting(detail, names)
    if action == "export":
        if m := _EXPORT.match(detail):
            return _w("export", lang, days=_days(m.group(1), m.group(2), lang), n=m.group(3),
                      size=_size(int(m.group(4)), lang), sum=m.group(5), p=m.group(6))
        if m := _INTERRUPTED.match(detail):
            return _w("interrupted", lang, days=_days(m.group(1), m.group(2), lang),
                      why=m.group(3))
    if action == "search":
        return _search(detail, names)
    if action in ("play", "download") and (m := _AUDIO.match(detail)):
        parts = [_w("format", lang, fmt=m.group(1))]
        if m.group(2):
            parts.append(_w("range", lang, range=m.group(2)))
        return _sep(lang).join(parts)
    if action == "waveform" and detail.startswith("buckets="):
        return ""
    if action.startswith("supervise-") and (m := _SUPERVISE.match(detail)):
        return _w("supervise", lang, agent=names.agent(m.group(1)), sv=m.group(2))
    return detail


def _setting(detail: str, names: Names) -> str:
    lang = names.lang
    if m := _RETENTION.match(detail):
        return _w("retention", lang, old=m.group(1), new=m.group(2))
    if m := _IMPORT.match(detail):
        return _w(f"import_{m.group(1)}", lang, n=m.group(2))
    m = _SETTING.match(detail)
    if m is None:
        return detail
    path = m.group(1)
    if path == "/api/flows/reload":
        return _w("flows_reload", lang)
    if path == "/api/closures":
        return _w("closure_add", lang)
    if path == "/api/closures/delete":
        return _w("closure_delete", lang)
    if path == "/api/board/events":
        return _w("event_save", lang)
    if (m := re.fullmatch(r"/api/schedules/([\w-]+)/override", path)) is not None:
        return _w("override", lang, service=names.service(m.group(1)))
    if (m := re.fullmatch(r"/api/board/events/([^/]+)/(status|delete)", path)) is not None:
        return _w(f"event_{m.group(2)}", lang, event=m.group(1))
    return detail


def _search(query: str, names: Names) -> str:
    lang = names.lang
    parts = []
    for key, value in parse_qsl(query, keep_blank_values=False):
        if f"q_{key}" not in W:
            parts.append(f"{key}={value}")
            continue
        shown = value
        if key == "service":
            shown = names.service(value)
        elif key == "agent":
            shown = names.agent(value)
        elif key == "outcome":
            shown = names.outcomes.get(value, value)
        elif key in ("from", "to"):
            try:
                shown = time_text(datetime.fromisoformat(value), lang)
            except ValueError:
                pass
        parts.append(f"{_w(f'q_{key}', lang)}: {shown}")
    return _sep(lang).join(parts) if parts else _w("no_filter", lang)
