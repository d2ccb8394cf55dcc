"""The dialplan template and the engine agree on every name (ami_bridge/dialplan.py).

The template is parsed (and rendered by confgen with the shipped config) and held against
the contract both ways: each variable it reads is one of ours that someone sets, each one the
engine sets is read by the template or by adopt, and its contexts, extensions, AGI scripts,
UserEvents and fields are exactly the contract's. The engine's modules are read too: each
setter sets what the contract says, and no module spells a contract name itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from acd import adopt
from acd.agi import SCRIPTS as OPERATOR_SCRIPTS
from ami_bridge import dialplan
from ami_bridge.dialplan import (
    ADOPTED,
    CALLER_NUMBER,
    ENGINE_SETTERS,
    ENTRY,
    FAILOPEN_QUEUE,
    ROLES,
    USER_EVENT_HEADERS,
    AgiScript,
    Context,
    Dest,
    FaxExten,
    Reader,
    Setter,
    TemplateField,
    TransferExten,
    UserEvent,
    Var,
    set_by,
)
from ami_bridge.pbx import confgen
from ami_bridge.pbx.conffile import ConfWriteError
from ami_bridge.recording_names import FAILOPEN_DIR
from core.secrets import Secrets, load_or_create
from core.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = confgen.DIALPLANS / "extensions.conf.in"
# Asterisk's own variables the template reads (functions such as ${FILTER(...)} aside)
# Asterisk's own: Dial sets DIALSTATUS and ANSWEREDTIME, Gosub ARG1; FAX's HANGUPCAUSE, REASON
ASTERISK_OWN = {"EPOCH", "UNIQUEID", "EXTEN", "DIALSTATUS", "ANSWEREDTIME", "ARG1",
                "HANGUPCAUSE", "REASON"}
# the modules that set channel variables, by the contract's name for them
SETTER_SOURCES = {Setter.IVR: "ivr/agi_runner.py", Setter.OPERATOR_AGI: "acd/agi.py",
                  Setter.ACD: "acd/service.py", Setter.SURVEY: "survey/service.py",
                  Setter.CALLBACK_AGI: "acd/callback_agi.py", Setter.FAX: "ami_bridge/fax.py"}
PACKAGES = ("acd", "ivr", "madoguchi", "ami_bridge", "recordings", "console", "kpi", "core",
            "store", "survey", "fax")

Contexts = dict[str, list[str]]  # context -> its lines, comments removed


def contexts(text: str) -> Contexts:
    out: Contexts = {}
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = out.setdefault(line[1:-1], [])
        else:
            current.append(line)
    return out


def code_lines(text: str) -> str:
    return "\n".join(line for lines in contexts(text).values() for line in lines)


def extensions(lines: list[str]) -> set[str]:
    return {m.group(1) for line in lines if (m := re.match(r"exten => ([^,]+),", line))}


def reads(text: str) -> set[str]:
    """Every ${NAME} or ${NAME:offset}: a variable, not a function call."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[}:]", code_lines(text)))


def sets(text: str) -> set[str]:
    return {m.removeprefix("__") for m in re.findall(r"\bSet\(([A-Za-z_][A-Za-z0-9_]*)=",
                                                     code_lines(text))}


def goto_targets(text: str) -> list[list[str]]:
    """The comma-separated parts of each Goto and GotoIf destination."""
    code = code_lines(text)
    targets = re.findall(r"\bGoto\(([^()]*)\)", code)
    for branch in re.findall(r"\bGotoIf\(.*\?([^?()]*)\)$", code, re.M):
        targets += branch.split(":")
    return [t.split(",") for t in targets if t]


@pytest.fixture(scope="module")
def template() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Settings, Secrets]:
    s = load_settings(ROOT / "config", tmp_path / "state")
    return s, load_or_create(s.state_dir, [a.id for a in s.agents])


@pytest.fixture
def rendered(loaded: tuple[Settings, Secrets]) -> dict[str, str]:
    s, sec = loaded
    return confgen.render(s, sec, confgen.layout_for(s, chroot=True))


# ---- channel variables ---------------------------------------------------------------------

def test_every_variable_has_a_role_someone_sets_and_someone_reads() -> None:
    assert set(ROLES) == set(Var)
    for var, role in ROLES.items():
        assert role.set_by and role.read_by, var


