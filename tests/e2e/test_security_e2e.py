"""What a local account or a stranger on the network can reach, on the real stack: Asterisk's
user, the engine's AMI rights, who may deliver calls as the trunk, and the modes of every file
a real call leaves behind."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .conftest import (
    SIP_PORT,
    SIPP_DIR,
    AmiLink,
    Stack,
    sipp_caller,
    sipp_operator,
)

pytestmark = pytest.mark.asterisk

PBX_USER = "madoguchi-pbx"


def _asterisk_pid(stack: Stack) -> int:
    pid = int((stack.state / "asterisk" / "run" / "asterisk.pid").read_text().strip())
    assert (Path("/proc") / str(pid) / "exe").exists()
    return pid


def test_asterisk_runs_as_an_unprivileged_user(stack: Stack) -> None:
    status = (Path("/proc") / str(_asterisk_pid(stack)) / "status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    gids = next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1:]
    assert "0" not in uids, f"Asterisk runs with uid {uids}"
    assert "0" not in gids, f"Asterisk runs with gid {gids}"
    assert pwd.getpwuid(int(uids[0])).pw_name == PBX_USER


def test_the_engines_ami_login_cannot_load_modules_or_run_commands(stack: Stack) -> None:
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    ami = AmiLink("madoguchi", secrets["ami_secret"])
    try:
        for action in ({"Action": "ModuleLoad", "Module": "app_system.so", "LoadType": "load"},
                       {"Action": "Command", "Command": "core show version"}):
            reply = ami.action(action)[-1]
            assert reply.get("Response") == "Error", (action, reply)
            assert "Permission denied" in reply.get("Message", ""), (action, reply)
        reply = ami.action({"Action": "Originate", "Channel": "Local/s@default",
                            "Application": "System", "Data": "id", "Async": "true"})[-1]
        assert reply.get("Response") == "Error", reply
        assert "Forbidden" in reply.get("Message", ""), reply
        # what the engine does use still works
        assert ami.action({"Action": "DeviceStateList"})[0].get("Response") == "Success"
    finally:
        ami.close()
    monitor = AmiLink("madoguchi-monitor", secrets["ami_monitor_secret"])
    try:
        reply = monitor.action({"Action": "Hangup", "Channel": "PJSIP/7001-00000000"})[-1]
        assert "Permission denied" in reply.get("Message", ""), reply
    finally:
        monitor.close()


def test_a_request_naming_the_trunk_from_another_address_is_refused(stack: Stack) -> None:
    """The trunk is identified by its address only: the user part 'trunk' from 127.0.0.2
    gets a refusal, never the inbound context."""
    before = stack.metric("madoguchi_calls_offered_total", service="city")
    done = subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "spoof_trunk.xml"), "-s",
         "1000", "-i", "127.0.0.2", "-p", str(SIP_PORT + 3), "-m", "1", "-key", "caller",
         "trunk", "-nostdin", "-timeout", "20s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=40, check=False)
    assert done.returncode == 0, ("the spoofed INVITE was not refused with 401/403",
                                  done.stderr.decode(errors="replace")[-2000:])
    assert stack.call_rows("trunk") == []
    assert stack.metric("madoguchi_calls_offered_total", service="city") == before


def _mode_problems(root: Path, pbx_gid: int) -> list[str]:
    """Nothing under the state folder is open to other accounts; the engine's own files are
    its alone; group access only through Asterisk's group, in the folder it shares."""
    problems = []
    shared = root / "asterisk"
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o007:
            problems.append(f"{path}: {mode:o} is open to other accounts")
        elif mode & 0o070 and not (path.is_relative_to(shared) and st.st_gid == pbx_gid):
            problems.append(f"{path}: {mode:o} with group {st.st_gid}")
    return problems


def test_a_real_call_leaves_only_private_files(stack: Stack) -> None:
    pbx_gid = grp.getgrnam(PBX_USER).gr_gid
    spool = stack.state / "asterisk" / "recordings"
    before = {p for p in stack.state.rglob("*") if p.is_file()}
    stack.set_ready("7001")
    legs: list[tuple[Path, int, int, int]] = []
    result: dict[str, subprocess.CompletedProcess[bytes]] = {}
    operator = sipp_operator(ring_ms=500)
    caller = threading.Thread(target=lambda: result.setdefault(
        "caller", sipp_caller("1000", "0399990001", dtmf="2", talk_ms=5000)))
    caller.start()
    try:
        deadline = time.monotonic() + 40
        while caller.is_alive() and len(legs) < 2 and time.monotonic() < deadline:
            for leg in spool.rglob("*-*.wav"):
                if leg in before:  # an earlier call's legs, left for the reconciler
                    continue
                try:
                    st = leg.stat()
                except FileNotFoundError:  # archived meanwhile
                    continue
                if leg not in [x[0] for x in legs]:
                    legs.append((leg, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
            time.sleep(0.2)
        caller.join(timeout=60)
        operator.communicate(timeout=30)
    finally:
        if operator.poll() is None:
            operator.kill()
    assert result["caller"].returncode == 0, result["caller"].stderr[-2000:]
    assert len(legs) == 2, f"MixMonitor legs seen during the call: {legs}"
    pbx_uid = pwd.getpwnam(PBX_USER).pw_uid
    for path, mode, uid, gid in legs:
        assert (uid, gid) == (pbx_uid, pbx_gid), (path, uid, gid)
        assert mode & 0o007 == 0, f"{path} is {mode:o}"

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = stack.json("/api/recordings?caller=0399990001")
        assert isinstance(data, dict)
        if data["items"]:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the call's recording was never indexed")
    made = {p for p in stack.state.rglob("*") if p.is_file()} - before
    archived = [p for p in made if p.suffix == ".wav" and not p.is_relative_to(spool)]
    assert archived, f"no archived recording among the new files: {sorted(made)}"
    for path in archived:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(stack.state.stat().st_mode) == 0o700
    for db_file in stack.state.glob("madoguchi.db*"):
        assert stat.S_IMODE(db_file.stat().st_mode) == 0o600, db_file
    assert os.stat(stack.state / "secrets.json").st_mode & 0o077 == 0
    problems = _mode_problems(stack.state, pbx_gid)
    assert problems == [], "\n".join(problems)
