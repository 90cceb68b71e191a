"""`emsctl run` from a checkout: `--db PATH` instead of the config's store.path, the addresses
as the last start-up lines, and a port in use refused in one line (exit 2) with nothing left
running or locked."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, *, web_port: int = 0, metrics_port: int = 0) -> Path:
    doc = {
        # Nothing listens there: ticks find Prometheus down, which is all these tests need.
        "prometheus": {"url": "http://127.0.0.1:9", "timeout_s": 1},
        "loads": {
            "sg_ready": {"device": {"type": "none"}},
            "dhw": {"enabled": False},
            "wb_a": {"device": {"type": "none"}},
            "wb_b": {"device": {"type": "none"}},
        },
        "viessmann": {"enabled": False},
        "forecast": {"enabled": False},
        "store": {"path": str(tmp_path / "nowhere" / "ems.db")},  # a directory that is not there
        "webui": {"bind": "127.0.0.1", "port": web_port},
        "metrics": {"bind": "127.0.0.1", "port": metrics_port},
    }
    path = tmp_path / "ems-config.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _run(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emsctl.cli", "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(cwd)},
    )


def _until_metrics_line(proc: subprocess.Popen[str]) -> list[str]:
    """The output up to the metrics address, the last start-up line."""
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"no metrics address; the output:\n{''.join(seen)}")
        seen.append(line.rstrip("\n"))
        if " metrics: http://" in line:
            return seen


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_db_puts_the_database_where_asked_and_the_addresses_come_last(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cfg = _config(tmp_path)
    proc = _run("--config", str(cfg), "--db", "data/here.db", "--dry-run", cwd=tmp_path)
    try:
        seen = _until_metrics_line(proc)
    finally:
        _stop(proc)
    assert seen[-3].endswith(
        "INFO emsctl.daemon: EMS running (dry run: nothing is switched); database data/here.db"
    ), seen
    assert re.search(r"INFO emsctl\.daemon: web UI: http://127\.0\.0\.1:\d+/$", seen[-2]), seen
    assert re.search(r"INFO emsctl\.daemon: metrics: http://127\.0\.0\.1:\d+/metrics$", seen[-1])
    # Alembic's "Context impl SQLiteImpl" / "Will assume non-transactional DDL" are quiet.
    assert not any("alembic" in s or "SQLiteImpl" in s for s in seen), seen
    assert (tmp_path / "data" / "here.db").exists()
    # What the daemon keeps beside its database goes with --db, not to store.path's directory.
    assert (tmp_path / "data" / "ems.lock").exists()
    assert (tmp_path / "data" / "webui-secret").exists()
    assert not (tmp_path / "nowhere").exists()


def test_db_in_a_missing_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _run("--config", str(_config(tmp_path)), "--db", "gone/ems.db", cwd=tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert out.splitlines() == [
        "emsctl run: --db gone/ems.db: directory gone does not exist "
        "(create it, or pick another path)"
    ]


@pytest.mark.parametrize(("server", "what"), [("webui", "web UI"), ("metrics", "metrics exporter")])
def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path, server: str, what: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, **{"web_port" if server == "webui" else "metrics_port": port})
        proc = _run("--config", str(cfg), "--db", "ems.db", cwd=tmp_path)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    (line,) = [x for x in out.splitlines() if "in use" in x]
    assert line == (
        f"cannot start: port {port} on 127.0.0.1 for the {what} is already in use; "
        f"set {server}.port in the config"
    )
    assert out.splitlines()[-1] == line  # the reason is the last line
    # The lock and the database are free again: the same command starts with a free port.
    proc = _run("--config", str(_config(tmp_path)), "--db", "ems.db", cwd=tmp_path)
    try:
        _until_metrics_line(proc)
    finally:
        _stop(proc)
