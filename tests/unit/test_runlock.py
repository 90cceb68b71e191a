"""The daemon's run lock: an flock that dies with its holder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emsctl import runlock


def test_lock_lives_next_to_the_store(tmp_path: Path) -> None:
    assert runlock.lock_path(tmp_path / "ems.db") == tmp_path / "ems.lock"


def test_missing_file_means_not_held(tmp_path: Path) -> None:
    assert runlock.is_held(tmp_path / "ems.lock") is False


def test_held_lock_is_seen_and_refused_to_others(tmp_path: Path) -> None:
    path = tmp_path / "ems.lock"
    with runlock.acquire(path) as lock:
        assert lock.held
        assert runlock.is_held(path) is True
        assert runlock.holder(path) == os.getpid()
        with pytest.raises(runlock.LockHeld) as err:
            runlock.acquire(path)
        assert err.value.pid == os.getpid()
        assert f"pid {os.getpid()}" in str(err.value)
    assert runlock.is_held(path) is False
    runlock.acquire(path).release()  # free again


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    path = tmp_path / "ems.lock"
    code = (
        "import sys, time\nfrom emsctl import runlock\n"
        f"runlock.acquire({str(path)!r})\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert runlock.is_held(path) is True
        assert runlock.holder(path) == proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while runlock.is_held(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runlock.is_held(path) is False


def test_unknown_state_raises_instead_of_guessing(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(OSError):
        runlock.is_held(not_a_dir / "ems.lock")


def test_one_database_reached_through_a_symlink_has_one_lock(tmp_path: Path) -> None:
    """Two daemons on the same file, one through a link in another directory, must collide."""
    real_dir = tmp_path / "var"
    real_dir.mkdir()
    (real_dir / "ems.db").touch()
    link_dir = tmp_path / "home"
    link_dir.mkdir()
    (link_dir / "ems.db").symlink_to(real_dir / "ems.db")
    assert runlock.lock_path(link_dir / "ems.db") == runlock.lock_path(real_dir / "ems.db")
    with runlock.acquire(runlock.lock_path(real_dir / "ems.db")), pytest.raises(runlock.LockHeld):
        runlock.acquire(runlock.lock_path(link_dir / "ems.db"))
