"""Every loader refuses bad bytes cleanly: the shipped config files, mutated at random (bytes
inserted or replaced, NUL, invalid UTF-8, truncation, deep nesting, huge values, swapped
types, anchors and aliases), are either accepted or refused with a ConfigError that starts
with a config file's path:line:column — never any other exception. The same for the CSV
imports, and for the command line and the reload API on a flow with a NUL byte."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.directory import CsvError, directory_rows, faq_rows
from core.settings import load_settings
from core.yamlconf import MAX_DEPTH, MAX_FILE_BYTES, ConfigError, load_yaml
from ivr.flowset import Sources, check
from madoguchi.cli import main
from madoguchi.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILES = ["madoguchi.yaml", "agents.yaml"]
FLOWSET_FILES = ["schedules.yaml", "events.yaml", "prompts.yaml", "flows/city.yaml",
                 "flows/water.yaml", "flows/events.yaml", "survey.yaml"]
FUZZ = settings(derandomize=True, database=None, max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# bytes that break text or YAML in interesting ways
SPECIAL = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc2\x85", b"\x1b", b"\r", b"\x7f",
           b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\xf4\x90\x80\x80", b"\t", b"\n", b": ", b"- ",
           b"{", b"[", b"]", b'"', b"'", b"&a ", b"*a", b"!!binary ", b"? ", b"---\n",
           b"%YAML 1.1\n---\n", b"#", b"|\n", b"<<: ", b"\\"]
# values swapped in after a `key: `
VALUES = [b"[]", b"{}", b"null", b"~", b"true", b"1.5", b"-7", b"99999999999999999999999",
          b"2024-02-30", b"2024-02-29 25:00:00", b'"\\0"', b'"\\ud800"', b'"\\x85"',
          b'"a\\u2028b"', b"!!binary aGk=", b"!!set {a: null}", b"!!omap [a: 1]",
          b"!!python/name:os.system", b"!!float x", b"!!int x", b"!custom x", b"&x [1]", b"*x",
          b".nan", b"-.inf", b"0x" + b"f" * 5000, b"1" * 5000, b"'" + b"x" * 5000 + b"'",
          b"[" * 200 + b"]" * 200, b"{a: " * 60 + b"1" + b"}" * 60, b"[a, [b, {c: d}]]",
          b"{? [a]: b}", "全角の値".encode(), b"'\\0'", b"\"\\e\\a\\v\\b\"", b"- x\n- y", b"5",
          b"''", b"[[]]", b"[{}]", b"12:00", b"abc"]
BOMB = (b"\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n")
CHUNK = st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=6))


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = original
    for _ in range(draw(st.integers(1, 3))):
        # type swaps weigh most: bytes and syntax are refused early, types reach the loaders
        op = draw(st.sampled_from(["insert", "replace", "truncate", "value", "value", "value",
                                   "value", "nest", "huge", "bomb"]))
        pos = draw(st.integers(0, len(data)))
        if op == "insert":
            data = data[:pos] + draw(CHUNK) + data[pos:]
        elif op == "replace":
            data = data[:pos] + draw(CHUNK) + data[pos + draw(st.integers(1, 8)):]
        elif op == "truncate":
            data = data[:pos]
        elif op == "value":
            starts = [m.end() for m in re.finditer(rb": ", data)]
            if starts:
                at = draw(st.sampled_from(starts))
                end = data.find(b"\n", at)
                end = len(data) if end < 0 else end
                data = data[:at] + draw(st.sampled_from(VALUES)) + data[end:]
        elif op == "nest":
            depth = draw(st.integers(MAX_DEPTH - 3, 4 * MAX_DEPTH))
            line = data.rfind(b"\n", 0, pos) + 1
            block = b"".join(b"  " * i + b"k:\n" for i in range(depth))
            data = data[:line] + block + data[line:]
        elif op == "huge":
            data = data[:pos] + b"x" * draw(st.integers(3990, 20000)) + data[pos:]
        else:
            data = data + BOMB
    return data


LOCATED = r"[^\s:]+:\d+:\d+: \S"


def assert_located(message: str, config: Path) -> None:
    """A ConfigError's message: a file of the config folder, line, column, reason."""
    assert re.match(re.escape(str(config)) + "/" + LOCATED, message), message


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tmp_path_factory.mktemp("fuzz") / "config"
    shutil.copytree(ROOT / "config", config)
    return config


