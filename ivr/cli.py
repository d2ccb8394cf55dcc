"""`madoguchi flows check | simulate | schema`: the IVR's command-line tools.

`simulate` runs the same interpreter as live calls against a fake clock and a dry world
(nothing is synthesised; the sound names show which language would really play).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from core.settings import load_settings

from .booking_call import run_dialogue
from .booking_dialogue import BookingDialogue, Speak
from .booking_sample import SampleBookings
from .errors import FlowSetInvalid
from .events import Board, announcement_text, load_events
from .flow import json_schema
from .flowset import CallWorld, Sources, check, read_flow_set
from .interpreter import (
    CallInfo,
    Collect,
    Digits,
    End,
    Enqueue,
    Interpreter,
    Played,
    RunBooking,
    Say,
    TransferTo,
)
from .prompts import LANGUAGES, Audio
from .schedule import Override, OverrideMode
from .tts import Tts


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    flows = sub.add_parser("flows", help="IVR flows: check | simulate | schema")
    fsub = flows.add_subparsers(dest="flows_command", required=True)
    c = fsub.add_parser("check", help="validate a flows folder; every error with file:line")
    c.add_argument("dir", nargs="?", help="flows folder (default: <config>/flows)")
    c.set_defaults(func=cmd_check)
    s = fsub.add_parser("simulate", help="dry-run a flow: path and prompts a caller hears")
    s.add_argument("flow", help="flow name (config/flows/<flow>.yaml)")
    s.add_argument("--at", help="local time, e.g. 2026-12-30T19:00 (default: now)")
    s.add_argument("--dtmf", default="", help="keys pressed at each menu, e.g. 2,1")
    s.add_argument("--caller", default="0312345678")
    s.add_argument("--did", default="")
    s.add_argument("--override", choices=[m.value for m in OverrideMode],
                   help="pretend this override is in force for every service")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_simulate)
    j = fsub.add_parser("schema", help="print the JSON Schema of a flow file")
    j.set_defaults(func=cmd_schema)


def _sources(args: argparse.Namespace) -> Sources:
    settings = load_settings(Path(args.config), Path(args.state), args.env)
    flow_dir = Path(args.dir) if getattr(args, "dir", None) else None
    if flow_dir is not None:
        # a staging copy is checked with the prompts/schedules/events beside it
        src = Sources.from_settings(settings, flow_dir)
        if (flow_dir.parent / "prompts.yaml").exists():
            src = Sources(flow_dir.parent, flow_dir, src.queues, src.services, src.transfers)
        return src
    return Sources.from_settings(settings)


def cmd_check(args: argparse.Namespace) -> int:
    errors = check(_sources(args))
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    print("flows OK")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    src = _sources(args)
    try:
        fs = read_flow_set(src, Tts(Path(args.state) / "sim"), Path(args.state), dry=True)
    except FlowSetInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    flow = fs.flows.get(args.flow)
    if flow is None:
        print(f"no flow {args.flow!r} (have: {', '.join(sorted(fs.flows))})", file=sys.stderr)
        return 1
    tz = fs.schedules.tz
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(tz)
    at = at if at.tzinfo else at.replace(tzinfo=tz)
    events = load_events(Path(args.state) / "ivr" / "events.json", fs.board.statuses, tz,
                         fs.board.seed)
    audio = {ev.id: {lang: Audio(f"event:{ev.id}", lang,
                                 announcement_text(ev, fs.board.statuses[ev.status], lang),
                                 f"board/{ev.id}.{lang}") for lang in LANGUAGES}
             for ev in events}
    overrides = {}
    if args.override:
        overrides = {s: Override(s, OverrideMode(args.override), at, "simulate")
                     for s in fs.entry}
    world = CallWorld(fs, overrides, Board((), {}).with_events(events, audio))
    service = next((s for s, f in fs.entry.items() if f == args.flow), args.flow)
    keys = [k for k in args.dtmf.replace(" ", "").split(",") if k]
    interp = Interpreter(flow, world, CallInfo(args.caller, args.did, service), lambda: at)
    steps: list[dict[str, object]] = []
    sample = SampleBookings(at, tz)
    booked = False
    instruction = interp.start()
    while True:
        if isinstance(instruction, RunBooking):
            booked = True
            dialogue = BookingDialogue(instruction.category, instruction.language,
                                       args.caller, tz, instruction.max_events)
            script = _Script(interp.path[-1], instruction.language, keys, steps)
            steps.append({"node": interp.path[-1], "language": instruction.language,
                          "say": [f"[{SampleBookings.LABEL}]"]})
            asyncio.run(run_dialogue(dialogue, sample, script, "simulate"))
            instruction = interp.feed(Played())
            continue
        if isinstance(instruction, Say | Collect):
            key = keys.pop(0) if isinstance(instruction, Collect) and keys else ""
            steps.append({"node": interp.path[-1], "language": interp.language,
                          "say": [_said(a) for a in instruction.audio],
                          **({"keys": key or "(timeout)"} if isinstance(instruction, Collect)
                             else {})})
            instruction = interp.feed(Digits(key) if isinstance(instruction, Collect)
                                      else Played())
            continue
        end = _ending(instruction)
        break
    result = {"flow": args.flow, "version": fs.version, "at": at.isoformat(),
              "path": interp.path, "language": interp.language, "steps": steps, "end": end,
              **({"bookings": sample.calls} if booked else {})}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(f"flow {args.flow} (version {fs.version}) at {at.isoformat()}")
    print("path: " + " -> ".join(interp.path))
    for step in steps:
        keys_txt = f"  [keys: {step['keys']}]" if "keys" in step else ""
        print(f"  {step['node']} ({step['language']}){keys_txt}")
        for line in step["say"]:  # type: ignore[attr-defined]
            print(f"      {line}")
    if booked:
        print(SampleBookings.LABEL + ": " + (", ".join(sample.calls) or "nothing asked"))
    print(f"end: {end}")
    return 0


class _Script:
    """The booking dialogue in a dry run: its sentences are recorded as steps of the node,
    and its keys taken from --dtmf like a menu's."""

    def __init__(self, node: str, language: str, keys: list[str],
                 steps: list[dict[str, object]]) -> None:
        self.node, self.language, self.keys, self.steps = node, language, keys, steps

    async def speak(self, step: Speak) -> Played | Digits:
        said = [f"«{text}»" for text in step.texts]
        if not step.collect:
            self.steps.append({"node": self.node, "language": self.language, "say": said})
            return Played()
        key = self.keys.pop(0) if self.keys else ""
        self.steps.append({"node": self.node, "language": self.language, "say": said,
                           "keys": key or "(timeout)"})
        return Digits(key)


def _said(a: Audio) -> str:
    if a.sound is None:
        return f"[{a.key}: no audio] {a.text}"
    note = f" (no {a.language}: played in {a.spoken})" if a.spoken else ""
    return f"«{a.text}»{note}"


def _ending(instruction: Enqueue | TransferTo | End) -> str:
    if isinstance(instruction, Enqueue):
        return (f"queue {instruction.queue} (topic {instruction.topic or '-'}, "
                f"priority {instruction.priority}"
                + (", post-call survey)" if instruction.survey else ")"))
    if isinstance(instruction, TransferTo):
        return f"transfer to {instruction.number} ({instruction.dial})"
    return f"hang up ({instruction.reason})"
