"""Serving the web UI in the daemon's process: waitress, in a thread, with a clean shutdown.

server = serve(app, config.webui.bind, config.webui.port)
server.start()          # or: threading.Thread(target=server.run, daemon=True).start()
...
server.close()          # stops accepting, ends the loop, waits for the worker threads
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

log = logging.getLogger(__name__)

#: Worker threads answering requests; the controller's tick never waits for them. Waitress
#: buffers requests and responses in its own loop, so a slow phone holds no worker; with the
#: interpreter's lock two serve a home's few browsers as fast as four, and each worker that
#: renders a page at the same time as another costs memory (docs/performance.md, "Memory").
THREADS = 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_warning(bind: str, login_required: bool) -> str | None:
    """What to tell the owner when the UI is reachable from the network without a password."""
    if login_required or is_loopback(bind):
        return None
    return (
        f"the web UI listens on {bind} without a password: anybody on the network can switch "
        "the loads. Set webui.password_hash (emsctl webui hash-password) or bind to 127.0.0.1"
    )


class WebServer:
    """A waitress server that another thread can stop."""

    def __init__(self, server: Any, socket_map: dict[int, Any]) -> None:
        self._server = server
        self._map = socket_map
        self._running = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def listen(self) -> list[tuple[str, int]]:
        """(host, port) pairs actually bound (port 0 in the request becomes a real port)."""
        eff = getattr(self._server, "effective_listen", None)
        if eff is not None:
            return [(str(h), int(p)) for h, p in eff]
        return [(str(self._server.effective_host), int(self._server.effective_port))]

    @property
    def port(self) -> int:
        return self.listen[0][1]

    @property
    def url(self) -> str:
        host, port = self.listen[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def run(self) -> None:
        """Serve until close(); blocks the calling thread."""
        self._running = True
        try:
            self._server.run()
        finally:
            self._stopped.set()

    def start(self) -> threading.Thread:
        """Serve in a daemon thread named "webui"."""
        self._thread = threading.Thread(target=self.run, name="webui", daemon=True)
        self._thread.start()
        return self._thread

    def _close_sockets(self) -> None:
        wasyncore.close_all(self._map)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving: close the sockets, end the loop, let the workers finish."""
        trigger = next((d for d in self._map.values() if isinstance(d, BaseWSGIServer)), None)
        if self._running and trigger is not None:
            # The loop closes its own sockets: closing them from here could race its select().
            trigger.trigger.pull_trigger(self._close_sockets)
            if not self._stopped.wait(timeout_s):
                log.warning("web UI loop did not stop within %.0f s", timeout_s)
        else:
            self._close_sockets()
        self._server.task_dispatcher.shutdown(timeout=timeout_s)
        if self._thread is not None:
            self._thread.join(timeout_s)


#: The largest request body accepted (the app's MAX_CONTENT_LENGTH is the same).
MAX_BODY_BYTES = 64 * 1024


def serve(app: Flask, bind: str, port: int, *, threads: int = THREADS) -> WebServer:
    """Bind the UI's socket now (errors surface at start-up) and return the server to run."""
    socket_map: dict[int, Any] = {}
    server = create_server(
        app,
        map=socket_map,
        host=bind,
        port=port,
        threads=threads,
        ident="EMS",
        # A poll that is blocked in a dead client must not hold a worker for long.
        channel_timeout=30,
        # Nothing the UI takes is larger than a form; waitress would otherwise spool up to
        # 1 GiB per request to disk before the app (and its login check) sees it.
        max_request_body_size=MAX_BODY_BYTES,
        max_request_header_size=16 * 1024,
        # A household has a few browsers; more connections than this wait in the backlog.
        connection_limit=32,
    )
    ws = WebServer(server, socket_map)
    ctx = app.extensions.get("ems")
    warning = startup_warning(bind, ctx is not None and ctx.login_required)
    if warning:
        log.warning("%s", warning)
    log.info("web UI on %s", ws.url)
    return ws