class Mutate:
    """Puts mutated bytes in one file of the config copy, and the original back after."""

    def __init__(self, config: Path, name: str) -> None:
        self.path = config / name
        self.original = self.path.read_bytes()

    def __enter__(self) -> Mutate:
        return self

    def write(self, data: bytes) -> None:
        self.path.write_bytes(data)

    def __exit__(self, *exc: object) -> None:
        self.path.write_bytes(self.original)


@pytest.mark.parametrize("name", SETTINGS_FILES)
def test_settings_loaders_refuse_any_bytes_with_a_position(config: Path, name: str) -> None:
    original = (ROOT / "config" / name).read_bytes()
    state = config.parent / "state"

    @FUZZ
    @given(data=mutated(original))
    def run(data: bytes) -> None:
        with Mutate(config, name) as m:
            m.write(data)
            try:
                load_settings(config, state)
            except ConfigError as exc:
                assert_located(str(exc), config)

    run()


@pytest.mark.parametrize("name", FLOWSET_FILES)
def test_flow_set_loaders_refuse_any_bytes_with_a_position(config: Path, name: str) -> None:
    original = (ROOT / "config" / name).read_bytes()
    src = Sources.from_settings(load_settings(config, config.parent / "state"))
    assert check(src) == []  # the shipped set is valid

    @FUZZ
    @given(data=mutated(original))
    def run(data: bytes) -> None:
        with Mutate(config, name) as m:
            m.write(data)
            for error in check(src):  # `madoguchi flows check` and every reload
                assert_located(str(error), config)

    run()


STAFF = ("section,name,extension,note\n環境課,山田 太郎,2101,ごみ収集\n"
         "市民課,\"佐藤, 花子\",2201,\"住民票\n戸籍\"\n").encode()
FAQ = ("\ufeffid,question,answer,keywords\ngomi-1,粗大ごみは?,予約制です,粗大\n"
       "juumin-1,住民票は?,市民課で,住民票\r\n").encode()


@pytest.mark.parametrize(("parse", "original"), [(directory_rows, STAFF), (faq_rows, FAQ)])
def test_csv_imports_refuse_any_bytes_with_a_line(parse: object, original: bytes) -> None:
    assert callable(parse)
    assert parse(original)  # the seed itself is accepted

    @FUZZ
    @given(data=mutated(original))
    def run(data: bytes) -> None:
        try:
            parse(data)
        except CsvError as exc:
            assert re.match(r"line \d+(, column \d+)?: \S", str(exc)), str(exc)

    run()


