"""How `emsctl run` and the demo set the daemon up: `--db` stands for store.path everywhere
(so a dry run from a checkout keeps its state beside the database it was given), the
addresses it prints, and a start that failed switching nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from emsctl.adapters.viessmann_auth import state_dir, token_path
from emsctl.config import parse_config
from emsctl.daemon import Daemon, RunOptions, _url, missing_directory


def test_db_stands_for_store_path_and_a_reload_keeps_it(tmp_path: Path) -> None:
    cfg = tmp_path / "house.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"path": "/var/lib/ems/ems.db"}}), encoding="utf-8")
    db = str(tmp_path / "here.db")
    d = Daemon(RunOptions(config_path=str(cfg), store_path=db))
    config = d._load()
    assert config.store.path == db
    # The Viessmann token (and with it `emsctl viessmann login`'s) lives beside that database.
    assert state_dir(config) == tmp_path
    assert token_path(config) == tmp_path / "viessmann-token.json"
    # SIGHUP re-reads the file: the override stays, so store.* has not "changed".
    assert d._load().store == config.store


def test_without_db_the_config_is_taken_as_it_is() -> None:
    config = parse_config({"store": {"path": "/srv/ems/ems.db"}})
    assert Daemon(RunOptions(config_path=None, config=config))._load() is config


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),
        ("", "http://127.0.0.1:8080"),
        ("::", "http://[::1]:8080"),
        ("::1", "http://[::1]:8080"),
        ("192.168.1.5", "http://192.168.1.5:8080"),
        ("localhost", "http://localhost:8080"),
    ],
)
def test_the_printed_address_is_one_a_browser_on_this_machine_can_open(bind: str, url: str) -> None:
    assert _url(bind, 8080) == url


def test_db_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    assert missing_directory(None) is None
    assert missing_directory(":memory:") is None
    assert missing_directory(str(tmp_path / "ems.db")) is None
    assert missing_directory("ems.db") is None  # the working directory
    problem = missing_directory(str(tmp_path / "gone" / "ems.db"))
    assert problem is not None and f"directory {tmp_path / 'gone'} does not exist" in problem


class _Controller:
    def __init__(self, on_exit: str) -> None:
        self.config = SimpleNamespace(control=SimpleNamespace(on_exit=on_exit))
        self.switched_off = 0
        self.closed = False

    def switch_all_off(self, _now: Any) -> None:
        self.switched_off += 1

    def close(self) -> None:
        self.closed = True


def test_a_start_that_failed_switches_nothing_and_says_nothing_about_relays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for on_exit in ("all_off", "leave"):
        d = Daemon(RunOptions(config_path=None))
        ctl = _Controller(on_exit)
        d.controller = ctl  # type: ignore[assignment]
        with caplog.at_level("INFO", logger="emsctl.daemon"):
            d.shutdown(started=False)
        assert ctl.closed and ctl.switched_off == 0
    assert "leaving the relays" not in caplog.text


def test_a_clean_stop_still_honours_on_exit() -> None:
    d = Daemon(RunOptions(config_path=None))
    ctl = _Controller("all_off")
    d.controller = ctl  # type: ignore[assignment]
    d.shutdown()
    assert ctl.switched_off == 1 and ctl.closed
