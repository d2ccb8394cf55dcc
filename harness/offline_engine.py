"""An engine with no Asterisk behind it: the shipped config copied with free loopback ports."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from ami_bridge.pbx.confgen import layout_for
from core.secrets import load_or_create
from core.settings import load_settings
from harness.ports import free_port
from madoguchi.engine import Engine

ROOT = Path(__file__).resolve().parents[1]


def offline_config(tmp_path: Path, ami_port: int | None = None) -> Path:
    """`tmp_path/config`, where AMI points at a port nobody listens on (unless a test opens
    `ami_port` itself) and FastAGI at a free one."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    main_file = config / "madoguchi.yaml"
    data = yaml.safe_load(main_file.read_text(encoding="utf-8"))
    data["asterisk"]["ami"]["port"] = ami_port if ami_port is not None else free_port()
    data["engine"]["fastagi"]["port"] = free_port()
    main_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config


def offline_engine(tmp_path: Path, ami_port: int | None = None) -> Engine:
    settings = load_settings(offline_config(tmp_path, ami_port), tmp_path / "state")
    secrets = load_or_create(settings.state_dir, [a.id for a in settings.agents])
    return Engine(settings, secrets, layout_for(settings, chroot=False))
