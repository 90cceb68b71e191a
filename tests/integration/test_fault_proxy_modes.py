"""The fault proxy itself (tests/support/fault_proxy.py), against a plain loopback server and a
plain httpx client: each mode does what it says, modes switch at runtime, and it is bounded."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.fault_proxy import GARBAGE, FaultProxy, Mode
from tests.support.http_stub import Canned, StubServer

BODY = b'{"answer": "' + b"x" * 186 + b'"}'  # 200 bytes


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(10) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def upstream() -> Iterator[StubServer]:
    with StubServer(lambda r: Canned(body=BODY)) as stub:
        yield stub


def test_pass_forwards_requests_and_answers_unchanged(upstream: StubServer) -> None:
    with FaultProxy(upstream.url) as proxy, httpx.Client(base_url=proxy.url) as client:
        first = client.post("/a", data={"k": "v"})
        second = client.get("/b")
    assert (first.status_code, first.content) == (200, BODY)
    assert second.content == BODY
    assert [(r.method, r.path) for r in upstream.requests] == [("POST", "/a"), ("GET", "/b")]
    assert upstream.requests[0].form == {"k": ["v"]}
    assert proxy.accepted[Mode.PASS] >= 1


def test_trickle_sends_the_answer_at_the_given_rate(upstream: StubServer) -> None:
    with FaultProxy(upstream.url, mode=Mode.TRICKLE, rate=400) as proxy:
        t0 = time.monotonic()
        response = httpx.get(proxy.url, timeout=5)
        took = time.monotonic() - t0
    # About 330 bytes with the headers: some 0.8 s at 400 bytes per second.
    assert response.content == BODY
    assert 0.6 < took < 3.0


def test_trickle_never_trips_a_per_read_timeout(upstream: StubServer) -> None:
    """The lab's finding: httpx's timeout is per read, so a trickle outlasts it (here 3 s
    of a 0.5 s timeout before the test gives up) — what the adapters' total deadline is for."""
    with FaultProxy(upstream.url, mode=Mode.TRICKLE, rate=20, connection_lifetime_s=3) as proxy:
        t0 = time.monotonic()
        with pytest.raises(httpx.HTTPError):  # cut by the proxy's connection lifetime
            httpx.get(proxy.url, timeout=0.5)
        assert time.monotonic() - t0 > 2.5


def test_hang_accepts_and_never_answers(upstream: StubServer) -> None:
    with FaultProxy(upstream.url, mode=Mode.HANG) as proxy:
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(proxy.url, timeout=0.5)
        assert time.monotonic() - t0 < 2
        assert proxy.accepted[Mode.HANG] == 1
    assert upstream.requests == [], "a hung peer never reaches the upstream"


def test_garbage_keeps_status_and_headers_and_replaces_the_body(upstream: StubServer) -> None:
    with FaultProxy(upstream.url, mode=Mode.GARBAGE) as proxy:
        response = httpx.get(proxy.url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == GARBAGE
    with pytest.raises(ValueError):
        response.json()


def test_close_cuts_the_answer_after_the_given_bytes(upstream: StubServer) -> None:
    with FaultProxy(upstream.url, mode=Mode.CLOSE, cut_after=10) as proxy:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(proxy.url, timeout=5)
        raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while chunk := raw.recv(4096):
            got += chunk
        raw.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"Content-Length: 200" in head
    assert body == BODY[:10]


def test_modes_switch_at_runtime_even_on_a_kept_alive_connection(upstream: StubServer) -> None:
    with FaultProxy(upstream.url) as proxy, httpx.Client(base_url=proxy.url, timeout=1) as client:
        assert client.get("/").content == BODY
        proxy.set_mode(Mode.HANG)
        with pytest.raises(httpx.ReadTimeout):
            client.get("/")
        proxy.set_mode(Mode.GARBAGE)
        assert client.get("/").content == GARBAGE
        proxy.set_mode(Mode.PASS)
        assert client.get("/").content == BODY
    assert proxy.accepted[Mode.HANG] == 1 and proxy.accepted[Mode.GARBAGE] == 1


def test_only_loopback_upstreams_are_accepted() -> None:
    for target in ("192.0.2.1:80", "http://example.org:80", "127.0.0.1"):
        with pytest.raises(ValueError, match="loopback"):
            FaultProxy(target)


def test_bounded_connections_and_lifetime(upstream: StubServer) -> None:
    with FaultProxy(
        upstream.url, mode=Mode.HANG, max_connections=2, connection_lifetime_s=1.0, lifetime_s=3.0
    ) as proxy:
        socks = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(3)]
        # The third is closed at once; the first two when their lifetime ends.
        t0 = time.monotonic()
        ends = []
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _closed_by_peer(s)
            ends.append(time.monotonic() - t0)
            s.close()
        assert proxy.refused == 1
        assert max(ends) < 2.0
        assert proxy.stopped.wait(4.0), "the proxy stops by itself at the end of its lifetime"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1).recv(1)
