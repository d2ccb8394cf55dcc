"""A throwaway PostgreSQL 15 cluster for tests: initdb into a temporary folder, the server on
a unix socket folder and a loopback port, databases made on demand, all removed at the end.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` system
user of the Debian package. Its settings trade durability for speed (fsync off): the
cluster lives only as long as the test session.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.ports import free_port

PG_BIN = Path(os.environ.get("MADOGUCHI_PG_BIN", "/usr/lib/postgresql/15/bin"))
OWNER = "madoguchi"  # the cluster's superuser, the tests' database role
START_TIMEOUT_S = 60
PORT_TRIES = 5


class PgUnavailable(Exception):
    """PostgreSQL is not installed here (or there is no user to run it as)."""


@dataclass
class PgCluster:
    root: Path
    port: int
    password: str
    proc: subprocess.Popen[bytes]
    _made: int = field(default=0)

    @property
    def sockets(self) -> Path:
        return self.root / "sock"

    def url(self, database: str) -> str:
        return (f"postgresql+asyncpg://{OWNER}:{self.password}@127.0.0.1:{self.port}/"
                f"{database}")

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        if name is None:
            self._made += 1
            name = f"t{self._made}"
        # over the socket folder, which only the server's user (and root) can enter
        _run([str(PG_BIN / "createdb"), "-h", str(self.sockets), "-p", str(self.port),
              "-U", OWNER, name], f"createdb {name}")
        return self.url(name)

    def log_tail(self) -> str:
        try:
            return (self.root / "postgres.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: clients are cut off
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          cwd=cwd, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")


def _server_user() -> tuple[list[str], int, int] | None:
    """argv prefix that runs a command as the `postgres` user (when we are root), its uid
    and gid; None when we are not root and run the server as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PgUnavailable("running as root and there is no `postgres` user to run "
                            "PostgreSQL as (Debian package postgresql)") from exc
    if shutil.which("setpriv") is None:
        raise PgUnavailable("setpriv (util-linux) is needed to run PostgreSQL as `postgres`")
    # --pdeathsig: the server goes down with the test process even if that one is killed
    return (["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
             "--pdeathsig=TERM", "--"], user.pw_uid, user.pw_gid)


def _ready(data: Path) -> bool:
    """postmaster.pid's 8th line says `ready` once the server accepts connections."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


def start_cluster() -> PgCluster:
    """initdb and start a cluster; PgUnavailable when PostgreSQL is not installed."""
    for tool in ("initdb", "postgres", "createdb"):
        if not (PG_BIN / tool).is_file():
            raise PgUnavailable(f"{PG_BIN / tool} not found (Debian package postgresql)")
    as_server = _server_user()
    prefix = as_server[0] if as_server else []
    root = Path(tempfile.mkdtemp(prefix="madoguchi-pg-"))
    try:
        (root / "sock").mkdir(mode=0o700)
        password = secrets.token_urlsafe(24)
        pwfile = root / "pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if as_server:
            for path in (root, root / "sock", pwfile):
                os.chown(path, as_server[1], as_server[2])
        data = root / "data"
        # trust on the socket (its folder is the server user's, mode 0700), a password on
        # TCP: other local users cannot get in through the loopback port
        _run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", OWNER,
              f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
              "--encoding=UTF8", "--locale=C", "--no-sync"], "initdb", cwd=root)
        pwfile.unlink()
        return _start(root, data, password, prefix)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start(root: Path, data: Path, password: str, prefix: list[str]) -> PgCluster:
    last = ""
    for _ in range(PORT_TRIES):  # a port taken between free_port() and bind: another one
        port = free_port()
        with open(root / "postgres.log", "ab") as log:
            proc = subprocess.Popen(
                [*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-k", str(root / "sock"),
                 "-h", "127.0.0.1", "-p", str(port), "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        cluster = PgCluster(root, port, password, proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and not _ready(data) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _ready(data):
            return cluster
        last = cluster.log_tail()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            break  # not a port clash: it never came up
    raise RuntimeError(f"PostgreSQL did not start: {last}")
