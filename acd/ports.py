"""What the ACD needs from other features, as ports the application provides
(madoguchi/ports.py): the ACD decides what a waiting caller is told, speaking it is the
IVR's job."""

from __future__ import annotations

from typing import Protocol


class Announcer(Protocol):
    async def render(self, text: str, language: str) -> str | None:
        """The sound of `text` spoken in `language`, as Asterisk's Playback names it (no
        extension), or None when that language cannot be spoken. Called with the same few
        texts over and over: the provider caches by text."""
        ...
