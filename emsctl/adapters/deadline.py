"""A total deadline for every HTTP call the adapters make.

httpx's timeouts bound each socket operation, not a request: a peer that sends one byte a
second never trips a read timeout, and the call lasts as long as the peer likes. Here every
socket operation of a request gets the time left before the request's deadline as its
timeout, and none is started once the deadline has passed: the call then fails with httpx's
own timeout error (`httpx.ReadTimeout`, `WriteTimeout`, `ConnectTimeout`), which each adapter
already turns into `DeviceUnreachable`.

How: `DeadlineTransport` is httpx's `HTTPTransport` whose connection pool (httpcore) reads and
writes through a network backend that shortens each timeout to the time left. The deadline
of a request is the transport's `total_s` from when the request is sent, or an earlier one a
caller set for several requests with `within()`/`until()` (a Shelly call with its retries, a
Viessmann call with its token refresh). It covers connecting, the TLS handshake (CPython
bounds a handshake by the socket timeout as a whole), sending, the headers and the body.
Nothing runs in another thread and no socket is closed behind a caller's back.

Not covered: the name lookup of a host name (`getaddrinfo` takes no timeout; the system
resolver's own, 5 s and 2 attempts by default, bounds it). Device hosts are usually addresses.

The deadline clock is the real monotonic clock: test clocks that freeze `time.monotonic`
(freezegun) leave it running, because a network deadline is about time that really passes.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import typing
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import httpcore
import httpx

from emsctl.adapters.tls import client_context

#: The deadline (on `monotonic()`) of the HTTP request(s) running in this context, if any.
_DEADLINE: ContextVar[float | None] = ContextVar("ems_http_deadline", default=None)
#: Writes go out in slices, so a peer that reads slowly cannot stretch one write either.
_WRITE_SLICE = 16384


def monotonic() -> float:
    """Seconds on the system's monotonic clock (which freezegun does not freeze)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def current() -> float | None:
    """The deadline in force here (on `monotonic()`), or None."""
    return _DEADLINE.get()


@contextlib.contextmanager
def until(deadline: float) -> Iterator[float]:
    """Every HTTP request of EMS's clients inside ends by `deadline` (on `monotonic()`), or
    by an earlier deadline already in force."""
    outer = _DEADLINE.get()
    effective = deadline if outer is None else min(outer, deadline)
    token = _DEADLINE.set(effective)
    try:
        yield effective
    finally:
        _DEADLINE.reset(token)


def within(seconds: float) -> contextlib.AbstractContextManager[float]:
    """Every HTTP request inside ends within `seconds` from now (all of them together)."""
    return until(monotonic() + seconds)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """The timeout for one socket operation: the caller's, shortened to the time left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - monotonic()
    if left <= 0:
        raise expired("the call's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline in force."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            self._inner.write(bytes(view[:_WRITE_SLICE]), _left(timeout, httpcore.WriteTimeout))
            view = view[_WRITE_SLICE:]

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
        )
        return _Stream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's own socket backend, with the deadline applied to every connection."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            _left(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - EMS talks TCP only
        stream = self._inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options=socket_options
        )
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore's retries only
        self._inner.sleep(seconds)


class _Body(httpx.SyncByteStream):
    """The response body, read under the request's deadline (httpx reads it after the
    transport has returned the headers)."""

    def __init__(self, inner: httpx.SyncByteStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        while True:
            with until(self._deadline):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._inner.close()


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's HTTP transport with a total deadline of `total_s` per request (or the earlier
    deadline a caller set with `within()`/`until()`).

    Environment proxies are not used by a client with its own transport (httpx ignores
    HTTP(S)_PROXY then); EMS talks to its devices and clouds directly.
    """

    def __init__(
        self,
        total_s: float,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        if not total_s > 0:
            raise ValueError(f"a deadline needs a positive number of seconds, not {total_s!r}")
        context = ssl_context or client_context()
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=context, limits=limits)
        # The same pool httpx builds, reading and writing through the deadline backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_Backend(),
        )
        self.total_s = float(total_s)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with until(monotonic() + self.total_s) as deadline:
            response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _Body(response.stream, deadline)
        return response


def client(
    total_s: float,
    *,
    transport: httpx.BaseTransport | None = None,
    **kwargs: typing.Any,
) -> httpx.Client:
    """An httpx.Client whose every request ends within `total_s` (see the module's doc).

    A `transport` given by a test is used as it is; `verify` is always the shared context.
    """
    return httpx.Client(
        transport=transport or DeadlineTransport(total_s),
        verify=client_context(),
        **kwargs,
    )
