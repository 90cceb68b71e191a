"""`emsctl webui hash-password`: the hash it prints is the one the login checks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from werkzeug.security import check_password_hash

from emsctl.cli import main


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """main() reconfigures the root logger onto the captured stderr; undo that afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _run(monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["webui", "hash-password", *argv])


def test_a_piped_password_becomes_a_hash_the_login_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, "hallway-phone-42\nignored second line\n") == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("scrypt:")
    assert check_password_hash(out, "hallway-phone-42")
    assert not check_password_hash(out, "hallway-phone-42\n")


def test_a_short_password_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, "short\n") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "at least 8 characters" in captured.err


def test_the_password_cannot_be_given_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(monkeypatch, "", "--password", "hallway-phone-42")
    assert exc.value.code == 2
