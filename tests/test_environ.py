"""Environment overrides: read in one place (core/environ.py), handed down explicitly, with
the defaults of the variables left unset."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from console.auth import ConsoleConfig
from core.environ import Environ, default_tts_cache
from core.secrets import load_or_create
from core.settings import load_settings
from ivr.tts import Tts
from madoguchi.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("MADOGUCHI_CONFIG", "MADOGUCHI_STATE", "MADOGUCHI_DATABASE_URL",
         "MADOGUCHI_ASTERISK_MODE", "MADOGUCHI_ROOTFS", "MADOGUCHI_AMI_SECRET",
         "MADOGUCHI_API_TOKEN", "MADOGUCHI_METRICS_TOKEN", "MADOGUCHI_TTS_CACHE",
         "MADOGUCHI_CONSOLE_SECURE_COOKIE", "MADOGUCHI_CONSOLE_IDLE_MINUTES")


def test_nothing_set_gives_the_defaults() -> None:
    env = Environ.read({})
    assert env == Environ()
    assert (env.config_dir, env.state_dir) == ("config", "state")
    assert env.database_url is None and env.asterisk_mode is None and env.rootfs is None
    assert env.ami_secret is env.api_token is env.metrics_token is None
    assert env.tts_cache == default_tts_cache() == Path.home() / ".cache/madoguchi/tts"
    assert not env.console_secure_cookie and env.console_idle_minutes == "15"


def test_every_variable_is_read() -> None:
    env = Environ.read({
        "MADOGUCHI_CONFIG": "/c", "MADOGUCHI_STATE": "/s", "MADOGUCHI_DATABASE_URL": "db://x",
        "MADOGUCHI_ASTERISK_MODE": "system", "MADOGUCHI_ROOTFS": "/r",
        "MADOGUCHI_AMI_SECRET": "ami", "MADOGUCHI_API_TOKEN": "api",
        "MADOGUCHI_METRICS_TOKEN": "scrape", "MADOGUCHI_TTS_CACHE": "/t",
        "MADOGUCHI_CONSOLE_SECURE_COOKIE": "1", "MADOGUCHI_CONSOLE_IDLE_MINUTES": "30"})
    assert env == Environ("/c", "/s", "db://x", "system", Path("/r"), "ami", "api", "scrape",
                          Path("/t"), True, "30")
    assert "ami" not in repr(env) and "scrape" not in repr(env)  # secrets stay out of logs


def test_empty_values_are_unset_except_the_folders_and_the_idle_minutes() -> None:
    env = Environ.read(dict.fromkeys(NAMES, ""))
    assert (env.config_dir, env.state_dir) == ("", "")  # as before: the current folder
    assert env.database_url is None and env.asterisk_mode is None and env.rootfs is None
    assert env.ami_secret is env.api_token is env.metrics_token is None
    assert env.tts_cache == default_tts_cache()
    assert not env.console_secure_cookie
    assert env.console_idle_minutes == ""  # refused by the console, naming the variable
    assert not Environ.read({"MADOGUCHI_CONSOLE_SECURE_COOKIE": "yes"}).console_secure_cookie


def test_overrides_handed_down_win_over_the_files(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:  # the process environment plays no part when an Environ is given
        monkeypatch.setenv(name, "from-the-process")
    env = Environ(database_url="sqlite+aiosqlite:///elsewhere.db", asterisk_mode="system",
                  rootfs=tmp_path / "rootfs", ami_secret="ami", api_token="api",
                  metrics_token="scrape", tts_cache=tmp_path / "tts",
                  console_secure_cookie=True, console_idle_minutes="5")
    s = load_settings(ROOT / "config", tmp_path, env)
    assert s.database_url == "sqlite+aiosqlite:///elsewhere.db"
    assert (s.asterisk.mode, s.asterisk.rootfs) == ("system", tmp_path / "rootfs")
    sec = load_or_create(tmp_path, ["7001"], env)
    assert (sec.ami_secret, sec.api_token, sec.metrics_token) == ("ami", "api", "scrape")
    console = ConsoleConfig.from_env(env)
    assert console.secure_cookie and console.idle == timedelta(minutes=5)
    assert Tts(tmp_path / "sounds", env.tts_cache).shared == tmp_path / "tts"
    args = build_parser(Environ(config_dir="/c", state_dir="/s")).parse_args(["check"])
    assert (args.config, args.state, args.env.config_dir) == ("/c", "/s", "/c")


def test_without_overrides_the_files_and_defaults_apply(tmp_path: Path) -> None:
    s = load_settings(ROOT / "config", tmp_path, Environ())
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'madoguchi.db'}"
    assert s.asterisk.mode == "auto"
    assert s.asterisk.rootfs == Path("/var/cache/madoguchi/asterisk-sid")
    first = load_or_create(tmp_path, ["7001"], Environ())
    assert first == load_or_create(tmp_path, ["7001"], Environ())  # the file's, kept
    assert first.ami_secret and first.api_token and first.metrics_token
    console = ConsoleConfig.from_env(Environ())
    assert not console.secure_cookie and console.idle == timedelta(minutes=15)


def test_callers_handed_nothing_read_the_process_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_API_TOKEN", "token-from-env")
    monkeypatch.setenv("MADOGUCHI_TTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MADOGUCHI_CONFIG", "/etc/madoguchi")
    assert load_or_create(tmp_path, ["7001"]).api_token == "token-from-env"
    assert Tts(tmp_path / "sounds").shared == tmp_path / "cache"
    assert build_parser().parse_args(["check"]).config == "/etc/madoguchi"
