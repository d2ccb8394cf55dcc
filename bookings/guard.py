"""The public page's protections: a CSRF token bound to a cookie, and a rate limit per
client address. No login exists there, so these stand in for the console's session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from .errors import CsrfRefused, RateLimited

COOKIE = "madoguchi_book"
COOKIE_BYTES = 24
MAX_CLIENTS = 10_000  # addresses remembered; the oldest forgotten first


class Csrf:
    """The form's token is an HMAC of the cookie's random value under a key of this
    process: a page of another site can neither read the cookie nor compute the token, and
    a cookie set by someone else (a sibling domain) fails without the key."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(COOKIE_BYTES)

    def token(self, cookie: str) -> str:
        return hmac.new(self.key, cookie.encode(), hashlib.sha256).hexdigest()

    def check(self, cookie: str | None, token: object) -> None:
        if not cookie or not isinstance(token, str) or len(cookie) > 64 \
                or not hmac.compare_digest(self.token(cookie), token):
            raise CsrfRefused()


class RateLimit:
    """At most `per_minute` requests per address in any 60 s (a sliding token bucket)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> None:
        now = self.clock()
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            raise RateLimited(max(1, int((1.0 - tokens) / self.rate) + 1))
        self._buckets[client] = (tokens - 1.0, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
