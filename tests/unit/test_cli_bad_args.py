"""Every `emsctl` subcommand given bad input: exit code 2, a few clear lines, never a traceback.

Each case runs `emsctl` as the owner would, in a subprocess, with $EMS_CONFIG pointing at a
file that does not exist (a checkout without /etc/ems). A new subcommand without a case here
fails `test_every_subcommand_has_a_bad_input_case`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emsctl.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = str(ROOT / "configs" / "ems-config.yaml")

#: (arguments, a piece of the message). `{tmp}` is a scratch directory.
CASES: list[tuple[list[str], str]] = [
    (["nope"], "invalid choice"),
    (["--log-level", "LOUD", "check-config", SHIPPED], "one of DEBUG, INFO"),
    (["check-config", "{tmp}/missing.yaml"], "pass --config FILE or set $EMS_CONFIG"),
    (["check-config", "{tmp}"], "a readable file"),
    (["check-config", "{tmp}/binary.yaml"], "UTF-8 text"),
    (["check-config", "{tmp}/bomb.yaml"], "with its aliases (&x, *x) expanded"),
    (["check-config", "{tmp}/deep.yaml"], "nested to a sensible depth"),
    (["check-config", "{tmp}/inf.yaml"], "prometheus.timeout_s"),
    (["diagram", "--bogus"], "unrecognized arguments"),
    (["viessmann", "status"], "pass --config FILE or set $EMS_CONFIG"),
    (["viessmann", "status", "--config", SHIPPED], "set it first"),
    (["viessmann", "login", "--config", SHIPPED], "set it first"),
    (["forecast", "show"], "pass --config FILE or set $EMS_CONFIG"),
    (["db", "current"], "pass --config FILE or set $EMS_CONFIG"),
    (["db", "sideways"], "invalid choice"),
    (["history", "--db", "{tmp}/x.db", "--since", "yesterday-ish"], "expected e.g. 2d"),
    (["history", "--db", "{tmp}/x.db", "--limit", "0"], "between 1 and"),
    (["stats", "--db", "{tmp}/x.db", "--days", "100000"], "between 1 and 3,660"),
    (["stats", "--db", "{tmp}/x.db", "--days", "week"], "is not a whole number"),
    (["simulate", "nope"], "no bundled scenario of that name"),
    (["simulate", "s1_clear_summer", "--json", "/nonexistent/dir/x.json"], "does not exist"),
    (["simulate", "s1_clear_summer", "--plot", "/nonexistent/dir/x.png"], "does not exist"),
    (["simulate", "s1_clear_summer", "--json", "{tmp}"], "is a directory"),
    (["simulate", "s1_clear_summer", "--plot-from", "someday", "--plot", "{tmp}/p.png"], "YYYY"),
    (["webui", "hash-password", "--bogus"], "unrecognized arguments"),
    (["run"], "pass --config FILE or set $EMS_CONFIG"),
    (["run", "--config", "{tmp}/inf.yaml"], "prometheus.timeout_s"),
    (["demo", "--scenario", "nope"], "no bundled scenario of that name"),
    (["demo", "--start", "25:00"], "is not a time of day"),
    (["demo", "--speed", "0"], "above 0"),
    (["demo", "--minutes", "-5"], "at least 1"),
    (["snapshot"], "pass --config FILE or set $EMS_CONFIG"),
    (["device", "wb_x", "status"], "invalid choice"),
    (["device", "wb_a", "explode"], "invalid choice"),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bad-args")
    (tmp / "binary.yaml").write_bytes(b"control:\n  interval_s: 60\n\xff\xfe\n")
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    lines += [
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefg", "bcdefgh", strict=True)
    ]
    (tmp / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (tmp / "deep.yaml").write_text("[" * 50_000 + "]" * 50_000 + "\n")
    (tmp / "inf.yaml").write_text("prometheus:\n  timeout_s: .inf\n")
    return tmp


def test_every_subcommand_has_a_bad_input_case() -> None:
    covered = {args[0] for args, _ in CASES}
    assert set(COMMANDS) | {"check-config"} <= covered


@pytest.mark.parametrize(("args", "says"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_exit_2_in_a_few_lines_without_a_traceback(
    scratch: Path, args: list[str], says: str
) -> None:
    argv = [a.replace("{tmp}", str(scratch)) for a in args]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EMS_")},
        "EMS_CONFIG": str(scratch / "no-such-config.yaml"),
        "HOME": str(scratch),
    }
    res = subprocess.run(
        [sys.executable, "-m", "emsctl.cli", *argv],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "Traceback" not in out
    assert says in out
    # argparse's usage lines plus one message, or a config error with its problem lines.
    assert len(res.stderr.strip().splitlines()) <= 8, res.stderr
