"""Console texts, Japanese first. The page's language comes from ?lang= (kept in a cookie)."""

from __future__ import annotations

from aiohttp import web

LANGS = ("ja", "en")
LANG_COOKIE = "madoguchi_lang"

TEXTS: dict[str, tuple[str, str]] = {
    "app": ("窓口 コンソール", "madoguchi console"),
    "login": ("ログイン", "Log in"),
    "logout": ("ログアウト", "Log out"),
    "user": ("ユーザー名", "User name"),
    "password": ("パスワード", "Password"),
    "login_failed": ("ユーザー名またはパスワードが違います", "Wrong user name or password"),
    "login_locked": ("ログイン失敗が続いたため、しばらくお待ちください",
                     "Too many failed logins: please wait and try again"),
    "login_expired": ("フォームの有効期限が切れました。もう一度お試しください",
                      "The form expired: please try again"),
    "desk": ("オペレーター席", "Operator desk"),
    "wallboard": ("ウォールボード", "Wallboard"),
    "viewer": ("通話記録の閲覧", "Call records"),
    "admin": ("管理", "Admin"),
    "role_admin": ("管理者", "admin"),
    "role_supervisor": ("スーパーバイザー", "supervisor"),
    "role_operator": ("オペレーター", "operator"),
    "role_city_viewer": ("市職員(閲覧)", "city viewer"),
    "st_logged_out": ("ログオフ", "logged out"),
    "st_available": ("受付可", "available"),
    "st_ringing": ("呼出中", "ringing"),
    "st_on_call": ("通話中", "on call"),
    "st_wrap_up": ("後処理", "wrap-up"),
    "st_away": ("離席", "away"),
    "act_login": ("ログイン(受付開始)", "Log in"),
    "act_logout": ("ログオフ", "Log out"),
    "act_away": ("離席", "Away"),
    "act_back": ("受付可に戻る", "Back"),
    "act_end_wrap_up": ("後処理終了", "End wrap-up"),
    "reason": ("理由", "Reason"),
    "reason_break": ("休憩", "break"),
    "reason_meeting": ("打合せ", "meeting"),
    "reason_training": ("研修", "training"),
    "my_state": ("自分の状態", "My state"),
    "operator": ("オペレーター", "Operator"),
    "extension": ("内線", "Extension"),
    "state": ("状態", "State"),
    "in_state": ("経過", "Time in state"),
    "current_call": ("対応中の通話", "Current call"),
    "no_call": ("通話はありません", "No call"),
    "caller": ("発信者番号", "Caller"),
    "language": ("言語", "Language"),
    "service": ("サービス", "Service"),
    "transfer": ("転送", "Transfer"),
    "transfer_to": ("転送先", "Transfer to"),
    "queues": ("待ち呼", "Waiting callers"),
    "queue": ("キュー", "Queue"),
    "waiting": ("待ち数", "Waiting"),
    "longest": ("最長待ち", "Longest wait"),
    "today_calls": ("本日の応答数", "Calls today"),
    "talk": ("通話時間", "Talk time"),
    "supervise": ("モニタリング", "Supervise"),
    "my_extension": ("自分の内線", "My extension"),
    "listen": ("モニター", "Listen"),
    "whisper": ("ささやき", "Whisper"),
    "barge": ("割込み", "Barge"),
    "live": ("ライブ", "live"),
    "offline": ("切断", "offline"),
    "search": ("検索", "Search"),
    "from": ("開始日時", "From"),
    "to": ("終了日時", "To"),
    "started": ("開始", "Started"),
    "duration": ("長さ", "Duration"),
    "play": ("再生", "Play"),
    "download": ("ダウンロード", "Download"),
    "results": ("件", "results"),
    "users": ("ユーザー", "Users"),
    "role": ("ロール", "Role"),
    "add_user": ("ユーザー追加", "Add user"),
    "flows": ("IVRフロー", "IVR flows"),
    "flows_reload": ("検証して再読込", "Check and reload"),
    "flows_ok": ("再読込しました", "Reloaded"),
    "version": ("版", "Version"),
    "board": ("イベント案内", "Event board"),
    "event": ("イベント", "Event"),
    "date": ("日付", "Date"),
    "status": ("状況", "Status"),
    "save": ("保存", "Save"),
    "saved": ("保存しました", "Saved"),
    "audit": ("監査ログ", "Audit log"),
    "at": ("日時", "At"),
    "actor": ("操作者", "Actor"),
    "action": ("操作", "Action"),
    "detail": ("詳細", "Detail"),
    "error": ("エラー", "Error"),
    "forbidden": ("権限がありません", "Not allowed"),
}


def lang_of(request: web.Request) -> str:
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else "ja"


def texts(lang: str) -> dict[str, str]:
    i = LANGS.index(lang)
    return {k: v[i] for k, v in TEXTS.items()}
