"""`emsctl run` from a checkout: `--db PATH` instead of the config's store.path, and a port in
use refused in one line (exit 2) with nothing left running or locked."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def test_db_puts_the_database_where_asked(tmp_path: Path) -> None:
    proc = _run("--config", str(_config(tmp_path)), "--db", "here.db", "--dry-run", cwd=tmp_path)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "EMS running" in line or not line:
                break
        assert any(
            "EMS running (dry run: nothing is switched); database here.db" in s for s in seen
        ), seen
        assert (tmp_path / "here.db").exists()
        assert not (tmp_path / "nowhere").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, web_port=port)
        proc = _run("--config", str(cfg), "--db", "ems.db", cwd=tmp_path)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    (line,) = [x for x in out.splitlines() if "in use" in x]
    assert f"port {port} on 127.0.0.1 for the web UI is already in use" in line
    assert "set webui.port in the config" in line
    # The lock and the database are free again: the same command starts with a free port.
    proc = _run("--config", str(_config(tmp_path)), "--db", "ems.db", cwd=tmp_path)
    try:
        assert proc.stdout is not None
        for _ in range(200):
            if "EMS running" in proc.stdout.readline():
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
