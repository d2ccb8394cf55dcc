"""Free loopback TCP ports for tests that start a listener after a client is already retrying."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Below the e2e stack's ports (20000 and up) and the kernel's usual ephemeral range.
_LOW, _HIGH = 10000, 19999


def _ephemeral() -> range:
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """A port nobody listens on, outside the kernel's ephemeral range.

    A port from ``bind(0)`` lies inside the ephemeral range, so a client that keeps
    reconnecting to it may be given that very port as its source and connect to
    itself; the test's server then cannot bind it.
    """
    ephemeral = _ephemeral()
    for _ in range(200):
        port = random.randint(_LOW, _HIGH)  # noqa: S311 - spreads parallel runs, not a secret
        if port in ephemeral:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_LOW}-{_HIGH}")
