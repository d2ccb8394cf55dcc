"""One engine per state folder: the engine holds an exclusive lock on state/engine.lock for
its whole life, and commands that delete data (erase, purge) take the same lock, so they
refuse to run beside a running engine instead of deleting under its feet.

flock(2) locks belong to the open file: the kernel drops them when the holder exits, however
it exits, so a crashed engine never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE = "engine.lock"


class StateLocked(Exception):
    """Another process (the engine) holds the state folder's lock."""

    def __init__(self, state_dir: Path, holder: str) -> None:
        self.state_dir = state_dir
        who = f" (pid {holder})" if holder else ""
        super().__init__(f"the engine is running on the state folder {state_dir}{who}; "
                         "stop it first")


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting; StateLocked if another process holds it."""
        if self._fd is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateLocked(self.state_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        # the holder's pid, for the refusal message only: the lock itself is the flock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # the file stays: removing it would let a waiter lock a file nobody else opens
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
