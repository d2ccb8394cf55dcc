"""Letters on a phone keypad (ITU-T E.161): a booking number with letters is keyed by the
key that carries each letter, so what arrives is digits only, and several numbers can
arrive as the same digits (A, B, C and 2 are all 2)."""

from __future__ import annotations

_KEYS = {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS",
         "8": "TUV", "9": "WXYZ"}
_DIGIT_OF = {letter: key for key, letters in _KEYS.items() for letter in letters}


def keypad_digits(text: str) -> str:
    """The keys that type `text` (letters in any case, digits as themselves); anything
    else cannot be keyed and raises ValueError."""
    out = []
    for c in text.upper():
        if c.isascii() and c.isdigit():
            out.append(c)
        elif c in _DIGIT_OF:
            out.append(_DIGIT_OF[c])
        else:
            raise ValueError(f"{c!r} is on no key of a phone keypad")
    return "".join(out)
