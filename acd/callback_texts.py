"""What a waiting caller hears about the callback, in Japanese or English (pure: the IVR's
TTS speaks it through the Announcer port)."""

from __future__ import annotations

_TEXTS: dict[str, dict[str, str]] = {
    "offer": {
        "ja": "順番を保ったまま、折り返しのお電話をご希望の方は、{key}を押してください。",
        "en": "To keep your place in line and be called back, press {key}.",
    },
    "confirm": {
        "ja": "{digits}に折り返しお電話します。"
              "よろしければ1を、別の番号にするには2を押してください。",
        "en": "We will call you back at {digits}. Press 1 to confirm, or 2 for another number.",
    },
    "enter": {
        "ja": "折り返し先のお電話番号を入力し、最後にシャープを押してください。",
        "en": "Please enter the number to call you back at, then press the hash key.",
    },
    "refused": {
        "ja": "申し訳ありません。その番号にはおかけできません。",
        "en": "Sorry, we cannot call that number.",
    },
    "duplicate": {
        "ja": "このお電話番号には、すでに折り返しのご予約があります。このままお待ちください。",
        "en": "A callback to this number is already booked. Please stay on the line.",
    },
    "taken": {
        "ja": "承りました。順番はそのまま保たれます。"
              "オペレーターからお電話しますので、お電話をお切りください。",
        "en": "Thank you. You keep your place in line, and an operator will call you back. "
              "You may hang up now.",
    },
    "back": {
        "ja": "このままお待ちください。",
        "en": "Please stay on the line.",
    },
}


def spoken_digits(number: str) -> str:
    """A number read digit by digit (TTS would read 09012345678 as one large number)."""
    return " ".join(number)


def say(what: str, language: str, **fields: str) -> str:
    texts = _TEXTS[what]
    return texts.get(language, texts["ja"]).format(**fields)
