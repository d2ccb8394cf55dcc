"""Booking numbers: short, read out on the phone and typed back, so an alphabet without the
look-alikes 0/O, 1/I/L; random (secrets), so nobody guesses someone else's; and a check
character, so a mistyped number is told apart from an unknown one."""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 characters: a prime, for the check
BODY_LENGTH = 8  # 31**8 ≈ 8.5e11 numbers
LENGTH = BODY_LENGTH + 1
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def check_char(body: str) -> str:
    """Weighted sum modulo 31 (weights 1..n): a prime modulus catches every single wrong
    character and every swap of two neighbours."""
    total = sum((i + 1) * _INDEX[c] for i, c in enumerate(body))
    return ALPHABET[total % len(ALPHABET)]


def new_number() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_char(body)


def normalise(raw: str) -> str | None:
    """The number as stored (upper case, no spaces or hyphens), or None when it cannot be
    one: wrong length, a character outside the alphabet, or a failed check."""
    text = "".join(raw.split()).replace("-", "").upper()
    if len(text) != LENGTH or any(c not in _INDEX for c in text):
        return None
    return text if check_char(text[:-1]) == text[-1] else None


def display(number: str) -> str:
    """Grouped for reading out: XXXX-XXXXX."""
    return f"{number[:4]}-{number[4:]}"
