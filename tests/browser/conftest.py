"""Browser tests: the real app served by waitress on 127.0.0.1, driven by Debian's Chromium.

Playwright launches /usr/bin/chromium (no browser download). Without Chromium the tests skip,
and fail under EMS_REQUIRE_REAL=1. Screenshots go to tests/artifacts/ (not committed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_binary
from tests.support.webui_kit import UiEnv, make_env
from webui.serve import WebServer, serve

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The fake controller ticks this long after a button press, like the daemon's tick thread.
TICK_DELAY_S = 0.3


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = need_binary("chromium", "/usr/bin/chromium", hint="apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        from tests.conftest import need_real

        need_real("playwright", False, "pip install playwright (the dev extra)")
        raise
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Site:
    env: UiEnv
    server: WebServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def site_factory(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Serve a fresh app (real Store on a temp file, fake controller) on a free loopback port."""
    sites: list[Site] = []

    def make(**kw: Any) -> Site:
        kw.setdefault("tick_delay_s", TICK_DELAY_S)
        env = make_env(tmp_path / f"site{len(sites)}", **kw)
        server = serve(env.app, "127.0.0.1", 0)
        server.start()
        site = Site(env, server)
        sites.append(site)
        return site

    yield make
    for s in sites:
        s.server.close()
        s.env.controller.close()
        s.env.store.close()


@pytest.fixture
def site(site_factory: Callable[..., Site]) -> Site:
    return site_factory()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (own cookies), with a bounded default timeout."""
    contexts: list[Any] = []
    errors: list[str] = []

    def on_console(msg: Any) -> None:
        # A refused login answers 401/429 on purpose; Chromium logs every such answer.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def make(width: int = 1280, height: int = 900) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": height})
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        return page

    yield make
    for c in contexts:
        c.close()
    # Script errors and Content-Security-Policy violations show up here.
    assert errors == [], errors


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
