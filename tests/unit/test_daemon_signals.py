"""SIGTERM/SIGINT always stop the daemon, even when they arrive while it writes a log line.

The handler runs between two bytecodes of the main thread; if that thread is inside a write
to stderr, a log call from the handler fails with "reentrant call inside BufferedWriter", and
a handler that logged before raising its flag lost the signal: `emsctl run` then ignored
SIGTERM (seen as a flaky hang of tests/integration/test_run_cli.py)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from emsctl import daemon as daemon_mod
from emsctl.daemon import Daemon, RunOptions


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


class _Reentrant(logging.Handler):
    """A handler whose stream is busy, as stderr is when the signal interrupts its write."""

    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

    def handleError(self, record: logging.LogRecord) -> None:
        # logging.Handler.handleError writes "--- Logging error ---" to the same busy stderr.
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_stop_signal_is_kept_when_logging_fails_in_the_handler(
    handlers: None, signum: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = Daemon(RunOptions(config_path=None))
    d.install_signals()
    busy = logging.Logger("emsctl.daemon (stderr busy)", logging.DEBUG)
    busy.addHandler(_Reentrant())
    monkeypatch.setattr(daemon_mod, "log", busy)
    handler: Any = signal.getsignal(signum)
    handler(signum, None)  # must neither raise nor drop the request
    assert d.stop.is_set()
    assert d.stopped_by == signum.name


def test_the_loop_logs_which_signal_stopped_it(
    handlers: None, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import UTC, datetime

    class Ctl:
        config: Any = None
        metrics = None
        ticks = 0

        def __init__(self) -> None:
            import threading

            self.wake = threading.Event()

        def tick(self) -> None:
            self.ticks += 1

        def latest(self) -> None:
            return None

    class NoStore:
        failures = 0

        def prune(self, _now: datetime) -> None:
            pass

    d = Daemon(
        RunOptions(
            config_path=None,
            tick_wall_s=0.01,
            now=lambda: datetime(2026, 5, 10, tzinfo=UTC),
            after_tick=lambda _ctl: signal.raise_signal(signal.SIGTERM),
        )
    )
    d.install_signals()
    d.controller = Ctl()  # type: ignore[assignment]
    d.store = NoStore()
    with caplog.at_level(logging.INFO, logger="emsctl.daemon"):
        d.loop()
    assert d.controller.ticks == 1  # type: ignore[union-attr]
    assert "signal SIGTERM: stopping" in caplog.text
