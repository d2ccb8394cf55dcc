"""What `make run` prints once the engine is ready: where the console is, how to create the
first admin, whether each service is open now (and when it opens), and how to place a first
call at any hour."""

from __future__ import annotations

import asyncio
import shlex
from datetime import datetime
from pathlib import Path

from core.clock import CITY_TZ
from core.secrets import Secrets
from core.settings import Settings
from ivr.schedule import ScheduleState
from ivr.service import IvrService

from .engine import Engine

READY_TIMEOUT_S = 60.0  # past this the banner says what is still missing


def _when(at: datetime) -> str:
    local = at.astimezone(CITY_TZ)
    return f"{local.year}年{local.month}月{local.day}日 {local.hour}:{local.minute:02d}"


def service_lines(settings: Settings, ivr: IvrService, base: str, now: datetime) -> list[str]:
    """One line per service: open or not now (Japan time), when it opens, and the override
    that opens it for a test at night."""
    lines = [f"Services now ({_when(now)}, Japan time):"]
    sched = ivr.current.schedules
    for s in settings.services:
        status = ivr.status(s.id)
        state = status["state"]
        line = f"  {s.name} ({s.id}, DID {s.did}): {state}"
        if state != ScheduleState.OPEN.value:
            opens = sched.next_open(s.id, now) if s.id in sched.hours else None
            line += f"; opens {_when(opens)}" if opens else "; no opening in the next 14 days"
            if status["override"]:
                line += f" (override {status['override']['mode']} set)"
        lines.append(line)
    closed = [s for s in settings.services if ivr.status(s.id)["state"] != "open"]
    if closed:
        first = closed[0].id
        lines += [
            "  Outside the hours a call hears the closed message. To test now, open a service",
            "  for an hour (a supervisor's override, audited; it ends by itself):",
            f"    curl -X POST -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: "
            f"application/json' -d '{{\"mode\": \"open\", \"minutes\": 60}}' "
            f"{base}/api/schedules/{first}/override",
        ]
    return lines


def ready_banner(settings: Settings, secrets: Secrets, ivr: IvrService, has_users: bool,
                 show_passwords: bool, now: datetime, command: str = "madoguchi") -> str:
    a, h = settings.asterisk, settings.http
    base = f"http://{h.host}:{h.port}"
    secrets_file = settings.state_dir / "secrets.json"
    token = (f"TOKEN=$(python3 -c 'import json;print(json.load(open("
             f"{shlex.quote(str(secrets_file))!r}))[\"api_token\"])')")
    agents = "\n".join(
        f"    {ag.id} {ag.name}  password "
        + (secrets.sip_passwords[ag.id] if show_passwords else f"(see {secrets_file})")
        for ag in settings.agents)
    first = settings.agents[0].id if settings.agents else "7001"
    first_pw = secrets.sip_passwords.get(first, "") if show_passwords else "<password>"
    if has_users:
        admin = "  Log in with your console account."
    else:
        admin = ("  No console user yet. Create the first admin (asks for the password):\n"
                 f"    {command} --config {shlex.quote(str(settings.config_dir))} --state "
                 f"{shlex.quote(str(settings.state_dir))} users add --role admin kanri")
    return "\n".join([
        "",
        "madoguchi is ready: Asterisk's AMI is logged in and FastAGI listens.",
        f"  Console : {base}/console/",
        admin,
        f"  API     : {base}/api/recordings  (Authorization: Bearer $TOKEN, where",
        f"            {token})",
        f"  Health  : curl {base}/healthz",
        "",
        *service_lines(settings, ivr, base, now),
        "",
        f"Operators: register a softphone to sip:{a.sip_host}:{a.sip_port} (UDP) as",
        agents,
        f"  or let SIPp be operator {first}: register it, then answer on the same port:",
        f"  cd tests/sipp && sipp {a.sip_host}:{a.sip_port} -sf register.xml -s {first} "
        f"-au {first} \\",
        f"     -ap '{first_pw}' -i 127.0.0.1 -p 5071 -m 1 \\",
        "   && sipp -sf operator.xml -i 127.0.0.1 -p 5071 -mp 17000 -m 1 -d 1500",
        "",
        "Call the city call center (DID 1000) with SIPp, pressing 2 for English:",
        f"  cd tests/sipp && sipp {a.sip_host}:{a.sip_port} -sf caller.xml -s 1000 -m 1 \\",
        "     -i 127.0.0.1 -p 5061 -mp 16000 -d 7000 -key caller 0312345678 \\",
        "     -key dtmf /usr/share/sip-tester/dtmf_2833_2.pcap",
        "",
    ])


async def wait_ready(engine: Engine, host: str, port: int,
                     timeout: float = READY_TIMEOUT_S) -> list[str]:
    """Wait until FastAGI listens, AMI is logged in with the operators' states read, and the
    web server accepts connections; returns what is still missing at the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        missing = []
        if not engine.fastagi.listening:
            missing.append("FastAGI is not listening")
        if not engine.ami.connected:
            missing.append("Asterisk's AMI is not logged in (is Asterisk running?)")
        elif not engine.acd.synced:
            missing.append("the operators' states are not read from Asterisk yet")
        if not await http_listening(host, port):
            missing.append(f"the web server is not listening on {host}:{port}")
        if not missing or loop.time() >= deadline:
            return missing
        await asyncio.sleep(0.2)


async def http_listening(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def command_name(argv0: str) -> str:
    """How the user started us, for commands they can paste (`.venv/bin/madoguchi ...`)."""
    path = Path(argv0)
    return str(path) if path.name == "madoguchi" else "madoguchi"
