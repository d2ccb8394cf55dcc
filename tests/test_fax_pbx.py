"""The FAX settings, spool layout and the Asterisk configuration generated for FAX."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.fax import FaxSettings, fax_settings, fax_spool, load_fax_settings, parse_meta
from core.settings import load_settings
from core.yamlconf import ConfigError, Location, Node

ROOT = Path(__file__).resolve().parents[1]


def node(text: str) -> Node:
    import yaml
    return Node(yaml.safe_load(text), Location("madoguchi.yaml", 1, 1), "fax")


def test_shipped_config_has_a_fax_did(tmp_path: Path) -> None:
    s = load_settings(ROOT / "config", tmp_path)
    fax = fax_settings(s)
    assert fax.dids == ("4000",) and fax.number == "03-5555-0100"
    assert fax.header == "Madoguchi City Inquiry Center"
    assert fax.max_upload_bytes == 10 * 1024 * 1024 and fax.send_retries == 3
    assert fax_spool(s, fax) == tmp_path / "asterisk" / "fax"


def test_absent_section_means_no_fax() -> None:
    assert load_fax_settings(None) == FaxSettings()
    assert not load_fax_settings(node("{}")).enabled


@pytest.mark.parametrize(("text", "reason"), [
    ("number: '03 5555'", "'number' must be digits"),
    ("number: '1'\nheader: 'City; hall'", "'header' must be"),
    ("number: '1'\nheader: '市役所'", "'header' must be"),
    ("number: '1'\nheader: '" + "x" * 41 + "'", "'header' must be"),
    ("number: '1'\ndids: ['40a0']", "must be 2-8 digits"),
    ("number: '1'\ndids: ['4000', '4000']", "duplicate FAX DID"),
    ("dids: ['4000']", "need the centre's FAX 'number'"),
    ("retention_days: 59", "at least 60"),
    ("spool_dir: ../etc", "'spool_dir' must be one folder name"),
    ("spool_dir: /tmp", "'spool_dir' must be one folder name"),
    ("max_upload_mb: 0", "between 1 and 100"),
    ("colour: blue", "unknown field 'colour'"),
])
def test_bad_fax_section_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_fax_settings(node(text))


def test_bad_fax_section_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    main = cfg / "madoguchi.yaml"
    text = main.read_text(encoding="utf-8").replace('dids: ["4000"]', 'dids: ["4x"]')
    main.write_text(text, encoding="utf-8")
    s = load_settings(cfg, tmp_path / "state")
    with pytest.raises(ConfigError) as err:
        fax_settings(s)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if '"4x"' in ln)
    assert err.value.location is not None
    assert (err.value.location.file, err.value.location.line) == (str(main), line)


def test_meta_lines_keep_only_filtered_values() -> None:
    meta = parse_meta("id=1700000000-12\nstatus=SUCCESS\npages=3\nremotestationid=+81 3 5555\n"
                      "callerid=$(evil)\nBAD=1\nnoequals\nresolution=8031x3850\n")
    assert meta == {"id": "1700000000-12", "status": "SUCCESS", "pages": "3",
                    "remotestationid": "+81 3 5555", "resolution": "8031x3850"}
