"""Find or build an Asterisk and run it on the generated configuration.

A system Asterisk >= 20 is used when installed. Otherwise a Debian sid root file system with
Asterisk 22 is built once with mmdebstrap (cached outside the project) and Asterisk runs in it
under chroot, in a private mount namespace where the instance folder is bind-mounted at
/srv/madoguchi, so nothing inside the root file system is edited and mounts vanish with it.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings

from .confgen import CHROOT_MOUNT, Layout, layout_for
from .sharing import ASTERISK_UMASK, RunAs, SharingError, pbx_user, share

log = logging.getLogger(__name__)

ROOTFS_PACKAGES = ["asterisk", "asterisk-modules", "asterisk-core-sounds-en-wav",
                   "asterisk-moh-opsound-wav"]


class PbxError(Exception):
    """Asterisk cannot be found, built or started."""


@dataclass(frozen=True)
class Pbx:
    chroot: bool
    rootfs: Path | None
    layout: Layout
    run_as: RunAs | None = None  # None: the engine is not root, Asterisk runs as its user

    def _asterisk(self, args: list[str], as_pbx_user: bool) -> list[str]:
        """argv running /usr/sbin/asterisk with `args` on this instance's configuration: in
        the root fs (private mount namespace, instance folder bind-mounted) or the system's."""
        argv = ["-C", f"{self.layout.asterisk}/etc/asterisk.conf", *args]
        umask = f"umask {ASTERISK_UMASK:03o}"
        drop = self.run_as if as_pbx_user else None
        if not self.chroot:
            user = ["-U", drop.user, "-G", drop.user] if drop is not None else []
            return ["sh", "-c", f"{umask} && exec {shlex.join(['asterisk', *user, *argv])}"]
        assert self.rootfs is not None
        mount_point = self.rootfs / CHROOT_MOUNT.lstrip("/")
        # the root fs has its own user table: drop to our host user by number, so files it
        # makes in the shared folders belong to that user on the host too
        user = ([f"--userspec={drop.uid}:{drop.gid}", f"--groups={drop.gid}"]
                if drop is not None else [])
        script = (f"{umask} && mount --bind {shlex.quote(str(self.layout.local))} "
                  f"{shlex.quote(str(mount_point))} && exec "
                  + shlex.join(["chroot", *user, str(self.rootfs), "/usr/sbin/asterisk", *argv]))
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]

    def command(self) -> list[str]:
        """Asterisk in the foreground, as its own unprivileged user."""
        return self._asterisk(["-f", "-n"], as_pbx_user=True)


def remote_command(pbx: Pbx, command: str) -> str:
    """Run one fixed Asterisk CLI command (e.g. `dialplan reload`) on the running instance
    through its control socket; the engine's AMI login holds no right to reload."""
    argv = pbx._asterisk(["-rx", command], as_pbx_user=False)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise PbxError(f"asterisk -rx {command!r} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def system_asterisk_version() -> tuple[int, int] | None:
    exe = shutil.which("asterisk")
    if exe is None:
        return None
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"Asterisk (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def choose(settings: Settings) -> Pbx:
    """Where and as whom Asterisk runs (the user is made by `unprivileged` at start)."""
    try:
        run_as = pbx_user(create=False)
    except SharingError:
        run_as = None
    mode = settings.asterisk.mode
    if mode == "system" or (mode == "auto" and (system_asterisk_version() or (0, 0)) >= (20, 0)):
        return Pbx(False, None, layout_for(settings, chroot=False), run_as)
    return Pbx(True, settings.asterisk.rootfs, layout_for(settings, chroot=True), run_as)


def rootfs_ready(rootfs: Path) -> bool:
    return (rootfs / "usr/sbin/asterisk").exists() and (rootfs / CHROOT_MOUNT.lstrip("/")).is_dir()


def build_rootfs(rootfs: Path) -> None:
    """Build the sid root file system once; an interrupted build never looks finished."""
    if rootfs_ready(rootfs):
        return
    if os.geteuid() != 0:
        raise PbxError("building the Asterisk root file system needs root (mmdebstrap, chroot)")
    if shutil.which("mmdebstrap") is None:
        raise PbxError("mmdebstrap is not installed: apt-get install mmdebstrap")
    tmp = rootfs.with_name(rootfs.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    log.info("building Asterisk root file system in %s (about a minute)", rootfs)
    # the sid Release file in the mirror can be past its Valid-Until date
    cmd = ["mmdebstrap", "--variant=minbase", "--aptopt=Acquire::Check-Valid-Until \"false\"",
           f"--include={','.join(ROOTFS_PACKAGES)}", "sid", str(tmp)]
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PbxError(f"mmdebstrap failed with exit code {result.returncode}")
    (tmp / CHROOT_MOUNT.lstrip("/")).mkdir(parents=True, exist_ok=True)
    if rootfs.exists():
        shutil.rmtree(rootfs)
    tmp.rename(rootfs)


def unprivileged(pbx: Pbx) -> Pbx:
    """The same PBX run as its own unprivileged user (created if needed), with the instance
    folder's owners and modes set for it. Called right before Asterisk starts."""
    run_as = pbx.run_as
    if os.geteuid() == 0 and run_as is None:
        try:
            run_as = pbx_user(create=True)
        except SharingError as exc:
            raise PbxError(str(exc)) from exc
    share(pbx.layout.local, run_as, pbx.layout.private)
    return Pbx(pbx.chroot, pbx.rootfs, pbx.layout, run_as)


def prepare(pbx: Pbx) -> None:
    if pbx.chroot:
        assert pbx.rootfs is not None
        build_rootfs(pbx.rootfs)
    elif system_asterisk_version() is None:
        raise PbxError("asterisk.mode is 'system' but no asterisk binary is on PATH")
