from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from ami_bridge.pbx import confgen
from core.secrets import load_or_create
from core.settings import load_settings
from core.yamlconf import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def copy_config(tmp_path: Path) -> Path:
    dest = tmp_path / "config"
    shutil.copytree(ROOT / "config", dest)
    return dest


def test_default_config_loads(tmp_path: Path) -> None:
    s = load_settings(ROOT / "config", tmp_path)
    assert [(x.id, x.did) for x in s.services] == [("city", "1000"), ("water", "2000"),
                                                   ("events", "3000")]
    assert [a.id for a in s.agents] == ["7001", "7002", "7003", "7004"]
    assert s.asterisk.ami_host == "127.0.0.1" and s.fastagi.host == "127.0.0.1"


@pytest.mark.parametrize(("old", "new", "marker", "reason"), [
    ("port: 5038", "port: 99999", "99999", "between 1 and 65535"),
    ("    queue: city\n  - id: water", "    queue: nowhere\n  - id: water", "nowhere",
     "unknown queue 'nowhere'"),
    ("trunk_match: 127.0.0.1", "trunk_match: everyone", "everyone", "must be an IP address"),
    ("  mode: auto", "  mode: auto\n  colour: blue", "colour", "unknown field 'colour'"),
    ("engine:", "engine: [", "engine: [", "YAML syntax"),
])
def test_bad_config_is_refused_with_file_and_line(tmp_path: Path, old: str, new: str,
                                                   marker: str, reason: str) -> None:
    cfg = copy_config(tmp_path)
    main = cfg / "madoguchi.yaml"
    text = main.read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new, 1)
    main.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, tmp_path / "state")
    lines = text.splitlines()
    line = next(i for i, ln in enumerate(lines, 1) if marker in ln)
    assert err.value.location is not None
    assert (err.value.location.file, err.value.location.line) == (str(main), line) or \
        reason == "YAML syntax", str(err.value)
    assert str(err.value).startswith(f"{main}:")
    assert reason in str(err.value)
    if reason != "YAML syntax":
        assert err.value.location.column == lines[line - 1].index(marker) + 1 or \
            marker == "colour"


def test_secrets_generated_once_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, ["7001", "7002"])
    mode = stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode)
    assert mode == 0o600
    second = load_or_create(tmp_path, ["7001", "7002", "7003"])
    assert first.ami_secret == second.ami_secret and len(first.ami_secret) >= 24
    assert first.sip_passwords["7001"] == second.sip_passwords["7001"]
    assert "7003" in second.sip_passwords
    assert len(set(second.sip_passwords.values())) == 3


def test_generated_asterisk_config_is_loopback_and_uses_generated_secrets(tmp_path: Path) -> None:
    s = load_settings(ROOT / "config", tmp_path)
    sec = load_or_create(tmp_path, [a.id for a in s.agents])
    files = confgen.render(s, sec, confgen.layout_for(s, chroot=True))
    assert "bindaddr = 127.0.0.1" in files["manager.conf"]
    assert f"secret = {sec.ami_secret}" in files["manager.conf"]
    assert "bind = 127.0.0.1:5060" in files["pjsip.conf"]
    assert "match = 127.0.0.1" in files["pjsip.conf"]
    assert "[anonymous]" not in files["pjsip.conf"]
    for agent in s.agents:
        assert f"password = {sec.sip_passwords[agent.id]}" in files["pjsip.conf"]
    assert "agi://127.0.0.1:4573/${MADO_SERVICE}" in files["extensions.conf"]
    assert "exten => 1000,1,Set(__MADO_SERVICE=city)" in files["extensions.conf"]
    assert "autoload=no" in files["modules.conf"]
    assert "{{" not in files["extensions.conf"].split("\n[general]")[1]
    path = confgen.write(s, sec, confgen.layout_for(s, chroot=True))
    # Asterisk reads it as another user of the folder's group; other accounts get nothing
    assert stat.S_IMODE((path.parent / "manager.conf").stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o2750
    assert "read = call,user,reporting\n" in files["manager.conf"]
    assert "write = call,originate,user,reporting\n" in files["manager.conf"]
    assert "identify_by = ip" in files["pjsip.conf"].split("[trunk]")[1].split("[trunk-")[0]


def test_environment_overrides_of_asterisk_mode_and_rootfs_keep_the_files_keys_valid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compose.yaml sets MADOGUCHI_ASTERISK_MODE while madoguchi.yaml has `mode: auto`."""
    monkeypatch.setenv("MADOGUCHI_ASTERISK_MODE", "system")
    monkeypatch.setenv("MADOGUCHI_ROOTFS", str(tmp_path / "rootfs"))
    s = load_settings(ROOT / "config", tmp_path)
    assert s.asterisk.mode == "system"
    assert s.asterisk.rootfs == tmp_path / "rootfs"
