"""Secrets generated at first run into the state folder (mode 0600), never committed.

Environment variables win over the file so that deployments can inject their own.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    ami_secret: str
    api_token: str
    sip_passwords: dict[str, str]
    # a read-only AMI login for diagnostics and observers (tests, benchmarks); no write class
    ami_monitor_secret: str = ""


def load_or_create(state_dir: Path, agent_ids: list[str]) -> Secrets:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "secrets.json"
    data: dict[str, object] = {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
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
    raw_sip = data.get("sip_passwords")
    sip: dict[str, str] = dict(raw_sip) if isinstance(raw_sip, dict) else {}
    for agent in agent_ids:
        if agent not in sip:
            sip[agent] = secrets.token_urlsafe(18)
            changed = True
    data["sip_passwords"] = sip
    if changed:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    return Secrets(
        ami_secret=os.environ.get("MADOGUCHI_AMI_SECRET") or ami,
        api_token=os.environ.get("MADOGUCHI_API_TOKEN") or token,
        sip_passwords=sip,
        ami_monitor_secret=monitor,
    )
