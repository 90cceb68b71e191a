"""A secret in a URL of the config (`prometheus.url: http://user:password@host`) never shows:
not in /api/status, the status page, the log, nor `emsctl snapshot` (text and JSON). The
daemon runs in this process against a closed loopback port, or one answering garbage over
HTTP (then the request itself is made and logged), its web UI asked over HTTP."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from emsctl import cli
from emsctl.daemon import Daemon, RunOptions
from tests.support.http_stub import Canned, StubServer
from tests.support.prometheus_server import free_port
from tests.support.waiting import wait_until

SECRET = "s3cretPW-42"


def _config(tmp: Path, prometheus_port: int) -> Path:
    closed = free_port()  # nothing listens there
    device = {"host": f"127.0.0.1:{closed}", "timeout_s": 0.5, "retries": 0}
    url = f"http://ems:{SECRET}@127.0.0.1:{prometheus_port}"
    cfg: dict[str, Any] = {
        "control": {"interval_s": 1},
        "prometheus": {"url": url, "timeout_s": 0.5},
        "loads": {
            "dhw": {"enabled": False},
            "sg_ready": {"device": {"type": "shelly_gen1", **device}},
            "wb_a": {"device": {"type": "shelly_gen2", **device}},
            "wb_b": {"device": {"type": "shelly_gen2", **device}},
        },
        "forecast": {"enabled": False},
        "store": {"path": str(tmp / "ems.db")},
        "webui": {"bind": "127.0.0.1", "port": 0},
        "metrics": {"enabled": False},
    }
    path = tmp / "ems.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(params=["closed", "garbage"])
def prometheus_peer(request: pytest.FixtureRequest) -> Iterator[StubServer | None]:
    """Nothing listening (None), or a server answering every request with an HTML page."""
    if request.param == "closed":
        yield None
        return
    with StubServer(lambda _r: Canned(200, b"<html>not prometheus</html>", "text/html")) as s:
        yield s


def test_a_password_in_the_prometheus_url_shows_nowhere(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    prometheus_peer: StubServer | None,
) -> None:
    path = _config(tmp_path, prometheus_peer.port if prometheus_peer else free_port())
    daemon = Daemon(RunOptions(config_path=str(path), banner=lambda _h, _u: None))
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # `emsctl` quiets it; here it all shows
    daemon.start()
    thread = threading.Thread(target=daemon.loop, daemon=True)
    thread.start()
    try:
        assert daemon.web_server is not None
        http = httpx.Client(base_url=f"http://127.0.0.1:{daemon.web_server.port}", timeout=10)

        def status() -> dict[str, Any]:
            resp = http.get("/api/status")
            return resp.json() if resp.status_code == 200 else {}

        wait_until(lambda: "prometheus" in status().get("errors", {}), 20, "a failed query")
        api = http.get("/api/status").text
        page = http.get("/").text
        assert "prometheus" in api and "127.0.0.1" in api  # the error is there, and says where
        for text in (api, page, caplog.text):
            assert SECRET not in text
        if prometheus_peer is not None:  # the credentials still go out, as HTTP Basic auth
            basic = base64.b64encode(f"ems:{SECRET}".encode()).decode()
            assert prometheus_peer.requests[0].headers["Authorization"] == f"Basic {basic}"
        http.close()
    finally:
        daemon.stop.set()
        if daemon.controller is not None:
            daemon.controller.wake.set()
        thread.join(timeout=20)
        daemon.shutdown()
    for argv in (
        ["snapshot", "--config", str(path)],
        ["snapshot", "--json", "--config", str(path)],
    ):
        capsys.readouterr()
        assert cli.main(argv) == 1  # nothing answers
        out = capsys.readouterr()
        assert "127.0.0.1" in out.out + out.err
        assert SECRET not in out.out + out.err
