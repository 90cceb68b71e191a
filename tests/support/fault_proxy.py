"""A fault-injection TCP proxy on 127.0.0.1: put it between an adapter and what it talks to (an
emulator, a real Prometheus) and make that peer slow, silent, lying or vanishing.

    with FaultProxy(emulator.host) as proxy:        # "127.0.0.1:PORT" or "http://127.0.0.1:PORT"
        cfg = DeviceConfig(type="shelly_gen2", host=proxy.host)
        proxy.set_mode(Mode.TRICKLE, rate=1)        # one byte a second from now on

Modes (switchable at runtime; `set_mode` closes the connections open so far, so the next
request meets the new mode rather than a kept-alive connection of the old one):

- `PASS`: forward both ways, unchanged.
- `TRICKLE`: forward the answer at `rate` bytes per second (the request goes at full speed).
- `HANG`: accept the connection, read whatever comes, never answer (no upstream connection).
- `GARBAGE`: forward the status line and headers, replace the body with `garbage`
  (Content-Length fitted to it, no chunking) and close the connection after it.
- `CLOSE`: forward the status line, the headers and `cut_after` bytes of the body, then close
  the connection: an answer cut off in the middle.

Bounded, and stops by itself: at most `max_connections` at once (more are closed at once),
each lives at most `connection_lifetime_s`, and the whole proxy stops `lifetime_s` after its
start even if a test forgets it. It listens on 127.0.0.1 only and forwards to loopback only.
One asyncio loop in a daemon thread serves everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
#: What GARBAGE sends instead of the body: neither JSON nor HTML, with bytes no UTF-8 allows.
GARBAGE = b"\xde\xad\xbe\xef}{ not what you asked for \xff\x00"
_CHUNK = 65536


class Mode(StrEnum):
    PASS = "pass"
    TRICKLE = "trickle"
    HANG = "hang"
    GARBAGE = "garbage"
    CLOSE = "close"


@dataclass(frozen=True)
class Plan:
    """What the proxy does to a connection (fixed when it is accepted)."""

    mode: Mode = Mode.PASS
    rate: float = 1.0  # TRICKLE: bytes per second
    garbage: bytes = GARBAGE  # GARBAGE: the body sent instead
    cut_after: int = 1  # CLOSE: body bytes forwarded before the cut


def _upstream(target: str) -> tuple[str, int]:
    """(host, port) of "127.0.0.1:PORT" or "http://127.0.0.1:PORT/..."; loopback only."""
    parts = urlsplit(target if "//" in target else f"//{target}")
    host, port = parts.hostname, parts.port
    if host not in _LOOPBACK_NAMES or port is None:
        raise ValueError(f"the fault proxy forwards to a loopback host:port only, not {target!r}")
    return host, port


class FaultProxy:
    """One listening port on 127.0.0.1 forwarding to `upstream` with a fault plan."""

    def __init__(
        self,
        upstream: str,
        *,
        mode: Mode = Mode.PASS,
        rate: float = 1.0,
        garbage: bytes = GARBAGE,
        cut_after: int = 1,
        max_connections: int = 32,
        connection_lifetime_s: float = 30.0,
        lifetime_s: float = 300.0,
    ) -> None:
        self.upstream = _upstream(upstream)
        self.max_connections = max_connections
        self.connection_lifetime_s = connection_lifetime_s
        self.lifetime_s = lifetime_s
        self._plan = Plan(mode, rate, garbage, cut_after)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        #: Connections accepted, per the mode they were served with.
        self.accepted: dict[Mode, int] = {m: 0 for m in Mode}
        #: Connections closed at once because `max_connections` were open.
        self.refused = 0
        self.stopped = threading.Event()

    # ------------------------------------------------------------------ addresses

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, for a Shelly's `device.host`."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        asyncio.get_running_loop().call_later(self.lifetime_s, self._expire)

    def _expire(self) -> None:
        assert self._loop is not None
        self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._drop_all()
        self.stopped.set()

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if not loop.is_closed() and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError, TimeoutError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
        loop.close()
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start() if self._loop is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ control

    @property
    def plan(self) -> Plan:
        with self._lock:
            return self._plan

    def set_mode(
        self,
        mode: Mode,
        *,
        rate: float | None = None,
        garbage: bytes | None = None,
        cut_after: int | None = None,
    ) -> None:
        """Serve new connections with `mode`; the connections open so far are closed."""
        with self._lock:
            plan = replace(self._plan, mode=mode)
            if rate is not None:
                plan = replace(plan, rate=rate)
            if garbage is not None:
                plan = replace(plan, garbage=garbage)
            if cut_after is not None:
                plan = replace(plan, cut_after=cut_after)
            self._plan = plan
        if self._loop is not None and not self.stopped.is_set():
            asyncio.run_coroutine_threadsafe(self._drop_all(), self._loop).result(timeout=10)

    @property
    def connections(self) -> int:
        """Connections accepted so far, whatever their mode."""
        with self._lock:
            return sum(self.accepted.values())

    # ------------------------------------------------------------------ serving

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            plan = self._plan
            full = len(self._tasks) >= self.max_connections
            if full:
                self.refused += 1
            else:
                self.accepted[plan.mode] += 1
        if full:
            writer.transport.abort()
            return
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            async with asyncio.timeout(self.connection_lifetime_s):
                await self._serve(plan, reader, writer)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # dropped by set_mode() or the proxy's end: this task is the connection's own
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.transport.abort()

    async def _serve(
        self, plan: Plan, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if plan.mode is Mode.HANG:
            while await reader.read(_CHUNK):
                pass  # swallowed; the client waits for an answer that never comes
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        forward = asyncio.create_task(_copy(reader, up_writer))
        try:
            if plan.mode is Mode.PASS:
                await _copy(up_reader, writer)
            elif plan.mode is Mode.TRICKLE:
                await _trickle(up_reader, writer, plan.rate)
            elif plan.mode is Mode.GARBAGE:
                head = await up_reader.readuntil(b"\r\n\r\n")
                writer.write(_refit(head, len(plan.garbage)) + plan.garbage)
                await writer.drain()
            else:  # CLOSE
                head = await up_reader.readuntil(b"\r\n\r\n")
                body = b""
                while len(body) < plan.cut_after:
                    more = await up_reader.read(plan.cut_after - len(body))
                    if not more:
                        break
                    body += more
                writer.write(head + body)
                await writer.drain()
            writer.close()  # after what was written has gone out
            await writer.wait_closed()
        finally:
            forward.cancel()
            await asyncio.gather(forward, return_exceptions=True)
            up_writer.transport.abort()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float) -> None:
    """Forward at `rate` bytes per second, in slices of a tenth of a second (at least a byte)."""
    step = max(1, int(rate / 10))
    pause = step / rate
    while data := await reader.read(_CHUNK):
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            await asyncio.sleep(pause)


def _refit(head: bytes, length: int) -> bytes:
    """The response head with its framing replaced: `Content-Length: length`, no chunking,
    and the connection closed after the body."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    drop = (b"content-length:", b"transfer-encoding:", b"connection:", b"content-encoding:")
    kept = [lines[0], *(line for line in lines[1:] if not line.lower().startswith(drop))]
    kept += [b"Content-Length: %d" % length, b"Connection: close"]
    return b"\r\n".join(kept) + b"\r\n\r\n"
