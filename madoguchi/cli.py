"""Command line: `madoguchi run | up | pbx … | prompts build | config check | secrets show |
users … | db …`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ami_bridge.pbx import confgen, runner
from core.environ import Environ, resolve
from core.secrets import Secrets, load_or_create, rotate_fastagi_secret
from core.settings import Settings, load_settings
from core.statelock import StateLocked
from core.yamlconf import ConfigError

if TYPE_CHECKING:
    from kpi.service import OtherChannels
    from store.db import Database

    from .engine import Engine


def _load(args: argparse.Namespace) -> tuple[Settings, Secrets]:
    env: Environ = args.env
    settings = load_settings(Path(args.config), Path(args.state), env)
    from ivr.errors import FlowSetInvalid
    from ivr.flowset import Sources, check

    # validate everything the engine will read, so a bad file stops the start with its line
    errors = check(Sources.from_settings(settings))
    if errors:
        raise FlowSetInvalid(errors)
    from recordings.config import recording_settings

    recording_settings(settings)  # the feature's own section, validated before anything starts
    from bookings.settings import booking_settings

    booking_settings(settings)

    from core.fax import fax_settings

    fax_settings(settings)  # likewise the FAX section
    return settings, load_or_create(settings.state_dir, [a.id for a in settings.agents], env)


def _generate(settings: Settings, secrets: Secrets, env: Environ) -> runner.Pbx:
    from ivr.prompts import build_prompts, load_prompt_texts

    pbx = runner.choose(settings)
    confgen.write(settings, secrets, pbx.layout)
    texts = load_prompt_texts(settings.config_dir / "prompts.yaml")
    build_prompts(texts, pbx.layout.local / "sounds", env.tts_cache)
    return pbx


def announce_when_ready(engine: Engine, with_pbx: bool
                        ) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """A cleanup context printing the banner once the engine is ready (or, after a minute,
    what it still waits for), never before."""
    from console.http import CONSOLE

    from .banner import command_name, ready_banner, wait_ready

    settings = engine.settings

    async def announce(app: web.Application) -> None:
        missing = await wait_ready(engine, settings.http.host, settings.http.port)
        if missing:
            print("madoguchi is not ready yet: " + "; ".join(missing), flush=True)
            return
        has_users = bool(await app[CONSOLE].users.all())
        print(ready_banner(settings, engine.secrets, engine.ivr_state, has_users,
                           show_passwords=with_pbx, now=engine.tracker.clock(),
                           command=command_name(sys.argv[0])), flush=True)

    @contextlib.asynccontextmanager
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(announce(app))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return ctx


def cmd_run(args: argparse.Namespace, with_pbx: bool) -> int:
    from .engine import Engine
    from .web import make_app

    settings, secrets = _load(args)
    pbx = _generate(settings, secrets, args.env) if with_pbx else runner.choose(settings)
    child: subprocess.Popen[bytes] | None = None
    if with_pbx:
        runner.prepare(pbx)
        pbx = runner.unprivileged(pbx)
        log_path = pbx.layout.local / "log" / "console.log"
        with open(log_path, "ab") as log_file:
            child = subprocess.Popen(pbx.command(), stdin=subprocess.DEVNULL, stdout=log_file,
                                     stderr=subprocess.STDOUT)
        logging.getLogger(__name__).info("Asterisk started (pid %d), log %s", child.pid,
                                         log_path)
    try:
        engine = Engine(settings, secrets, pbx.layout, args.env)
        app = make_app(engine)
        app.cleanup_ctx.append(announce_when_ready(engine, with_pbx))
        web.run_app(app, host=settings.http.host, port=settings.http.port, print=None,
                    handle_signals=True, shutdown_timeout=10)
    finally:
        if child is not None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


def cmd_pbx(args: argparse.Namespace) -> int:
    settings, secrets = _load(args)
    if args.action == "build":
        pbx = runner.choose(settings)
        runner.prepare(pbx)
        print("chroot" if pbx.chroot else "system", pbx.rootfs or "asterisk")
        return 0
    pbx = _generate(settings, secrets, args.env)
    if args.action == "config":
        print(pbx.layout.local / "etc")
        return 0
    if args.action == "reload":  # the running Asterisk reads the configuration just written
        print(runner.remote_command(pbx, "core reload").strip() or "reloaded")
        return 0
    runner.prepare(pbx)  # start: Asterisk in the foreground until SIGTERM
    pbx = runner.unprivileged(pbx)
    os.execvp(pbx.command()[0], pbx.command())
    return 0  # pragma: no cover - exec does not return


def cmd_check(args: argparse.Namespace) -> int:
    _load(args)
    print("config OK")
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    if args.rotate:
        return rotate_fastagi(args)
    _, secrets = _load(args)
    print(json.dumps({"api_token": secrets.api_token,
                      "sip_passwords": secrets.sip_passwords}, indent=2))
    return 0


def rotate_fastagi(args: argparse.Namespace) -> int:
    """New FastAGI secret, the dialplan regenerated to carry it, and a running Asterisk told
    to re-read its dialplan. A running engine needs nothing: it re-reads secrets.json when a
    session presents another secret, and once the new one is presented the old one is dead."""
    settings, _ = _load(args)
    rotate_fastagi_secret(settings.state_dir)
    secrets = load_or_create(settings.state_dir, [a.id for a in settings.agents], args.env)
    pbx = runner.choose(settings)
    etc = confgen.write(settings, secrets, pbx.layout).parent
    print(f"FastAGI secret rotated in {settings.state_dir / 'secrets.json'}; the dialplan in "
          f"{etc / 'extensions.conf'} carries the new one.")
    if not (pbx.layout.local / "run" / "asterisk.ctl").exists():
        print("Asterisk is not running: it reads the new dialplan when it starts.")
        return 0
    try:
        runner.remote_command(pbx, "dialplan reload")
    except runner.PbxError as exc:
        print(f"madoguchi: the dialplan was not reloaded ({exc}). Until it is (Asterisk "
              "CLI: dialplan reload), Asterisk presents the old secret, which a running "
              "engine still accepts but a restarted one refuses.", file=sys.stderr)
        return 3
    print("Asterisk reloaded its dialplan. The running engine switches to the new secret "
          "with the first call that presents it; no restart is needed.")
    return 0


Command = Callable[[argparse.Namespace], int]


def build_parser(env: Environ | None = None) -> argparse.ArgumentParser:
    """Each sub-command sets `func`; packages add theirs here, one block each. Every command
    finds the environment's overrides (core/environ.py) in `args.env`."""
    env = resolve(env)
    parser = argparse.ArgumentParser(prog="madoguchi")
    parser.set_defaults(env=env)
    parser.add_argument("--config", default=env.config_dir)
    parser.add_argument("--state", default=env.state_dir)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the engine (Asterisk runs separately)").set_defaults(
        func=lambda a: cmd_run(a, with_pbx=False))
    sub.add_parser("up", help="generate config, start Asterisk and the engine together"
                   ).set_defaults(func=lambda a: cmd_run(a, with_pbx=True))
    pbx = sub.add_parser("pbx", help="Asterisk: build | config | start | reload")
    pbx.add_argument("action", choices=["build", "config", "start", "reload"])
    pbx.set_defaults(func=cmd_pbx)
    sub.add_parser("check", help="validate the config folder").set_defaults(func=cmd_check)
    secrets = sub.add_parser("secrets", help="print the generated secrets (operators' SIP "
                             "passwords), or --rotate the FastAGI secret")
    secrets.add_argument("--rotate", action="store_true",
                         help="replace the FastAGI secret, regenerate the dialplan and reload "
                         "it in a running Asterisk")
    secrets.set_defaults(func=cmd_secrets)
    from ivr.cli import add_parser as add_flows_parser

    add_flows_parser(sub)  # flows check | simulate | schema
    from bookings.service import BookingService
    from kpi.cli import add_commands as add_kpi_commands
    from kpi.service import KpiService

    def with_bookings(kpi: KpiService) -> None:  # the monthly report counts bookings too
        kpi.booking_counts = BookingService(kpi.db).counts

    # kpi | staffing | report; the report counts FAXes and bookings
    add_kpi_commands(sub, _fax_counts, with_bookings)
    from recordings.cli import add_commands as add_recording_commands

    add_recording_commands(sub)
    from bookings.cli import add_commands as add_booking_commands

    add_booking_commands(sub)  # bookings purge | draw; its tables join export and erase
    from fax.cli import add_commands as add_fax_commands

    add_fax_commands(sub)  # fax index | purge | export | erase
    erase = sub.choices["erase"]
    erase.set_defaults(func=_erase_with_fax(erase.get_default("func")))
    from console.cli import add_parser as add_users_parser

    add_users_parser(sub)  # users add | list; import directory | faq
    from store.cli import add_parser as add_db_parser

    add_db_parser(sub)  # db upgrade | current
    return parser


