"""`emsctl simulate --json/--plot`: an output that cannot be written is refused before the replay.

The year replays for about 15 s; a path in a missing directory used to end it in a traceback.
Here the replay functions are replaced by ones that fail the test if called, so each case proves
that the check comes first, and the year file makes a late check obvious.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from emsctl.cli import main
from emsctl.sim import cli as sim_cli

YEAR = str(Path(__file__).resolve().parents[2] / "bench" / "data" / "year_2026.csv.gz")


def _no_replay(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the replay was started although the output cannot be written")


@pytest.fixture
def no_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("run_ems", "run_baseline", "load"):
        monkeypatch.setattr(sim_cli, name, _no_replay)


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this user cannot create files in (root ignores permission bits: /sys)."""
    if os.geteuid() == 0:
        return Path("/sys")
    d = tmp_path / "read-only"
    d.mkdir()
    d.chmod(0o555)
    return d


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    rc = main(argv)
    took = time.perf_counter() - t0
    out, err = capsys.readouterr()
    return rc, out + err, took


@pytest.mark.parametrize("flag", ["--json", "--plot"])
@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing", "the directory {tmp}/no/such does not exist"),
        ("dir", "is a directory; name a file"),
        ("file-parent", "is not a directory"),
        ("unwritable", "cannot be written"),
    ],
)
def test_an_unwritable_output_is_refused_before_the_replay(
    no_replay: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    where: str,
    says: str,
) -> None:
    (tmp_path / "a-file").write_text("x")
    out = {
        "missing": tmp_path / "no" / "such" / "out.x",
        "dir": tmp_path,
        "file-parent": tmp_path / "a-file" / "out.x",
        "unwritable": _unwritable_dir(tmp_path) / "ems-simulate-out.x",
    }[where]
    rc, text, took = _run(["simulate", YEAR, flag, str(out)], capsys)
    assert rc == 2, text
    assert "Traceback" not in text
    assert says.format(tmp=tmp_path) in text
    assert text.startswith(f"emsctl simulate: {flag} {out}: ")
    assert len(text.strip().splitlines()) == 1, text
    assert took < 2.0
    assert not out.exists() or out.is_dir() or where == "dir"


def test_the_probe_leaves_no_file_behind_and_an_existing_one_untouched(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new.json"
    assert sim_cli.output_problem(str(new), "--json") is None
    assert not new.exists()
    old = tmp_path / "old.json"
    old.write_text("kept")
    before = old.stat().st_mtime_ns
    assert sim_cli.output_problem(str(old), "--json") is None
    assert old.read_text() == "kept"
    assert old.stat().st_mtime_ns == before
    assert sim_cli.output_problem("-", "--json") is None
    assert sim_cli.output_problem(None, "--plot") is None


def test_a_bare_file_name_is_written_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "s1_clear_summer", "--json", "out.json"]) == 0
    capsys.readouterr()
    assert (tmp_path / "out.json").read_text(encoding="utf-8").startswith("{")


def test_a_write_that_fails_after_the_replay_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The check passed, then the disk filled (or the directory went away) during the replay.
    target = tmp_path / "out.json"

    def full_disk(self: Path, *_a: Any, **_k: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    rc, text, _ = _run(["simulate", "s1_clear_summer", "--json", str(target)], capsys)
    assert rc == 1
    assert "Traceback" not in text
    assert f"emsctl simulate: --json {target}: No space left on device" in text
