"""`emsctl demo`, what `make demo` runs: the shipped demo config on the simulated house with
the web UI and the metrics exporter served, the forecast shown, transitions stored, and
Ctrl-C or the end of the requested minutes ending it cleanly.

Only the ports differ from the shipped demo config, emsctl/sim/demo.yaml (0: any free one,
read from the log), so that the test never collides with a demo the owner has running.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from emsctl.sim.demo import DEMO_CONFIG
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path) -> Path:
    doc = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["webui"]["port"] = 0
    doc["metrics"]["port"] = 0
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _demo(
    tmp_path: Path, *args: str, log_name: str = "demo.log"
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / log_name
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emsctl.cli", "demo", "--config", str(_config(tmp_path)), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _wait_for(
    log: Path, pattern: str, proc: subprocess.Popen[bytes], timeout_s: float = 30
) -> re.Match[str]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = re.search(pattern, log.read_text(encoding="utf-8", errors="replace"))
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the demo's log:\n{log.read_text()[-3000:]}")


def _transitions(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM transitions").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0


def test_the_demo_serves_ui_and_metrics_records_transitions_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    # A spring morning with passing clouds: loads start and stop within minutes.
    proc, log = _demo(tmp_path, "--db", str(db), "--start", "10:00", "--speed", "0.05")
    try:
        ui = _wait_for(log, r"web UI on (http://127\.0\.0\.1:\d+)", proc).group(1)
        metrics = _wait_for(log, r"metrics on (http://127\.0\.0\.1:\d+/metrics)", proc).group(1)

        wait_until(lambda: _transitions(db) >= 3 or proc.poll() is not None, 60, "transitions")
        assert _transitions(db) >= 3, log.read_text()[-3000:]

        page = httpx.get(ui + "/", timeout=10)
        assert page.status_code == 200
        assert "Heat pump SG-Ready" in page.text and "Wallbox B" in page.text
        status = httpx.get(ui + "/partials/status", timeout=10).text
        # The demo's simulated forecast: the PV still to come today.
        assert re.search(r"[\d.]+ kWh left today", status), status

        text = httpx.get(metrics, timeout=10).text
        ticks = re.search(r"^ems_ticks_total (\S+)$", text, re.M)
        assert ticks and float(ticks.group(1)) >= 1
        assert re.search(r'^ems_transitions_total\{event="arm",load="\w+"\} [1-9]', text, re.M)
        assert "ems_tick_failures_total 0.0" in text

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert "stopped" in out
    assert "Traceback" not in out


def test_the_demo_ends_by_itself_after_the_requested_minutes(tmp_path: Path) -> None:
    proc, log = _demo(tmp_path, "--minutes", "20", "--speed", "0.01")
    try:
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()


def _startup_lines(log: Path, proc: subprocess.Popen[bytes]) -> list[str]:
    _wait_for(log, r"Ctrl-C stops the demo\.", proc)
    lines = log.read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if "Ctrl-C stops the demo." in line)
    return lines[: end + 1]


def _last_sample(db: Path) -> str | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute("SELECT max(at) FROM samples").fetchone()[0]  # type: ignore[no-any-return]
        except sqlite3.OperationalError:  # not created yet
            return None


def test_the_demo_goes_on_past_the_end_of_its_scenario_and_prints_its_urls_last(
    tmp_path: Path,
) -> None:
    """A newcomer opens the browser minutes later: the demo must still be there."""
    proc, log = _demo(tmp_path, "--speed", "0.001", "--start", "22:00")
    try:
        head = _startup_lines(log, proc)
        # The addresses are the last start-up lines, after every library's INFO line.
        assert re.fullmatch(r"\s*web UI: http://127\.0\.0\.1:\d+/", head[-3])
        assert re.fullmatch(r"\s*metrics: http://127\.0\.0\.1:\d+/metrics", head[-2])
        assert head[-1] == "  Ctrl-C stops the demo."
        # Alembic's "Context impl SQLiteImpl", "Will assume non-transactional DDL" and plugin
        # lines are not among them.
        assert not any("alembic" in line or "SQLiteImpl" in line for line in head), head
        assert head[-5].startswith("EMS demo: scenario s2_spring_fast_clouds, simulated from ")
        db = re.fullmatch(
            r"  database: (\S+) \(temporary, deleted at exit; --db PATH keeps one\)", head[-4]
        )
        assert db is not None, head
        ui = re.search(r"web UI: (http://\S+)/", head[-3]).group(1)  # type: ignore[union-attr]
        # Two hours of the scenario's last day, then the next simulated day begins.
        _wait_for(
            log,
            r"scenario s2_spring_fast_clouds starts again: simulated 2026-05-11 00:00",
            proc,
            60,
        )
        _wait_for(log, r"starts again: simulated 2026-05-12 00:00", proc, 60)
        assert proc.poll() is None
        assert httpx.get(ui + "/", timeout=10).status_code == 200
        # The history goes on in the database too, past the scenario's end (2026-05-10 22:00Z).
        last = _last_sample(Path(db.group(1)))
        assert last is not None and last >= "2026-05-11 22:00", last
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not Path(db.group(1)).exists()  # the temporary database goes with the demo
    assert not Path(db.group(1)).parent.exists()
    assert "Traceback" not in log.read_text()


def test_a_database_given_with_db_is_kept_and_a_second_run_goes_on_after_its_days(
    tmp_path: Path,
) -> None:
    db = tmp_path / "kept.db"
    proc, log = _demo(tmp_path, "--db", str(db), "--minutes", "5", "--speed", "0.01")
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert f"  database: {db} (kept)" in log.read_text().splitlines()
    assert db.exists()
    with sqlite3.connect(db) as conn:
        first = [r[0] for r in conn.execute("SELECT at FROM samples ORDER BY id")]
    assert len(first) >= 4
    # Run again on it: the simulated days go on after those it holds, never back in time.
    proc, log = _demo(
        tmp_path, "--db", str(db), "--minutes", "3", "--speed", "0.01", log_name="again.log"
    )
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert "simulated from 2026-05-11 06:00 local" in log.read_text()
    with sqlite3.connect(db) as conn:
        times = [r[0] for r in conn.execute("SELECT at FROM samples ORDER BY id")]
    assert times[: len(first)] == first and len(times) > len(first)
    assert times == sorted(times)
    assert times[len(first)].startswith("2026-05-11 04:00")  # 06:00 local (CEST), a day later


def _taken_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


@pytest.mark.parametrize("flag", ["--web-port", "--metrics-port"])
def test_a_port_in_use_is_one_line_naming_it_and_the_flag(tmp_path: Path, flag: str) -> None:
    sock, port = _taken_port()
    try:
        db = tmp_path / "d.db"
        proc, log = _demo(tmp_path, flag, str(port), "--db", str(db), "--minutes", "3")
        assert proc.wait(timeout=60) == 2
    finally:
        sock.close()
    out = log.read_text()
    assert "Traceback" not in out
    (line,) = [x for x in out.splitlines() if "in use" in x]
    assert f"port {port}" in line and f"choose another with {flag} N" in line
    assert out.splitlines()[-1] == line  # the reason is the last line, nothing after it
    assert "EMS demo:" not in out  # no banner for a demo that did not start
    # Nothing is left holding the database: a second start on it works at once.
    proc, log = _demo(tmp_path, "--db", str(db), "--minutes", "2", log_name="again.log")
    assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--scenario", "nope"], "(bundled: s1_clear_summer, s2_spring_fast_clouds,"),
        (["--start", "25:00"], "is not a time of day HH:MM"),
        (["--start", "noon"], "is not a time of day HH:MM"),
        (["--start", "abc"], "is not a time of day HH:MM"),
        (["--start", "07:00+05:00"], "is not a time of day HH:MM"),
        (["--start", "07:00:00+05:00"], "is not a time of day HH:MM"),
        (["--speed", "0"], "above 0"),
        (["--speed", "-1"], "above 0"),
        (["--speed", "nan"], "above 0"),
        (["--speed", "inf"], "above 0"),
        (["--speed", "fast"], "is not a number"),
        (["--minutes", "0"], "at least 1"),
        (["--minutes", "-3"], "at least 1"),
        (["--web-port", "70000"], "0..65535"),
        (["--metrics-port", "-1"], "0..65535"),
        (["--db", "/nonexistent/dir/demo.db"], "directory /nonexistent/dir does not exist"),
    ],
)
def test_bad_demo_arguments_are_refused_in_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "emsctl.cli", "demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    # One line says what is wrong (argparse's usage lines may come before it).
    assert says in res.stderr.splitlines()[-1], res.stderr
    assert res.stdout == ""