def test_every_variable_the_template_reads_is_ours_and_set_by_someone(template: str) -> None:
    ours = reads(template) - ASTERISK_OWN
    assert ours <= set(Var), f"read in the template, not in the contract: {ours - set(Var)}"
    assert ours == {v for v in Var if Reader.TEMPLATE in ROLES[v].read_by}
    assert all(name.startswith(("MADO_", "IVR_")) for name in ours)


def test_every_variable_the_engine_sets_is_read_by_the_template_or_adopt() -> None:
    engine_sets = {v for v in Var if ROLES[v].set_by & ENGINE_SETTERS}
    assert engine_sets
    for var in engine_sets:
        assert ROLES[var].read_by & {Reader.TEMPLATE, Reader.ADOPT}, var


def test_the_template_sets_exactly_its_own_variables(template: str) -> None:
    assert sets(template) == set_by(Setter.TEMPLATE)


def test_the_did_routes_set_exactly_theirs_inherited_by_every_channel(
        rendered: dict[str, str], template: str) -> None:
    routes = contexts(rendered["extensions.conf"])[Context.FROM_TRUNK]
    assert {m for line in routes for m in re.findall(r"Set\(__([A-Z_]+)=", line)} \
        == set_by(Setter.ROUTES)
    # a route's Set is the only one of these: nothing in the template sets them
    assert not set_by(Setter.ROUTES) & sets(template)


def _contract_names(path: Path) -> set[Var]:
    return {Var[m] for m in re.findall(r"\bVar\.([A-Z_]+)\b", path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("setter", list(SETTER_SOURCES))
def test_each_engine_module_sets_what_the_contract_says(setter: Setter) -> None:
    assert _contract_names(ROOT / SETTER_SOURCES[setter]) == set_by(setter)


def test_adopt_reads_back_exactly_the_variables_marked_for_it() -> None:
    marked = [v for v in Var if Reader.ADOPT in ROLES[v].read_by]
    assert ADOPTED == (*marked, CALLER_NUMBER)
    assert ADOPTED[0] == Var.CALL_ID  # an empty one ends the reads: not one of our calls
    assert _contract_names(ROOT / "acd" / "adopt.py") == set(marked)


async def test_adopt_asks_asterisk_for_the_contract_s_variables() -> None:
    asked: list[str] = []

    class Ami:
        async def send(self, action: Mapping[str, str],
                       timeout: float | None = None) -> dict[str, str]:
            asked.append(action["Variable"])
            return {"Value": "x"}

        async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]:
            raise AssertionError

    assert await adopt._vars(Ami(), "PJSIP/trunk-00000001") == dict.fromkeys(ADOPTED, "x")
    assert asked == list(ADOPTED)


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs: set[int] = set()
    for node in ast.walk(tree):
        body: Any = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)):
            docs.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_module_spells_a_contract_name_itself() -> None:
    spelt = re.compile(r"\bMADO_[A-Z_]+|\bIVR_DONE\b|\bMadoBoard\b|\bmado-[a-z]+\b|"
                       r"\bfrom-(trunk|citypbx)\b|ivr/override")
    own = Path(dialplan.__file__).resolve()
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}"
             for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             if path.resolve() != own
             for line, text in _string_literals(path) if spelt.search(text)]
    assert not found, "use ami_bridge/dialplan.py instead of:\n" + "\n".join(found)


# ---- contexts and extensions ---------------------------------------------------------------

def test_the_template_s_contexts_are_the_contract_s(template: str) -> None:
    assert set(contexts(template)) - {"general"} == set(Context)


def test_every_goto_lands_on_a_contract_context_and_an_extension_it_has(
        rendered: dict[str, str]) -> None:
    by_context = contexts(rendered["extensions.conf"])
    targets = goto_targets(rendered["extensions.conf"])
    assert len(targets) > 5
    for parts in targets:
        if len(parts) == 1:
            continue  # a label in the same extension
        if len(parts) == 2:  # an extension (and label) of the same context: it must exist
            assert any(parts[0] in extensions(body) for body in by_context.values()), parts
            continue
        context, exten, _ = parts
        assert context in set(Context), parts
        if not exten.startswith("${"):
            assert exten in extensions(by_context[context]), parts