# ---- the caps, one by one ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "where", "reason"), [
    (b"a: 1\nb: x\x00y\n", "2:5", "control character U+0000"),
    (b"a: 1\nb: \xe6\x97\xa5\xff\n", "2:5", "invalid UTF-8 (byte 0xff)"),
    (b"a: 1\nb: \xe6\x97\n", "2:4", "invalid UTF-8"),  # truncated in the middle of a character
    (b"a: 1\rb: 2\n", "1:5", "carriage return without a line feed"),
    (b"a: 1\nb: x\xc2\x85y\n", "2:5", "U+0085"),  # NEL, a C1 control
    (b'a: 1\nb: "x\\0y"\n', "2:4", "U+0000 is not allowed (in this value)"),
    (b'a: 1\nb: "\\ud800"\n', "2:4", "U+D800"),  # a lone surrogate, by escape
    (b"a: &x [1, 2]\nb: *x\n", "1:4", "anchors and aliases"),
    (b"a: 1\nb: " + b"[" * 40 + b"]" * 40 + b"\n", f"2:{MAX_DEPTH + 3}", "nested more than"),
    (b"a: " + b"9" * 5000 + b"\n", "1:4", "value longer than 4000 characters"),
    (b"a: 2024-02-30\n", "1:4", "invalid value: day is out of range"),
    (b"a: [1\nb: 2\n", "2:2", "YAML syntax"),
    (b"a: 1\n---\nb: 2\n", "2:1", "YAML syntax"),
])
def test_each_cap_names_its_position(tmp_path: Path, text: bytes, where: str,
                                     reason: str) -> None:
    f = tmp_path / "x.yaml"
    f.write_bytes(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml(f)
    assert str(caught.value).startswith(f"{f}:{where}: "), str(caught.value)
    assert reason in str(caught.value)


def test_a_billion_laughs_and_a_huge_file_are_refused_before_they_grow(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_bytes(BOMB * 1)
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_yaml(f)
    f.write_bytes(b"a: 1\n" + b"#" * MAX_FILE_BYTES)
    with pytest.raises(ConfigError, match=re.escape(f"{f}:1:1: file larger than 1024 KiB")):
        load_yaml(f)


def test_windows_line_ends_a_bom_tabs_and_any_script_are_fine(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_bytes("\ufeffa: \"x\\ty\"\r\nb: |\r\n  日本語\r\n  two\r\n".encode())
    assert load_yaml(f) == {"a": "x\ty", "b": "日本語\ntwo\n"}


def test_csv_positions_and_caps() -> None:
    with pytest.raises(CsvError, match=r"^line 3, column 4: control character U\+0000"):
        directory_rows(b"section,name,extension\na,b,1\nc,d\x00,2\n")
    with pytest.raises(CsvError, match=r"^line 2, column 5: invalid UTF-8 \(byte 0x82\)"):
        directory_rows(b"section,name,extension\nabcd\x82,b,1\n")
    with pytest.raises(CsvError, match=r"^line 2: name is longer than 128 characters"):
        directory_rows(b"section,name,extension\na," + b"x" * 129 + b",1\n")
    with pytest.raises(CsvError, match=r"^line 2: field larger than field limit"):
        faq_rows(b"id,question,answer\nx,y," + b"z" * 200_000 + b"\n")
    with pytest.raises(CsvError, match=r"^line 3: extension must be digits, got '２１０１'"):
        directory_rows("section,name,extension\na,b,1\nc,d,２１０１\n".encode())
    with pytest.raises(CsvError, match=r"^line 4: FAQ id 'x' appears twice"):
        faq_rows(b"id,question,answer\nx,q,a\ny,q,a\nx,q,a\n")


# ---- the command line and the reload API ---------------------------------------------------

def _nul_in_city(config: Path) -> tuple[Path, int, int]:
    """A NUL byte put in the middle of flows/city.yaml's 'nodes:' line; (file, line, column)."""
    city = config / "flows" / "city.yaml"
    lines = city.read_bytes().split(b"\n")
    n = lines.index(b"nodes:")
    lines[n] = b"no\x00des:"
    city.write_bytes(b"\n".join(lines))
    return city, n + 1, 3


def test_flows_check_reports_a_nul_byte_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    city, line, column = _nul_in_city(config)
    done = subprocess.run([sys.executable, "-m", "madoguchi.cli", "--config", str(config),
                           "--state", str(tmp_path / "state"), "flows", "check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    # the list of errors goes to stdout, one file:line:column each, the count to stderr
    assert done.stdout.splitlines() == [
        f"{city}:{line}:{column}: control character U+0000 is not allowed"]
    assert done.stderr == "1 error(s)\n"


def test_check_and_import_refuse_bad_bytes_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    base = ["--config", str(config), "--state", str(tmp_path / "state")]
    _, line, column = _nul_in_city(config)
    assert main([*base, "check"]) == 2
    assert f"city.yaml:{line}:{column}: control character U+0000" in capsys.readouterr().err
    agents = config / "agents.yaml"
    raw = agents.read_bytes() + b"\n\xc0\n"
    agents.write_bytes(raw)
    assert main([*base, "check"]) == 2
    bad_line = raw[:raw.index(b"\xc0")].count(b"\n") + 1
    assert f"{agents}:{bad_line}:1: invalid UTF-8 (byte 0xc0)" in capsys.readouterr().err
    staff = tmp_path / "staff.csv"
    staff.write_bytes(b"section,name,extension\n\xe7\x92\xb0,\xff,2101\n")
    agents.write_bytes((ROOT / "config" / "agents.yaml").read_bytes())
    assert main([*base, "import", "directory", str(staff)]) == 2
    assert (f"madoguchi: {staff}: line 2, column 3: invalid UTF-8 (byte 0xff)"
            in capsys.readouterr().err)


async def test_a_reload_with_a_nul_byte_is_refused_and_the_old_flows_keep_serving(
        offline_client: tuple[TestClient, Engine]) -> None:
    client, engine = offline_client
    auth = {"Authorization": f"Bearer {engine.secrets.api_token}"}
    before = await (await client.get("/api/flows", headers=auth)).json()
    city, line, column = _nul_in_city(engine.settings.config_dir)
    resp = await client.post("/api/flows/reload", headers=auth)
    assert resp.status == 422
    body = await resp.json()
    assert body["errors"] == [f"{city}:{line}:{column}: control character U+0000 is not allowed"]
    assert body["version"] == before["version"]
    after = await (await client.get("/api/flows", headers=auth)).json()
    assert after["version"] == before["version"] and after["reloads"] == before["reloads"]
