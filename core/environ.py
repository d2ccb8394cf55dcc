"""The environment variables madoguchi reads, all in this module.

The application reads them once, at start-up (the command line's `main`, or the engine when
it is built without them), into an `Environ` and hands that down: settings, secrets, the
console and the text-to-speech cache take it as an argument instead of looking at the
process environment themselves. Where a caller passes none (tests, a library use), `resolve`
reads the environment at that moment.

  Variable                         Default                          What it overrides
  MADOGUCHI_CONFIG                 config                           the config folder (--config)
  MADOGUCHI_STATE                  state                            the state folder (--state)
  MADOGUCHI_DATABASE_URL           engine.database_url, else        the database
                                   SQLite state/madoguchi.db
  MADOGUCHI_ASTERISK_MODE          asterisk.mode (auto)             auto | chroot | system
  MADOGUCHI_ROOTFS                 asterisk.rootfs                  the Asterisk root file system
                                   (/var/cache/madoguchi/asterisk-sid)
  MADOGUCHI_AMI_SECRET             state/secrets.json               the engine's AMI password
  MADOGUCHI_API_TOKEN              state/secrets.json               the API token
  MADOGUCHI_METRICS_TOKEN          state/secrets.json               the GET /metrics token
  MADOGUCHI_TTS_CACHE              ~/.cache/madoguchi/tts           the shared text-to-speech
                                                                    cache
  MADOGUCHI_CONSOLE_SECURE_COOKIE  unset                            1: Secure session cookie
  MADOGUCHI_CONSOLE_IDLE_MINUTES   15                               console idle timeout

An empty value counts as unset, except for MADOGUCHI_CONFIG and MADOGUCHI_STATE (an empty
folder name is the current folder) and MADOGUCHI_CONSOLE_IDLE_MINUTES (refused by the
console). The values are taken as they are here; each is checked where it is used, so an
error names the setting it overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def default_tts_cache() -> Path:
    # one cache per machine user, so each new state folder (tests, a fresh install) does not
    # synthesise the same sentences again
    return Path.home() / ".cache" / "madoguchi" / "tts"


@dataclass(frozen=True)
class Environ:
    config_dir: str = "config"
    state_dir: str = "state"
    database_url: str | None = None
    asterisk_mode: str | None = None
    rootfs: Path | None = None
    # secrets stay out of repr: an Environ may end up in a log line or a traceback
    ami_secret: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    tts_cache: Path = field(default_factory=default_tts_cache)
    console_secure_cookie: bool = False
    console_idle_minutes: str = "15"

    @classmethod
    def read(cls, source: Mapping[str, str] | None = None) -> Environ:
        """The overrides in `source` (the process environment by default)."""
        env = os.environ if source is None else source

        def text(name: str) -> str | None:
            return env.get(name) or None

        rootfs = text("MADOGUCHI_ROOTFS")
        tts_cache = text("MADOGUCHI_TTS_CACHE")
        return cls(
            config_dir=env.get("MADOGUCHI_CONFIG", "config"),
            state_dir=env.get("MADOGUCHI_STATE", "state"),
            database_url=text("MADOGUCHI_DATABASE_URL"),
            asterisk_mode=text("MADOGUCHI_ASTERISK_MODE"),
            rootfs=Path(rootfs) if rootfs else None,
            ami_secret=text("MADOGUCHI_AMI_SECRET"),
            api_token=text("MADOGUCHI_API_TOKEN"),
            metrics_token=text("MADOGUCHI_METRICS_TOKEN"),
            tts_cache=Path(tts_cache) if tts_cache else default_tts_cache(),
            console_secure_cookie=env.get("MADOGUCHI_CONSOLE_SECURE_COOKIE") == "1",
            console_idle_minutes=env.get("MADOGUCHI_CONSOLE_IDLE_MINUTES", "15"),
        )


def resolve(env: Environ | None) -> Environ:
    """The overrides a caller was handed, or the process environment's as they are now."""
    return env if env is not None else Environ.read()
