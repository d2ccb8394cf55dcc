"""The Asterisk configuration writer: every generated file reads back as what was meant, and
a value that would cut an option short or add configuration is refused with where it was."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami_bridge.pbx import confgen
from ami_bridge.pbx.conffile import (
    ADDRESS,
    DIGITS,
    ID,
    PATH,
    Comment,
    ConfWriteError,
    Field,
    Kind,
    Option,
    Place,
    Section,
    exten,
    fill,
    render,
    same,
)
from core.secrets import Secrets, load_or_create
from core.settings import Settings, load_settings
from core.yamlconf import ConfigError
from madoguchi.cli import main

ROOT = Path(__file__).resolve().parents[1]

Parsed = list[tuple[str, list[tuple[str, str]]]]


def parse(text: str) -> Parsed:
    """What Asterisk's reader makes of a file: `;` starts a comment, `[name]` a section and
    every other line is `key = value` or `key => value` inside one."""
    assert "\r" not in text and "\x00" not in text
    out: Parsed = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            assert line.endswith("]") and line.count("[") == 1, f"line {number}: {raw!r}"
            out.append((line[1:-1], []))
            continue
        assert "=" in line and out, f"line {number} is no option in a section: {raw!r}"
        key, _, value = line.partition("=")
        out[-1][1].append((key.strip(), value.removeprefix(">").strip()))
    return out


def meant(sections: list[Section]) -> Parsed:
    return [(s.name, [(o.key, str(o.value)) for o in s.items if isinstance(o, Option)])
            for s in sections]


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Settings, Secrets]:
    s = load_settings(ROOT / "config", tmp_path / "state")
    return s, load_or_create(s.state_dir, [a.id for a in s.agents])


def _variants(s: Settings) -> list[tuple[Settings, bool]]:
    """The shipped config in a chroot, and with a fixed phone and no city PBX on the host."""
    fixed = (replace(s.agents[0], contact="sip:127.0.0.1:5071"), *s.agents[1:])
    return [(s, True), (replace(s, agents=fixed, transfers=replace(s.transfers, pbx_host=None)),
                        False)]


# ---- generated files read back -------------------------------------------------------------

def test_every_generated_file_reads_back_as_its_sections(
        loaded: tuple[Settings, Secrets]) -> None:
    for s, chroot in _variants(loaded[0]):
        layout = confgen.layout_for(s, chroot)
        files = confgen.render(s, loaded[1], layout)
        by_file = confgen.sections(s, loaded[1], layout)
        for name, sections in by_file.items():
            assert parse(files[name]) == meant(sections), name
        assert set(files) == {*by_file, "extensions.conf", *confgen.EMPTY_FILES}
        assert all(files[name] == "" for name in confgen.EMPTY_FILES)


def test_manager_conf_keeps_its_logins_and_event_filters(
        loaded: tuple[Settings, Secrets]) -> None:
    s, sec = loaded
    files = confgen.render(s, sec, confgen.layout_for(s, chroot=True))
    login = [("deny", "0.0.0.0/0.0.0.0"), ("permit", "127.0.0.1/255.255.255.255")]
    assert parse(files["manager.conf"]) == [
        ("general", [("enabled", "yes"), ("bindaddr", "127.0.0.1"), ("port", "5038"),
                     ("displayconnects", "no"), ("timestampevents", "yes")]),
        ("madoguchi", [("secret", sec.ami_secret), *login,
                       ("read", "call,user,reporting"),
                       ("write", "call,originate,user,reporting"), ("writetimeout", "5000"),
                       *((f"eventfilter(action(include),name({e}))", "")
                         for e in confgen.ENGINE_EVENTS)]),
        ("madoguchi-monitor", [("secret", sec.ami_monitor_secret), *login,
                               ("read", "call,user,dtmf,reporting,dialplan,agi"),
                               ("write", ""), ("writetimeout", "5000")]),
    ]
    assert "\neventfilter(action(include),name(Hangup)) =\n" in files["manager.conf"]
    assert "\nwrite =\n" in files["manager.conf"]


def test_pjsip_conf_has_the_trunk_the_city_pbx_and_each_operator(
        loaded: tuple[Settings, Secrets]) -> None:
    s, sec = loaded
    pjsip = parse(confgen.render(s, sec, confgen.layout_for(s, chroot=True))["pjsip.conf"])
    names = ["global", "transport-udp", "trunk", "trunk-identify", "citypbx", "citypbx"]
    for a in s.agents:
        names += [a.id, f"{a.id}-auth", a.id]
    assert [name for name, _ in pjsip] == names
    assert dict(pjsip[3][1])["match"] == "127.0.0.1"
    assert dict(pjsip[5][1])["contact"] == "sip:127.0.0.1:5090"
    auth = dict(pjsip[7][1])
    assert (auth["username"], auth["password"]) == ("7001", sec.sip_passwords["7001"])


def test_the_dialplan_routes_each_did_and_fills_every_field(
        loaded: tuple[Settings, Secrets]) -> None:
    s, sec = loaded
    text = confgen.render(s, sec, confgen.layout_for(s, chroot=True))["extensions.conf"]
    contexts = dict(parse(text))
    routes = []
    for svc in s.services:
        routes += [("exten", f"{svc.did},1,Set(__MADO_SERVICE={svc.id})"),
                   ("same", f"n,Set(__MADO_DID={svc.did})"),
                   ("same", f"n,Set(__MADO_QUEUE={svc.queue})"),
                   ("same", "n,Goto(mado-inbound,s,1)")]
    routes += [("exten", "4000,1,Set(__MADO_DID=4000)"),  # the FAX DID: ReceiveFAX
               ("same", "n,Goto(mado-fax-in,s,1)")]
    assert contexts["from-trunk"][:len(routes)] == routes
    assert contexts["from-trunk"][len(routes):] == [("exten", "_X.,1,Hangup(1)"),
                                                    ("exten", "i,1,Hangup(1)")]
    agi = [v for lines in contexts.values() for k, v in lines if "AGI(" in v]
    # the service's IVR, the survey, the callback offer, override, feature codes, transfers
    assert len(agi) == 6
    assert all("AGI(agi://127.0.0.1:4573/" in v and f",{sec.fastagi_secret}," in v
               for v in agi)
    assert "MixMonitor(/srv/madoguchi/recordings/failopen/" in text
    assert "{{" not in text.split("\n[general]")[1]


# ---- the writer itself ---------------------------------------------------------------------

def balanced(text: str) -> bool:
    opened = []
    for ch in text:
        if ch in "([{":
            opened.append(ch)
        elif ch in ")]}":
            if not opened or opened.pop() + ch not in ("()", "[]", "{}"):
                return False
    return not opened


_NAME = st.from_regex(r"[A-Za-z0-9_.@+-]{1,12}", fullmatch=True)
_KEY = st.from_regex(r"[A-Za-z0-9_.(),/-]{1,16}", fullmatch=True).filter(balanced)
_VALUE = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"),
                               blacklist_characters=";"), max_size=24).map(str.strip)
_COMMENT = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
                   max_size=24)
_SECTIONS = st.lists(st.builds(
    Section, _NAME,
    st.lists(st.one_of(st.builds(Option, _KEY, _VALUE.filter(balanced),
                                 st.sampled_from([" = ", " => "])),
                       st.builds(Comment, _COMMENT)), max_size=5),
    st.lists(_COMMENT, max_size=2)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(_SECTIONS)
def test_whatever_the_writer_accepts_reads_back_the_same(sections: list[Section]) -> None:
    assert parse(render("x.conf", sections)) == meant(sections)


_BAD = ["\n", "\r", "\x00", ";", "\x85", "\u2028", "\x1b", "\ufeff", "\ud800"]


@pytest.mark.parametrize("bad", _BAD)
def test_every_part_of_a_file_refuses_line_breaks_controls_and_semicolons(bad: str) -> None:
    code = f"U+{ord(bad):04X}"
    cases = [
        ([Section(f"ok{bad}")], "x.conf ", "section name"),
        ([Section("s", [Option(f"k{bad}", "v")])], "x.conf [s] ", "key"),
        ([Section("s", [Option("k", f"v{bad}x")])], "x.conf [s] k: ", "value"),
    ]
    if bad != ";":  # a comment may say ';'
        cases += [([Section("s", [Comment(f"a{bad}b")])], "x.conf [s]: ", "comment"),
                  ([Section("s", comments=[f"a{bad}b"])], "x.conf [s]: ", "comment")]
    for sections, where, what in cases:
        with pytest.raises(ConfWriteError) as err:
            render("x.conf", sections)
        message = str(err.value)
        assert message.startswith(f"cannot write {where}"), message
        assert f"the {what} contains {code}" in message
        assert message.isprintable()  # one line, the character named, not printed
        assert isinstance(err.value, ConfigError) and err.value.location is None


@pytest.mark.parametrize(("sections", "reason"), [
    ([Section("a[b]")], "section name contains U+005B (left square bracket)"),
    ([Section("s", [Option("#include", "x")])], "key contains U+0023"),
    ([Section("s", [Option("a=b", "x")])], "key contains U+003D"),
    ([Section("s", [Option("k", " padded")])], "starts or ends with a space"),
    ([Section("s", [Option("k", "v", " := ")])], "unknown separator"),
    ([Section("")], "section name is empty"),
])
def test_section_names_and_keys_are_plain(sections: list[Section], reason: str) -> None:
    with pytest.raises(ConfWriteError, match=re.escape(reason)):
        render("x.conf", sections)


# ---- brackets ------------------------------------------------------------------------------

_BRACKET_REFUSAL = r"brackets \( \) \[ \] \{ \} must be balanced$"


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("()[]{}a"), min_size=1, max_size=12))
def test_a_value_is_written_exactly_when_its_brackets_balance(value: str) -> None:
    sections = [Section("s", [Option("k", value)])]
    if balanced(value):
        assert parse(render("x.conf", sections)) == meant(sections)
    else:
        with pytest.raises(ConfWriteError, match=r"^cannot write x.conf \[s\] k: the value "
                           r"contains U\+00(28|29|5B|5D|7B|7D) .*" + _BRACKET_REFUSAL):
            render("x.conf", sections)


@pytest.mark.parametrize(("value", "char", "at", "why"), [
    ("verbose(1", "(", 8, "it is never closed; "),
    ("a)b", ")", 2, ""),
    ("(a]", "]", 3, ""),
    ("{a(b}c)", "}", 5, ""),
    ("[a](b", "(", 4, "it is never closed; "),
])
def test_an_unbalanced_bracket_is_named_with_where_it_is(value: str, char: str, at: int,
                                                          why: str) -> None:
    with pytest.raises(ConfWriteError) as err:
        render("x.conf", [Section("s", [Option("k", value)])])
    assert str(err.value) == (
        f"cannot write x.conf [s] k: the value contains U+{ord(char):04X} "
        f"({unicodedata.name(char).lower()}) at character {at}; {why}brackets ( ) [ ] {{ }} "
        "must be balanced")


def test_keys_need_balanced_brackets() -> None:
    assert render("m.conf", [Section("s", [Option("eventfilter(action(include),name(X))", "")])])
    with pytest.raises(ConfWriteError, match=r"^cannot write m.conf \[s\] eventfilter\(name\(X\): "
                       r"the key contains U\+0028 .* never closed"):
        render("m.conf", [Section("s", [Option("eventfilter(name(X)", "")])])


def test_dialplan_lines_need_balanced_brackets() -> None:
    at = Place("extensions.conf", "ctx", "thing")
    assert same(at, "Set", "X=${IF($[1 > 0]?a:b)}").text == \
        " same => n,Set(X=${IF($[1 > 0]?a:b)})"
    for args in ("X=a)", "X=${Y", "X=$[1]]", "X=(}"):
        with pytest.raises(ConfWriteError, match=r"^cannot write extensions.conf \[ctx\] thing: "
                           r"the dialplan line contains .*" + _BRACKET_REFUSAL):
            same(at, "Set", args)


def test_template_lines_need_balanced_brackets_but_comments_may_say_anything() -> None:
    assert fill("e.conf", "; (a ]\n[c]\n ; {b\nexten => s,1,NoOp(x)\n", {})
    with pytest.raises(ConfWriteError, match=r"^cannot write e.conf: the template line 3 "
                       r"contains U\+0028 .* never closed"):
        fill("e.conf", "; ok\n[c]\nexten => s,1,NoOp(x\n", {})
    with pytest.raises(ConfWriteError, match=r"the template line 2 contains U\+005D .* "
                       r"at character 30"):
        fill("e.conf", "[c]\n same => n,GotoIf($[${X} > 1]]?a)\n", {})


# ---- dialplan values and lines ------------------------------------------------------------

@pytest.mark.parametrize(("kind", "value", "char"), [
    (ID, "city,1", ","), (ID, "city)", ")"), (ID, "ci(ty", "("), (ID, "${EXTEN}", "$"),
    (ID, "a b", " "), (ID, "", ""), (DIGITS, "1000a", "a"), (DIGITS, "１０", "１"),
    (ADDRESS, "127.0.0.1:4573,x", ","), (ADDRESS, "host/path", "/"),
    (PATH, "/srv/mado guchi", " "), (PATH, "/srv/a,b", ","), (PATH, "/srv/${X}", "$"),
    (PATH, "relative/path", ""), (PATH, "/srv/a\nb", "\n"), (PATH, "/srv/a;b", ";"),
])
def test_dialplan_values_must_be_their_kind(kind: Kind, value: str, char: str) -> None:
    at = Place("extensions.conf", "ctx", "thing")
    with pytest.raises(ConfWriteError) as err:
        exten(at, Field(DIGITS, "1000"), "1", "Set", "X=", Field(kind, value))
    message = str(err.value)
    assert message.startswith("cannot write extensions.conf [ctx] thing: the value ")
    if char:
        assert f"contains U+{ord(char):04X}" in message
    else:
        assert "is empty" in message or f"must be {kind.description}" in message


def test_dialplan_lines_are_built_from_checked_parts() -> None:
    at = Place("extensions.conf", "from-trunk", "service 'city'")
    did = Field(DIGITS, "1000", "did")
    assert exten(at, did, "1", "Set", "__MADO_SERVICE=", Field(ID, "city")).text == \
        "exten => 1000,1,Set(__MADO_SERVICE=city)"
    assert same(at, "Goto", "mado-inbound,s,1").text == " same => n,Goto(mado-inbound,s,1)"
    with pytest.raises(ConfWriteError, match=r"\[from-trunk\] did: the value contains U\+003B"):
        exten(at, Field(DIGITS, "10;00", "did"), "1", "NoOp", "")
    with pytest.raises(ConfWriteError, match="not an application name"):
        same(at, "Set(x)\nexten", "")
    with pytest.raises(ConfWriteError, match="not a priority"):
        same(at, "NoOp", "", priority="1,Hangup")
    with pytest.raises(ConfWriteError, match="dialplan line contains U\\+000A"):
        same(at, "NoOp", "x\nexten => 1,1,Dial(PJSIP/evil)")


def test_the_template_is_filled_once_and_completely() -> None:
    template = "; {{...}} marks a field\n[c]\nexten => s,1,AGI(agi://{{a}}/x)\n"
    assert fill("e.conf", template, {"a": Field(ADDRESS, "127.0.0.1:4573")}) == \
        template.replace("{{a}}", "127.0.0.1:4573")
    with pytest.raises(ConfWriteError, match=r"^cannot write e.conf \{\{a\}\}: the template "
                       "field has no value$"):
        fill("e.conf", template, {})
    with pytest.raises(ConfWriteError, match=r"^cannot write e.conf \{\{a\}\}: the value "
                       "contains U\\+002C"):
        fill("e.conf", template, {"a": Field(ADDRESS, "h,1")})
    with pytest.raises(ConfWriteError, match="line 2 of the template has"):
        fill("e.conf", "[c]\nexten => s,1,NoOp({{ a }})\n", {"a": Field(ID, "x")})


# ---- each value from outside, refused with where it goes -----------------------------------

def _poison(s: Settings, sec: Secrets, field: str, bad: str) -> tuple[Settings, Secrets]:
    agents, services, a = s.agents, s.services, s.asterisk
    if field == "agent contact":
        return replace(s, agents=(replace(agents[0], contact=f"sip:10.0.0.1{bad}x"),
                                  *agents[1:])), sec
    if field == "trunk match":
        return replace(s, asterisk=replace(a, trunk_match=f"10.0.0.1{bad}x")), sec
    if field == "city pbx":
        return replace(s, transfers=replace(s.transfers, pbx_host=f"10.0.0.1{bad}x")), sec
    if field == "sip password":
        return s, replace(sec, sip_passwords={**sec.sip_passwords, "7001": f"pw{bad}x"})
    if field == "ami secret":
        return s, replace(sec, ami_secret=f"pw{bad}x")
    if field == "fastagi secret":
        return s, replace(sec, fastagi_secret=f"{'k' * 32}{bad}x")
    if field == "service id":
        return replace(s, services=(replace(services[0], id=f"city{bad}x"), *services[1:])), sec
    if field == "service did":
        return replace(s, services=(replace(services[0], did=f"10{bad}00"), *services[1:])), sec
    assert field == "fastagi address"
    return replace(s, fastagi=replace(s.fastagi, host=f"127.0.0.1{bad}x")), sec


WHERE = {
    "agent contact": "pjsip.conf [7001] contact: the value",
    "trunk match": "pjsip.conf [trunk-identify] match: the value",
    "city pbx": "pjsip.conf [citypbx] contact: the value",
    "sip password": "pjsip.conf [7001-auth] password: the value",
    "ami secret": "manager.conf [madoguchi] secret: the value",
    "fastagi secret": "extensions.conf {{agi_key}}: the value",
    "service id": "extensions.conf [from-trunk] service id: the value",
    "service did": "extensions.conf [from-trunk] did of service 'city': the value",
    "fastagi address": "extensions.conf {{fastagi}}: the value",
}


# a bracket: an unbalanced one in a dialplan argument ends it early (and no such value needs one)
@pytest.mark.parametrize("bad", ["\n", "\r", ";", "\x00", "(", ")", "[", "}"])
@pytest.mark.parametrize("field", list(WHERE))
def test_a_bad_value_in_any_field_is_refused_naming_where(
        loaded: tuple[Settings, Secrets], field: str, bad: str) -> None:
    s, sec = _poison(*loaded, field, bad)
    with pytest.raises(ConfWriteError) as err:
        confgen.render(s, sec, confgen.layout_for(s, chroot=True))
    message = str(err.value)
    assert message.startswith(f"cannot write {WHERE[field]} contains U+{ord(bad):04X} "), message
    assert message.isprintable() and "pw" not in message and "k" * 32 not in message


@pytest.mark.parametrize("bad", ["\n", "\r", ";", "\x00"])
def test_a_bad_instance_path_is_refused_in_asterisk_conf(
        loaded: tuple[Settings, Secrets], bad: str) -> None:
    layout = confgen.Layout(Path("/unused"), f"/srv/mado{bad}guchi")
    with pytest.raises(ConfWriteError, match=r"^cannot write asterisk.conf \[directories\] "
                       f"astetcdir: the value contains U\\+{ord(bad):04X} \\(.+\\) "
                       "at character 10"):
        confgen.render(*loaded, layout)


@pytest.mark.parametrize("path", ["/home/city hall/state", "/srv/a,b", "/srv/${HOME}",
                                  "/srv/a(b)"])
def test_a_recordings_path_with_dialplan_syntax_is_refused(
        loaded: tuple[Settings, Secrets], path: str) -> None:
    layout = confgen.Layout(Path("/unused"), path)
    with pytest.raises(ConfWriteError, match=r"^cannot write extensions.conf \{\{recordings\}\}: "
                       "the value contains U\\+"):
        confgen.render(*loaded, layout)


def test_a_refused_value_leaves_the_files_already_written(
        loaded: tuple[Settings, Secrets]) -> None:
    s, sec = loaded
    layout = confgen.layout_for(s, chroot=True)
    etc = confgen.write(s, sec, layout).parent
    before = {p.name: p.read_bytes() for p in etc.iterdir()}
    with pytest.raises(ConfWriteError):
        confgen.write(*_poison(s, sec, "sip password", "\n"), layout)
    assert {p.name: p.read_bytes() for p in etc.iterdir()} == before


# ---- the command line ----------------------------------------------------------------------

def test_pbx_config_stops_on_a_bad_secret_with_one_line(tmp_path: Path) -> None:
    config, state = tmp_path / "config", tmp_path / "state"
    shutil.copytree(ROOT / "config", config)
    state.mkdir()
    # secrets.json takes any non-empty string as a SIP password; the writer is the check
    (state / "secrets.json").write_text(
        json.dumps({"sip_passwords": {"7002": "pw\n[evil]\ntype = endpoint"}}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "madoguchi.cli", "--config", str(config),
                           "--state", str(state), "pbx", "config"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "madoguchi: invalid configuration: cannot write pjsip.conf [7002-auth] password: the "
        "value contains U+000A (line feed) at character 3\n")
    assert not (state / "asterisk" / "etc" / "pjsip.conf").exists()


def test_pbx_config_stops_on_a_bad_yaml_value_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    agents = config / "agents.yaml"
    text = agents.read_text(encoding="utf-8")
    old = '{id: "7001", name: オペレーター1, queues: [city]}'
    assert old in text
    agents.write_text(text.replace(old, old[:-1] + ', contact: "sip:10.0.0.1;x"}'),
                      encoding="utf-8")
    line = text.splitlines().index(f"  - {old}") + 1
    assert main(["--config", str(config), "--state", str(tmp_path / "state"),
                 "pbx", "config"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith(f"madoguchi: invalid configuration: {agents}:{line}:")
    assert "'contact' must look like sip:host:port" in out.err
    assert "Traceback" not in out.out + out.err