def _fax_counts(db: Database, settings: Settings) -> OtherChannels:
    """The FAX feature's counts for the monthly report (outside the phone KPIs)."""
    from fax.service import FaxService
    from fax.settings import fax_config

    return FaxService(db, fax_config(settings)).counts


def _erase_with_fax(erase_recordings: Command) -> Command:
    """`erase --all --confirm` removes the FAXes too (their files first, with their own
    deletion report), then the rest. One JSON result, as before: the FAX part under "fax"."""
    def erase(args: argparse.Namespace) -> int:
        if not (args.all and args.confirm):
            return erase_recordings(args)  # refused, with the usual message
        from fax.cli import erase_job, run

        args.action = "erase"
        fax_out = io.StringIO()
        with contextlib.redirect_stdout(fax_out):
            code = run(args, erase_job(), deletes=True)
        if code:
            sys.stdout.write(fax_out.getvalue())
            return code
        rest = io.StringIO()
        with contextlib.redirect_stdout(rest):
            code = erase_recordings(args)
        try:
            result = json.loads(rest.getvalue())
            result["fax"] = json.loads(fax_out.getvalue())
        except (ValueError, TypeError):  # not the usual result: show both as they came
            sys.stdout.write(fax_out.getvalue() + rest.getvalue())
            return code
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return code
    return erase


def private_state(state: Path) -> None:
    """Recordings, call records and secrets are personal data: whatever this process makes
    is its own (umask 077) and the state folder is closed to other local accounts."""
    os.umask(0o077)
    state.mkdir(parents=True, exist_ok=True)
    if state.stat().st_uid == os.geteuid():
        state.chmod(0o700)


def main(argv: list[str] | None = None) -> int:
    # the environment is read here, once; everything below is handed what it needs
    args = build_parser(Environ.read()).parse_args(argv)
    private_state(Path(args.state))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func: Command = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"madoguchi: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except runner.PbxError as exc:
        print(f"madoguchi: {exc}", file=sys.stderr)
        return 3
    except StateLocked as exc:  # a second engine on the same state folder
        print(f"madoguchi: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
