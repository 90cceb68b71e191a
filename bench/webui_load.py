"""Load on the web UI while the controller ticks: a loop of real HTTP requests over loopback.

For the tick benchmark and the web UI's concurrency test:

    with RequestLoop(server_url) as loop:
        durations = [timed(tick) for _ in range(n)]
    loop.served, loop.errors          # how many requests ran alongside the ticks

`compare(tick, n, url)` runs the ticks without, then with, the request loop and returns both
sets of figures, so a UI that holds up the tick (a lock, a long database transaction) shows as
a slower tick under load.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

#: What a browser on the status and history pages asks for, in turn.
PATHS: tuple[str, ...] = (
    "/partials/status",
    "/api/status",
    "/",
    "/history",
    "/api/history?limit=100",
)


def _client(
    base_url: str, paths: tuple[str, ...], timeout_s: float, stop: Any, served: Any, errors: Any
) -> None:
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            try:
                resp = client.get(path)
                ok = resp.status_code == 200
                detail = f"{path}: HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{path}: {exc!r}"
            if ok:
                with served.get_lock():
                    served.value += 1
            else:
                errors.put(detail)


def _clients(
    base_url: str,
    paths: tuple[str, ...],
    n: int,
    timeout_s: float,
    stop: Any,
    served: Any,
    errors: Any,
) -> None:
    threads = [
        threading.Thread(target=_client, args=(base_url, paths, timeout_s, stop, served, errors))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class RequestLoop:
    """`clients` clients requesting PATHS in turn, as fast as the server answers.

    They run in a separate process, like browsers on other machines: only the server's own
    work competes with the tick for this process's interpreter.
    """

    def __init__(
        self,
        base_url: str,
        *,
        clients: int = 2,
        paths: Sequence[str] = PATHS,
        timeout_s: float = 10,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.timeout_s = timeout_s
        self._stop = ctx.Event()
        self._served = ctx.Value("i", 0)
        self._errors: Any = ctx.Queue()
        self.errors: list[str] = []
        self._proc = ctx.Process(
            target=_clients,
            args=(
                base_url.rstrip("/"),
                tuple(paths),
                clients,
                timeout_s,
                self._stop,
                self._served,
                self._errors,
            ),
            name="ui-load",
            daemon=True,
        )

    @property
    def served(self) -> int:
        return int(self._served.value)

    def __enter__(self) -> RequestLoop:
        self._proc.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._proc.join(self.timeout_s + 5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        while True:
            try:
                self.errors.append(self._errors.get(timeout=0.05))
            except queue.Empty:
                break


@dataclass(frozen=True, slots=True)
class TickFigures:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    served: int = 0
    errors: int = 0

    def line(self, label: str) -> str:
        extra = f", {self.served} UI requests alongside" if self.served else ""
        return (
            f"{label}: {self.n} ticks, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.1f} ms{extra}"
        )


def _figures(durations: list[float], served: int = 0, errors: int = 0) -> TickFigures:
    ms = sorted(d * 1000 for d in durations)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return TickFigures(len(ms), statistics.median(ms), p99, ms[-1], served, errors)


def timed_ticks(tick: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        tick()
        out.append(time.perf_counter() - t0)
    return out


def compare(
    tick: Callable[[], object], n: int, base_url: str, *, clients: int = 2
) -> tuple[TickFigures, TickFigures, RequestLoop]:
    """Tick figures without and with the request loop (and the loop, for its counts)."""
    quiet = _figures(timed_ticks(tick, n))
    with RequestLoop(base_url, clients=clients) as loop:
        # Let the clients get going before the first measured tick.
        deadline = time.perf_counter() + 15
        while loop.served < 2 * clients and time.perf_counter() < deadline:
            time.sleep(0.01)
        loaded_durations = timed_ticks(tick, n)
    loaded = _figures(loaded_durations, loop.served, len(loop.errors))
    return quiet, loaded, loop