def test_the_endpoints_contexts_are_the_contract_s(rendered: dict[str, str]) -> None:
    used = set(re.findall(r"^context = (\S+)$", rendered["pjsip.conf"], re.M))
    assert used == {Context.FROM_TRUNK, Context.FROM_CITYPBX, Context.OPERATORS}


def test_the_extensions_the_engine_names_exist(template: str) -> None:
    by_context = contexts(template)
    assert extensions(by_context[Context.ROUTE]) - {"i"} == set(Dest)
    assert extensions(by_context[Context.TRANSFER]) == set(TransferExten)
    assert extensions(by_context[Context.FAX_OUT]) == {*FaxExten, "h"}
    # the engine sends callers to ENTRY of these: the ACD's bridge F() option and confgen
    for context in (Context.AFTER, Context.INBOUND, Context.HOLD, Context.FAILOPEN):
        assert ENTRY in extensions(by_context[context]), context


def test_the_fail_open_queue_and_recording_names_are_the_contract_s(
        template: str, rendered: dict[str, str]) -> None:
    failopen = contexts(template)[Context.FAILOPEN]
    assert any(f"Queue({FAILOPEN_QUEUE}${{{Var.QUEUE}}}," in line for line in failopen)
    assert any(f"MixMonitor({{{{{TemplateField.RECORDINGS}}}}}/{FAILOPEN_DIR}/" in line
               for line in failopen)
    queues = set(contexts(rendered["queues.conf"])) - {"general"}
    assert queues and all(q.startswith(FAILOPEN_QUEUE) for q in queues)


# ---- AGI scripts, UserEvents, fields -------------------------------------------------------

def test_the_template_runs_exactly_the_contract_s_agi_scripts_with_the_key_first(
        template: str) -> None:
    calls = re.findall(r"\bAGI\(([^,]*),([^,)]*)", code_lines(template))
    assert calls
    prefix = f"agi://{{{{{TemplateField.FASTAGI}}}}}/"
    assert all(url.startswith(prefix) and key == f"{{{{{TemplateField.AGI_KEY}}}}}"
               for url, key in calls)
    scripts = {url.removeprefix(prefix) for url, _ in calls}
    assert scripts == {*AgiScript, f"${{{dialplan.SERVICE_SCRIPT}}}"}


def test_the_engine_routes_every_agi_script() -> None:
    # the operators' scripts go to acd/agi.py, everything else (override, the post-call
    # survey, services) to the IVR, the callback offer's to acd/callback_agi.py
    assert {*OPERATOR_SCRIPTS, AgiScript.OVERRIDE, AgiScript.SURVEY,
            AgiScript.CALLBACK} == set(AgiScript)


def test_a_service_named_like_an_agi_script_is_refused(
        loaded: tuple[Settings, Secrets]) -> None:
    s, sec = loaded
    for script in (AgiScript.FEATURE, AgiScript.TRANSFER):
        bad = replace(s, services=(replace(s.services[0], id=str(script)), *s.services[1:]))
        with pytest.raises(ConfWriteError, match=r"^cannot write extensions.conf \[from-trunk\] "
                           f"service '{script}': the service id is the name of a FastAGI"):
            confgen.render(bad, sec, confgen.layout_for(bad, chroot=True))


def test_the_template_sends_exactly_the_contract_s_user_events(template: str) -> None:
    sent = {m.group(1): tuple(h.split(":", 1)[0].strip() for h in m.group(2).split(",") if h)
            for m in re.finditer(r"\bUserEvent\(([^,)]+)((?:,[^)]*)?)\)", code_lines(template))}
    assert sent == dict(USER_EVENT_HEADERS)
    assert set(USER_EVENT_HEADERS) == set(UserEvent)


def test_the_template_s_fields_are_the_contract_s_and_confgen_fills_each(
        template: str, loaded: tuple[Settings, Secrets],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(re.findall(r"\{\{([a-z_]+)\}\}", code_lines(template))) == set(TemplateField)
    filled: list[set[str]] = []
    real_fill = confgen.fill

    def fill(file: str, text: str, fields: Mapping[str, Any]) -> str:
        filled.append(set(fields))
        return real_fill(file, text, fields)

    monkeypatch.setattr(confgen, "fill", fill)
    s, sec = loaded
    text = confgen.render(s, sec, confgen.layout_for(s, chroot=True))["extensions.conf"]
    assert filled == [set(TemplateField)]
    assert "{{" not in code_lines(text)
