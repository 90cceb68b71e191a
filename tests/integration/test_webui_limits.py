"""waitress' limits on the wire: a large unauthenticated body is refused before it is read."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.webui_kit import PASSWORD, UiEnv, make_env
from webui.serve import MAX_BODY_BYTES, WebServer, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[UiEnv, WebServer]]:
    env = make_env(tmp_path, password=PASSWORD)
    server = serve(env.app, "127.0.0.1", 0)
    server.start()
    yield env, server
    server.close()
    env.controller.close()
    env.store.close()


def test_a_body_over_the_limit_is_refused_without_being_read(
    served: tuple[UiEnv, WebServer],
) -> None:
    _env, server = served
    host, port = server.listen[0]
    size = 512 * 1024 * 1024  # announced, never sent
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(
            f"POST /api/loads/wb_a/override HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        s.sendall(b"x" * (MAX_BODY_BYTES + 1024))
        started = time.monotonic()
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert time.monotonic() - started < 5
