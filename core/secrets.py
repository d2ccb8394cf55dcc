"""Secrets generated at first run into the state folder (mode 0600), never committed.

Environment variables (core/environ.py) win over the file so that deployments can inject
their own.
The FastAGI secret has no such override: the generated dialplan carries it, so it lives where
`madoguchi secrets --rotate` and the engine can both find it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .environ import Environ, resolve
from .files import write_durably
from .statefile import read_json, state_error
from .yamlconf import ConfigError

log = logging.getLogger(__name__)
FASTAGI_KEY = "fastagi_secret"
_TEXT_KEYS = ("ami_secret", "api_token", "ami_monitor_secret", "metrics_token")

# the FastAGI secret's shape: dialplan-safe (no comma, quote, bracket or $) and long enough
# to be unguessable; anything else could break out of a dialplan argument
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class Secrets:
    ami_secret: str
    api_token: str
    sip_passwords: dict[str, str]
    # a read-only AMI login for diagnostics and observers (tests, benchmarks); no write class
    ami_monitor_secret: str = ""
    # first argument of every AGI() call in the generated dialplan (ami_bridge/agi_auth.py)
    fastagi_secret: str = ""
    # Prometheus' scrape token: opens GET /metrics and nothing else (console/auth.py)
    metrics_token: str = ""


def _path(state_dir: Path) -> Path:
    return state_dir / "secrets.json"


def _read(path: Path) -> dict[str, object]:
    """The secrets on disk ({} without a file). A damaged file is a ConfigError and is never
    replaced: new secrets would no longer match what Asterisk and the phones hold. A missing
    entry is generated (an older version did not have it)."""
    if not path.exists():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise state_error(path, f"must hold a JSON object, not {type(data).__name__}")
    fix = "fix it, or delete the entry to have a new one generated"
    for key in _TEXT_KEYS:
        if key in data and not (isinstance(data[key], str) and data[key]):
            raise state_error(path, f"{key!r} must be a non-empty string; {fix}")
    fastagi = data.get(FASTAGI_KEY)
    if FASTAGI_KEY in data and not (isinstance(fastagi, str) and KEY_PATTERN.fullmatch(fastagi)):
        raise state_error(path, f"{FASTAGI_KEY!r} must be {KEY_PATTERN.pattern}; {fix}")
    sip = data.get("sip_passwords")
    if "sip_passwords" in data and not (
            isinstance(sip, dict) and all(isinstance(v, str) and v for v in sip.values())):
        raise state_error(path, "'sip_passwords' must map extensions to non-empty strings; "
                          f"{fix}")
    return data


def _write(path: Path, data: dict[str, object]) -> None:
    """Replace the file in one step: a reader sees the old content or the new, never half."""
    write_durably(path, json.dumps(data, indent=2), mode=0o600)


def _new_fastagi_secret() -> str:
    return secrets.token_urlsafe(32)


def load_or_create(state_dir: Path, agent_ids: list[str], env: Environ | None = None) -> Secrets:
    """The state folder's secrets, missing ones generated and saved; `env`'s overrides (read
    now when not given) win over the file's AMI secret, API token and metrics token."""
    env = resolve(env)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = _path(state_dir)
    data = _read(path)
    changed = False

    def _get(key: str) -> str:
        nonlocal changed
        value = data.get(key)
        if not isinstance(value, str) or not value:
            value = secrets.token_urlsafe(24)
            data[key] = value
            changed = True
        return value

    ami = _get("ami_secret")
    token = _get("api_token")
    monitor = _get("ami_monitor_secret")
    metrics = _get("metrics_token")
    fastagi = data.get(FASTAGI_KEY)
    if not isinstance(fastagi, str):  # _read refused any other value
        fastagi = data[FASTAGI_KEY] = _new_fastagi_secret()
        changed = True
    raw_sip = data.get("sip_passwords")
    sip: dict[str, str] = dict(raw_sip) if isinstance(raw_sip, dict) else {}
    for agent in agent_ids:
        if agent not in sip:
            sip[agent] = secrets.token_urlsafe(18)
            changed = True
    data["sip_passwords"] = sip
    if changed:
        _write(path, data)
    os.chmod(path, 0o600)
    return Secrets(
        ami_secret=env.ami_secret or ami,
        api_token=env.api_token or token,
        sip_passwords=sip,
        fastagi_secret=fastagi,
        ami_monitor_secret=monitor,
        metrics_token=env.metrics_token or metrics,
    )


def rotate_fastagi_secret(state_dir: Path) -> str:
    """Replace the FastAGI secret, keeping every other secret; returns the new one."""
    path = _path(state_dir)
    data = _read(path)
    new = _new_fastagi_secret()
    data[FASTAGI_KEY] = new
    _write(path, data)
    return new


def fastagi_secret_watch(state_dir: Path) -> Callable[[], str | None]:
    """A function returning the FastAGI secret on disk when secrets.json changed since its
    last call (None otherwise): a stat per call, a read only after a change."""
    path = _path(state_dir)

    def stamp() -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    seen = stamp()

    def changed() -> str | None:
        nonlocal seen
        now = stamp()
        if now is None or now == seen:
            return None
        seen = now
        try:
            value = _read(path).get(FASTAGI_KEY)
        except ConfigError as exc:  # half written or damaged: the secret in use stays
            log.warning("FastAGI secret not reloaded: %s", exc)
            return None
        return value if isinstance(value, str) else None

    return changed
