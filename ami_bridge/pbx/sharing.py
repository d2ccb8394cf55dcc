"""Who owns what in the instance folder: Asterisk runs as an unprivileged user and shares
only what it must with the engine, through that user's group.

  state/                      engine only (0700)
  state/asterisk/             root:pbx 0750  (bind-mounted as Asterisk's /srv/madoguchi)
    etc/                      root:pbx 0750, files 0640  (Asterisk reads its config)
    db/ spool/ run/ log/      pbx:pbx 0700   (Asterisk's own)
    recordings/ (failopen/)   root:pbx 2770  (MixMonitor writes legs 0660, the engine reads)
    fax/ (in/ out/)           pbx:pbx 0700, files 0600  (FAXes: only Asterisk and root)
    sounds/                   root:pbx 2750, files 0640  (the engine writes prompts, Asterisk plays)

Asterisk's umask is 007: what it makes is shared with the engine through the group, and
nothing is readable by other local accounts.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PBX_USER = "madoguchi-pbx"
ASTERISK_UMASK = 0o007
PRIVATE_DIRS = ("db", "spool", "run", "log")
SHARED_WRITE_DIRS = ("recordings", "recordings/failopen")
SHARED_READ_DIRS = ("etc", "sounds")


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    user: str


class SharingError(Exception):
    """The unprivileged Asterisk user cannot be found or created."""


def pbx_user(create: bool = True) -> RunAs | None:
    """The user Asterisk runs as, created as a system user on first use. None when the
    engine is not root (then Asterisk already runs as this unprivileged user)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(PBX_USER)
    except KeyError:
        if not create:
            raise SharingError(f"user {PBX_USER!r} does not exist") from None
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        done = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", PBX_USER],
            capture_output=True, text=True, check=False)
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise SharingError(f"useradd {PBX_USER} failed: {done.stderr.strip()}") from None
        pw = pwd.getpwnam(PBX_USER)
        log.info("created system user %s (uid %d) for Asterisk", PBX_USER, pw.pw_uid)
    return RunAs(pw.pw_uid, pw.pw_gid, PBX_USER)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _tree(root: Path, uid: int, gid: int, dir_mode: int, file_mode: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        os.chown(d, uid, gid)
        os.chmod(d, dir_mode)
        for name in filenames:
            f = d / name
            if f.is_symlink():
                continue
            os.chown(f, uid, gid)
            os.chmod(f, file_mode)
        dirnames[:] = [n for n in dirnames if not (d / n).is_symlink()]


def share(local: Path, run_as: RunAs | None, private: tuple[str, ...] = ()) -> None:
    """Set owners and modes of the instance folder before Asterisk starts; `private` are
    further folders of Asterisk's own (Layout.private)."""
    uid = os.geteuid()
    gid = run_as.gid if run_as is not None else os.getegid()
    os.chown(local, uid, gid)
    os.chmod(local, 0o750)  # noqa: S103 - the PBX group only
    for sub in (*PRIVATE_DIRS, *private):
        path = local / sub
        path.mkdir(exist_ok=True)
        owner = run_as.uid if run_as is not None else uid
        # only the top folder and what Asterisk made: never follow links
        _tree(path, owner, gid, 0o700, 0o600)
    for sub in SHARED_READ_DIRS:
        path = local / sub
        path.mkdir(exist_ok=True)
        _tree(path, uid, gid, 0o2750, 0o640)
    for sub in SHARED_WRITE_DIRS:
        path = local / sub
        path.mkdir(exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, 0o2770)  # noqa: S103 - the PBX group only

