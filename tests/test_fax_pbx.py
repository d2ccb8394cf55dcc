"""The FAX settings, spool layout and the Asterisk configuration generated for FAX."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


# ---- the generated Asterisk configuration ---------------------------------------------------

@pytest.fixture
def rendered(tmp_path: Path) -> dict[str, str]:
    from ami_bridge.pbx import confgen
    from core.secrets import load_or_create

    s = load_settings(ROOT / "config", tmp_path / "state")
    sec = load_or_create(s.state_dir, [a.id for a in s.agents])
    return confgen.render(s, sec, confgen.layout_for(s, chroot=True))


def _context(text: str, name: str) -> list[str]:
    lines = text.split(f"\n[{name}]\n", 1)[1].split("\n[", 1)[0].splitlines()
    return [ln for ln in lines if ln and not ln.startswith(";")]


def test_fax_modules_and_t38_on_both_trunks(rendered: dict[str, str]) -> None:
    modules = rendered["modules.conf"]
    for module in ("res_fax.so", "res_fax_spandsp.so", "res_pjsip_t38.so", "func_env.so"):
        assert f"load = {module}\n" in modules
    pjsip = rendered["pjsip.conf"]
    for endpoint in ("trunk", "citypbx"):
        section = pjsip.split(f"\n[{endpoint}]\n", 1)[1].split("\n[", 1)[0]
        assert "t38_udptl = yes" in section and "t38_udptl_ec = redundancy" in section
    assert rendered["udptl.conf"] == "[general]\nudptlstart = 4000\nudptlend = 4999\n"


def test_fax_did_goes_to_receivefax_and_the_station_is_ours(rendered: dict[str, str]) -> None:
    text = rendered["extensions.conf"]
    assert "exten => 4000,1,Set(__MADO_DID=4000)\n same => n,Goto(mado-fax-in,s,1)" in text
    fax_in = _context(text, "mado-fax-in")
    assert " same => n,ReceiveFAX(/srv/madoguchi/fax/in/${MADO_FAX_ID}.tif,f)" in fax_in
    station = [" same => n,Set(FAXOPT(localstationid)=03-5555-0100)",
               " same => n,Set(FAXOPT(headerinfo)=Madoguchi City Inquiry Center)"]
    for context in ("mado-fax-in", "mado-fax-out"):
        lines = _context(text, context)
        assert all(line in lines for line in station), context
    # the .meta's last line is `ended`, after every other key of the contract
    meta = [ln.split(")=", 1)[1].split("=", 1)[0] for ln in fax_in if "FILE(" in ln]
    assert meta == ["id", "did", "callerid", "started", "status", "statusstr", "error",
                    "pages", "resolution", "rate", "remotestationid", "ended"]
    out = _context(text, "mado-fax-out")
    assert any("SendFAX(/srv/madoguchi/fax/out/${FILTER(0-9a-f,${MADO_FAX_JOB})}.tif,fz)"
               in ln for ln in out)
    assert out[-2] == " same => n,UserEvent(MadoFax,Job: ${MADO_FAX_JOB})"


def test_remote_values_are_filtered_before_reaching_a_file(rendered: dict[str, str]) -> None:
    text = rendered["extensions.conf"]
    for context in ("mado-fax-in", "mado-fax-out"):
        for line in _context(text, context):
            if "FILE(" in line:
                value = line.split(")=", 1)[1].split("=", 1)[1]
                assert value.startswith(("${FILTER(", "${MADO_FAX_", "${EPOCH}", "ANSWER")), \
                    line


def test_no_fax_section_means_no_route_and_no_station(tmp_path: Path) -> None:
    from ami_bridge.pbx import confgen
    from core.secrets import load_or_create

    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    main = cfg / "madoguchi.yaml"
    text = main.read_text(encoding="utf-8")
    main.write_text(text[:text.index("\n# FAX:")] + "\n", encoding="utf-8")
    s = load_settings(cfg, tmp_path / "state")
    sec = load_or_create(s.state_dir, [a.id for a in s.agents])
    out = confgen.render(s, sec, confgen.layout_for(s, chroot=True))["extensions.conf"]
    assert "mado-fax-in,s,1" not in out and "FAXOPT(localstationid)" not in out


def test_a_fax_did_that_is_also_a_service_is_refused(tmp_path: Path) -> None:
    from ami_bridge.pbx import confgen
    from ami_bridge.pbx.conffile import ConfWriteError
    from core.secrets import load_or_create

    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    main = cfg / "madoguchi.yaml"
    main.write_text(main.read_text(encoding="utf-8").replace('dids: ["4000"]',
                                                              'dids: ["1000"]'), encoding="utf-8")
    s = load_settings(cfg, tmp_path / "state")
    sec = load_or_create(s.state_dir, [a.id for a in s.agents])
    with pytest.raises(ConfWriteError, match="also a service's"):
        confgen.render(s, sec, confgen.layout_for(s, chroot=True))


def test_the_spool_is_created_private(tmp_path: Path) -> None:
    from ami_bridge.pbx import confgen
    from core.secrets import load_or_create

    s = load_settings(ROOT / "config", tmp_path / "state")
    sec = load_or_create(s.state_dir, [a.id for a in s.agents])
    layout = confgen.layout_for(s, chroot=True)
    assert layout.private == ("fax", "fax/in", "fax/out")
    confgen.write(s, sec, layout)
    for sub in layout.private:
        assert (layout.local / sub).stat().st_mode & 0o777 == 0o700


# ---- the FAX dialer ---------------------------------------------------------------------------

class _Ami:
    def __init__(self, response: dict[str, str], cause: str = "") -> None:
        self.response = response
        self.cause = cause
        self.actions: list[dict[str, str]] = []
        self.handlers: list[Any] = []

    def subscribe(self, handler: Any) -> None:
        self.handlers.append(handler)

    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]:
        self.actions.append(dict(action))
        if self.cause:
            for h in self.handlers:
                await h({"Event": "Hangup", "Uniqueid": action["ChannelId"],
                         "Cause": self.cause})
        return self.response


def _dialer(tmp_path: Path, ami: _Ami) -> tuple[Any, Path]:
    from ami_bridge.fax import FaxDialer
    from ami_bridge.pbx.confgen import Layout

    fax = load_fax_settings(node("number: '03-5555-0100'\nheader: 'City'\ndids: ['4000']"))
    out = tmp_path / "asterisk" / "fax" / "out"
    out.mkdir(parents=True)
    return FaxDialer(ami, Layout(tmp_path / "asterisk", "/srv/madoguchi"), fax), out


JOB = "0123456789abcdef0123456789abcdef"


async def test_the_dialer_originates_to_mado_fax_out_with_the_job(tmp_path: Path) -> None:
    ami = _Ami({"Response": "Success", "Reason": "4"})
    dialer, out = _dialer(tmp_path, ami)
    tiff = out / f"{JOB}.tif"
    tiff.write_bytes(b"II*\0")
    (out / f"{JOB}.result").write_text("ended=1\n")  # the previous attempt's
    attempt = await dialer.send(JOB, tiff, "PJSIP/0120555000@citypbx")
    assert attempt.answered and attempt.reason == "4"
    assert not attempt.result.exists()  # the dialplan writes it when the call ends
    action = ami.actions[0]
    assert (action["Channel"], action["Context"], action["Exten"]) == \
        ("PJSIP/0120555000@citypbx", "mado-fax-out", "send")
    assert action["Variable"] == f"MADO_FAX_JOB={JOB}" and action["CallerID"] == "<0355550100>"
    assert tiff.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("reason", "cause", "status"), [
    ("0", "17", "BUSY"), ("3", "", "NOANSWER"), ("0", "19", "NOANSWER"),
    ("8", "34", "CONGESTION")])
async def test_an_unanswered_attempt_has_its_result_written(
        tmp_path: Path, reason: str, cause: str, status: str) -> None:
    from ami_bridge.fax import finished

    dialer, out = _dialer(tmp_path, _Ami({"Response": "Failure", "Reason": reason}, cause))
    tiff = out / f"{JOB}.tif"
    tiff.write_bytes(b"II*\0")
    attempt = await dialer.send(JOB, tiff, "PJSIP/0120555000@citypbx")
    assert not attempt.answered and finished(attempt.result)
    result = parse_meta(attempt.result.read_text())
    assert (result["dialstatus"], result["status"], result["pages"]) == (status, "FAILED", "0")
    assert attempt.result.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("job", "name", "dial"), [
    ("../../etc/passwd", None, "PJSIP/0120555000@citypbx"),
    (JOB, "other.tif", "PJSIP/0120555000@citypbx"),
    (JOB, None, "Local/s@mado-fax-out"),
    (JOB, None, "PJSIP/0120555000@citypbx,,T"),
])
async def test_the_dialer_refuses_what_it_did_not_make(tmp_path: Path, job: str,
                                                       name: str | None, dial: str) -> None:
    from ami_bridge.fax import FaxSendError

    ami = _Ami({"Response": "Success"})
    dialer, out = _dialer(tmp_path, ami)
    tiff = out / (name or f"{JOB}.tif")
    tiff.write_bytes(b"II*\0")
    with pytest.raises(FaxSendError):
        await dialer.send(job, tiff, dial)
    assert not ami.actions
