"""The UI served by waitress on loopback: start, answer, stop; and the tick under UI load."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bench.webui_load import compare
from emsctl import clock
from emsctl.model import LoadId, LoadReading, LoadStatus, Snapshot, State, Transition
from tests.support.webui_kit import UiEnv, make_env
from webui.serve import serve


@pytest.fixture
def live_env(tmp_path: Path) -> Iterator[UiEnv]:
    e = make_env(tmp_path)
    yield e
    e.controller.close()
    e.store.close()


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_answers_on_loopback_and_close_stops_it(
    live_env: UiEnv, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="webui.serve"):
        server = serve(live_env.app, "127.0.0.1", 0)
    thread = server.start()
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        resp = httpx.get(server.url + "/api/status", timeout=5)
        assert resp.status_code == 200 and resp.headers["Server"] == "EMS"
        assert resp.json()["loads"]["wb_a"]["state"] == "arming"
    finally:
        server.close()
    assert not thread.is_alive()
    assert _refused(server.port)
    assert f"web UI on {server.url}" in caplog.text
    assert "without a password" not in caplog.text


def test_close_without_run_releases_the_port(live_env: UiEnv) -> None:
    server = serve(live_env.app, "127.0.0.1", 0)
    port = server.port
    server.close()
    assert _refused(port)


def test_a_busy_port_fails_at_start_up(live_env: UiEnv) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError):
            serve(live_env.app, "127.0.0.1", s.getsockname()[1])


def test_requests_while_the_controller_ticks_do_not_block_the_tick(live_env: UiEnv) -> None:
    """A tick like the daemon's (store writes, override read, report publish) timed without
    and with two clients polling every page and API of the UI."""
    env = live_env
    server = serve(env.app, "127.0.0.1", 0)
    server.start()
    n = 0

    def tick() -> None:
        nonlocal n
        n += 1
        now = clock.now()
        env.store.record_transitions(
            [
                Transition(
                    at=now,
                    load=LoadId.WB_A,
                    source=State.OFF if n % 2 else State.ARMING,
                    target=State.ARMING if n % 2 else State.OFF,
                    event="arm" if n % 2 else "cancel_arm",
                    reasons=("tick",),
                )
            ]
        )
        env.store.record_sample(
            now,
            Snapshot(at=now, grid_w=-1500.0, soc_pct=70.0, pv_w=4000.0),
            {
                load: LoadStatus(load, State.OFF, now - timedelta(minutes=1), LoadReading(False))
                for load in env.config.enabled_loads()
            },
        )
        env.controller.tick()

    try:
        quiet, loaded, loop = compare(tick, 60, server.url)
    finally:
        server.close()
    print(quiet.line("ticks alone"))
    print(loaded.line("ticks with UI load"))
    assert loop.errors == []
    assert loaded.served >= 20, "the request loop did not run alongside the ticks"
    # Blocking would show as ticks waiting for a lock or for SQLite's busy timeout (2 s).
    assert loaded.max_ms < 500, loaded
    assert loaded.p50_ms < 5 * quiet.p50_ms + 25, (quiet, loaded)
