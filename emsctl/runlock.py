"""The daemon's run lock: an exclusive flock on `<dirname(store.path)>/ems.lock`.

The daemon holds it for its whole life (the kernel drops it when the process dies, so a crash
leaves no stale lock); CLI commands that switch devices check it so they do not fight a
running daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "ems.lock"


class LockHeld(Exception):
    """Another process holds the lock. `pid` is the holder's pid when it wrote one."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"{path} is held by {who}: is the EMS daemon running?")
        self.path = path
        self.pid = pid


def lock_path(store_path: str | Path) -> Path:
    """Where the daemon's lock lives for a given store file.

    The resolved path: the same database reached through a symlink must find the same lock.
    """
    return Path(store_path).resolve().parent / LOCK_NAME


class RunLock:
    """A held lock; release() or leave the `with` block (or exit) to drop it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(path: str | Path) -> RunLock:
    """Take the lock without waiting; raise LockHeld if another process has it.

    Writes our pid into the file for `holder()`; the file itself stays (its existence
    means nothing, only the flock does).
    """
    p = Path(path)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeld(p, holder(p)) from None
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return RunLock(p, fd)


def is_held(path: str | Path) -> bool:
    """True while some process holds the lock. A missing file means nobody does.

    Raises OSError when it cannot tell (e.g. no permission to open the file): callers that
    switch devices should treat that as "maybe held".
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops our shared probe lock
    return False


def holder(path: str | Path) -> int | None:
    """The pid the current (or last) holder wrote, if any."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
