"""Every `emsctl` subcommand given bad input: exit code 2, a few lines naming what is wrong,
never a traceback.

The table covers every command and subcommand the parser knows (a new one without a case
fails `test_every_command_and_subcommand_has_a_case`). Each case runs as the owner would,
with $EMS_CONFIG pointing at a file that does not exist (a checkout without /etc/ems), a
scratch HOME and working directory:

- in-process through `emsctl.cli.main` (fast; an exception escaping is a test error), and
- as `python -m emsctl.cli` in a child process: `run` and `demo` only so (they bind ports
  and install signal handlers), and a few others too (`process=True`), among them an
  unknown command, for which the parser imports every command's module: an import-time
  error shows there. The child processes run side by side.

`{tmp}` in a case is the scratch directory, `{port}` a port this test holds open.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emsctl import cli
from emsctl.store import Store

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = str(ROOT / "configs" / "ems-config.yaml")


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    says: str  # a piece of the message naming what is wrong
    stdin: str = ""
    #: Also in a child process (as `python -m emsctl.cli`).
    process: bool = False
    #: Only in a child process: the command binds ports or installs signal handlers.
    process_only: bool = False


def case(
    *argv: str, says: str, stdin: str = "", process: bool = False, process_only: bool = False
) -> Case:
    return Case(tuple(argv), says, stdin, process or process_only, process_only)


NO_CONFIG = "no such file: pass --config FILE or set $EMS_CONFIG"

CASES: list[Case] = [
    # the command line itself
    case("nope", says="invalid choice: 'nope'", process=True),  # imports every command's module
    case(says="the following arguments are required: COMMAND"),
    case("--log-level", "LOUD", "diagram", says="one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    case("--log-level", says="expected one argument"),
    # check-config
    case("check-config", "{tmp}/missing.yaml", says=NO_CONFIG, process=True),
    case("check-config", says="the following arguments are required: path"),
    case("check-config", "{tmp}", says="is a directory"),
    case("check-config", "{tmp}/binary.yaml", says="UTF-8 text"),
    case("check-config", "{tmp}/bomb.yaml", says="with its aliases (&x, *x) expanded"),
    case("check-config", "{tmp}/deep.yaml", says="nested to a sensible depth"),
    case("check-config", "{tmp}/big.yaml", says="at most 1,048,576 bytes"),
    case("check-config", "{tmp}/inf.yaml", says="prometheus.timeout_s"),
    case("check-config", "{tmp}/open-ui.yaml", says="webui.password_hash"),
    # diagram
    case("diagram", "--bogus", says="unrecognized arguments: --bogus"),
    # viessmann, forecast
    case("viessmann", "status", says=NO_CONFIG),
    case("viessmann", says="the following arguments are required: ACTION"),
    case("viessmann", "status", "--config", SHIPPED, says="viessmann.client_id is empty"),
    case("viessmann", "status", "--config", "{tmp}/empty.yaml", says="set it first"),
    case("viessmann", "login", "--config", SHIPPED, says="viessmann.client_id is empty"),
    case("viessmann", "login", "--config", "{tmp}/client.yaml", says="nothing pasted"),
    case("viessmann", "login", "--print-url", "--code-or-url", "x", says="not allowed with"),
    case("forecast", "show", says=NO_CONFIG),
    case("forecast", says="the following arguments are required: ACTION"),
    case("forecast", "show", "--config", "{tmp}", says="is a directory"),
    # db
    case("db", "current", says=NO_CONFIG),
    case("db", says="the following arguments are required: ACTION"),
    case("db", "sideways", says="invalid choice: 'sideways'"),
    case("db", "current", "--db", "{tmp}/missing.db", says="does not exist"),
    case("db", "current", "--db", "{tmp}/notes.db", says="is not an SQLite database"),
    case("db", "check", "--db", "{tmp}/notes.db", says="is not an SQLite database"),
    case("db", "check", "--db", "{tmp}", says="is not a regular file"),
    case("db", "upgrade", "--db", "{tmp}/nodir/x.db", says="nodir does not exist"),
    case("db", "upgrade", "--db", "{tmp}/ems.db", "nonsense", says="revision 'nonsense'"),
    case("db", "downgrade", "--db", "{tmp}/ems.db", "nonsense", says="revision 'nonsense'"),
    case("db", "downgrade", "--db", "{tmp}/ems.db", "-5", says="revision '-5'"),
    case("db", "downgrade", "--db", "{tmp}/ems.db", says="required: revision"),
    case("db", "downgrade", "--db", "{tmp}/other.db", "base", says="not an EMS one"),
    # plan
    case("plan", says=NO_CONFIG),
    case("plan", "--db", "{tmp}/missing.db", says="does not exist"),
    case("plan", "--db", "{tmp}/notes.db", says="is not an SQLite database"),
    case("plan", "--db", "{tmp}/ems.db", "--hours", "99", says="invalid choice: 99"),
    # history
    # car (the wallbox comes before the action)
    case("car", says="the following arguments are required: wallbox"),
    case("car", "wb_a", says="the following arguments are required: ACTION"),
    case("car", "sg_ready", "show", says="invalid choice: 'sg_ready'"),
    case("car", "wb_a", "show", says=NO_CONFIG),
    case("car", "wb_a", "show", "--db", "{tmp}/notes.db", says="is not an SQLite database"),
    case("car", "wb_a", "mode", "fast", "--db", "{tmp}/ems.db", says="invalid choice: 'fast'"),
    case("car", "wb_a", "target", "--by", "25:00", "--kwh", "3", says="expected a time as HH:MM"),
    case("car", "wb_a", "target", "--by", "07:00", "--kwh", "0", says="more than 0"),
    case("car", "wb_a", "target", "--by", "07:00", "--kwh", "400", says="at most 300"),
    case("car", "wb_a", "target", "--by", "07:00", "--kwh", "x", says="not a number of kWh"),
    case("car", "wb_a", "target", "--by", "07:00", "--percent", "120", says="at most 100"),
    case(
        "car",
        "wb_a",
        "target",
        "--by",
        "07:00",
        "--percent",
        "80",
        "--db",
        "{tmp}/ems.db",
        says="charging.battery_kwh",
        process=True,
    ),
    case("car", "wb_a", "target", "--db", "{tmp}/ems.db", says="give --by HH:MM"),
    case("car", "wb_b", "weekly", "fri-mon", "--at", "07:00", says="a range runs forwards"),
    case("car", "wb_b", "weekly", "mo", "--at", "07:00", says="days are mon, tue"),
    case("car", "wb_b", "weekly", "mon", "--db", "{tmp}/ems.db", says="give --at HH:MM"),
    case("car", "wb_b", "sessions", "--days", "0", says="between 1 and 3650"),
    case("car", "wb_a", "show", "--db", "{tmp}/missing.db", says="does not exist"),
    case("car", "wb_a", "mode", "off", "--db", "{tmp}/other.db", says="not an EMS one"),
    case(
        "car",
        "wb_b",
        "mode",
        "now",
        "--config",
        "{tmp}/nocharge.yaml",
        says="wb_b does not charge by target: set loads.wb_b.charging.enabled",
        process=True,
    ),
    case("car", "wb_a", "target", "--by", "7h", "--kwh", "3", says="'7h': expected a time"),
    case("car", "wb_a", "target", "--by", "07:00", "--percent", "0", says="more than 0"),
    case("car", "wb_a", "target", "--by", "07:00", "--kwh", "nan", says="at most 300"),
    case(
        "car",
        "wb_a",
        "target",
        "--db",
        "{tmp}/ems.db",
        "--clear",
        "--kwh",
        "3",
        says="--clear takes no --kwh",
    ),
    case("car", "wb_b", "weekly", "mon", "--at", "7.30", says="'7.30': expected a time"),
    case("car", "wb_b", "weekly", "sunday", "--at", "07:00", says="'sunday': days are mon"),
    case(
        "car",
        "wb_b",
        "weekly",
        "sat",
        "--db",
        "{tmp}/ems.db",
        "--clear",
        "--at",
        "07:00",
        says="--clear takes no --at",
    ),
    case("history", says=NO_CONFIG),
    case("history", "--db", "{tmp}/ems.db", "--since", "yesterday-ish", says="expected e.g. 2d"),
    case("history", "--db", "{tmp}/ems.db", "--until", "2026-13-45", says="expected e.g. 2d"),
    case("history", "--db", "{tmp}/ems.db", "--since", "99999999999w", says="outside the"),
    case("history", "--db", "{tmp}/ems.db", "--since", "0001-01-01", says="outside the"),
    case("history", "--db", "{tmp}/ems.db", "--limit", "0", says="between 1 and"),
    case("history", "--db", "{tmp}/ems.db", "--load", "wb_x", says="invalid choice: 'wb_x'"),
    case("history", "--db", "{tmp}/ems.db", "--format", "xml", says="invalid choice: 'xml'"),
    case("history", "--db", "{tmp}/notes.db", says="is not an SQLite database"),
    case("history", "--db", "{tmp}/missing.db", says="does not exist"),
    # stats
    case(
        "stats",
        "--db",
        "{tmp}/ems.db",
        "--days",
        "100000",
        says="between 1 and 3,660",
        process=True,
    ),
    case("stats", says=NO_CONFIG),
    case("stats", "--db", "{tmp}/ems.db", "--days", "0", says="between 1 and 3,660"),
    case("stats", "--db", "{tmp}/ems.db", "--days", "-3", says="between 1 and 3,660"),
    case("stats", "--db", "{tmp}/ems.db", "--days", "week", says="is not a whole number"),
    case("stats", "--db", "{tmp}/other.db", says="not an EMS one"),
    # simulate: output paths are refused before the replay (in-process, a replay fails)
    case("simulate", "nope", says="no bundled scenario of that name"),
    case("simulate", says="the following arguments are required: SCENARIO"),
    case(
        "simulate",
        "s1_clear_summer",
        "--json",
        "/nonexistent/dir/x.json",
        says="not exist",
        process=True,
    ),
    case("simulate", "s1_clear_summer", "--plot", "/nonexistent/dir/x.png", says="not exist"),
    case("simulate", "s1_clear_summer", "--json", "{tmp}", says="is a directory"),
    case(
        "simulate",
        "s1_clear_summer",
        "--plot-from",
        "someday",
        "--plot",
        "{tmp}/p.png",
        says="YYYY",
    ),
    case("simulate", "s1_clear_summer", "--config", "{tmp}/missing.yaml", says="no such file"),
    case("simulate", "{tmp}/notes.db", says="bad header"),
    case("simulate", "s1_clear_summer", "--plot-days", "0", says="more than 0"),
    case("simulate", "s1_clear_summer", "--plot-days", "-1", says="more than 0"),
    case("simulate", "s1_clear_summer", "--plot-days", "nan", says="more than 0"),
    case("simulate", "s1_clear_summer", "--plot-days", "week", says="not a number of days"),
    # webui
    case("webui", "hash-password", stdin="short\n", says="at least 8 characters", process=True),
    case("webui", says="the following arguments are required: SUBCOMMAND"),
    case("webui", "hash-password", "--bogus", says="unrecognized arguments: --bogus"),
    case("webui", "hash-password", stdin="", says="at least 8 characters"),
    # run: the service
    case("run", says=NO_CONFIG, process_only=True),
    case("run", "--config", "{tmp}/inf.yaml", says="prometheus.timeout_s", process_only=True),
    case("run", "--config", "{tmp}/busy-web.yaml", says="port {port}", process_only=True),
    case(
        "run",
        "--config",
        "{tmp}/plain.yaml",
        "--db",
        "/nonexistent/dir/x.db",
        says="/nonexistent/dir",
        process_only=True,
    ),
    case(
        "run",
        "--config",
        "{tmp}/plain.yaml",
        "--db",
        "{tmp}/notes.db",
        says="is not an SQLite database",
        process_only=True,
    ),
    case("run", "--config", "{tmp}/shortkey/c.yaml", says="too short", process_only=True),
    case("run", "--config", "{tmp}/badcreds.yaml", says="nocreds.env", process_only=True),
    case(
        "run",
        "--config",
        "{tmp}/dirkey/c.yaml",
        says="webui-secret: cannot be read (Is a directory)",
        process_only=True,
    ),
    case("run", "--config", "{tmp}/binkey/c.yaml", says="not a key EMS wrote", process_only=True),
    # demo
    case("demo", "--scenario", "nope", says="no bundled scenario of that name", process_only=True),
    case("demo", "--start", "25:00", says="is not a time of day", process_only=True),
    case("demo", "--speed", "0", says="above 0", process_only=True),
    case(
        "demo", "--web-port", "0", "--metrics-port", "{port}", says="port {port}", process_only=True
    ),
    case("demo", "--db", "/nonexistent/dir/x.db", says="/nonexistent/dir", process_only=True),
    case("demo", "--db", "{tmp}/notes.db", says="is not an SQLite database", process_only=True),
    # snapshot, device
    case("snapshot", says=NO_CONFIG),
    case("snapshot", "--config", "{tmp}/badcreds.yaml", says="nocreds.env"),
    case("device", "wb_x", "status", says="invalid choice: 'wb_x'"),
    case("device", "wb_a", "explode", says="invalid choice: 'explode'"),
    case("device", "wb_a", "status", says=NO_CONFIG),
    case("device", "dhw", "status", "--config", SHIPPED, says="talks to Shelly relays only"),
    case("device", "sg_ready", "on", "--config", "{tmp}/plain.yaml", says="Shelly relays only"),
    case("device", "wb_a", "off", "--timer", "5", "--config", SHIPPED, says="--timer takes"),
    case("device", "wb_a", "on", "--timer", "abc", says="invalid int value: 'abc'"),
]

#: Cases whose fix is another change that has not landed yet: argv -> what is pending. They
#: are xfail(strict=True), so the mark must go as soon as the change lands. Empty: none.
PENDING: dict[tuple[str, ...], str] = {}


def _command_of(argv: tuple[str, ...]) -> str:
    return cli.command_word(list(argv)) or ""


IN_A_PROCESS: list[tuple[str, ...]] = [c.argv for c in CASES if c.process]


def _params(cases: list[Case]) -> list[Any]:
    out = []
    for c in cases:
        pending = PENDING.get(c.argv)
        marks = [pytest.mark.xfail(strict=True, reason=f"pending: {pending}")] if pending else []
        out.append(pytest.param(c, id=" ".join(c.argv)[:70] or "(nothing)", marks=marks))
    return out


# --------------------------------------------------------------------------- scratch files


@pytest.fixture(scope="module")
def held_port() -> Iterator[int]:
    """A port in use on 127.0.0.1 while the module's tests run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, held_port: int) -> Path:
    tmp = tmp_path_factory.mktemp("bad-args")
    (tmp / "binary.yaml").write_bytes(b"control:\n  interval_s: 60\n\xff\xfe\n")
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    lines += [
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefg", "bcdefgh", strict=True)
    ]
    (tmp / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (tmp / "deep.yaml").write_text("[" * 50_000 + "]" * 50_000 + "\n")
    (tmp / "big.yaml").write_text("# a comment in a file far too big for a config\n" * 25_000)
    (tmp / "inf.yaml").write_text("prometheus:\n  timeout_s: .inf\n")
    (tmp / "empty.yaml").write_text("")
    (tmp / "open-ui.yaml").write_text("webui: {bind: 0.0.0.0}\n")
    (tmp / "state").mkdir()
    plain = (
        f"store: {{path: '{tmp}/state/ems.db'}}\n"
        "prometheus: {url: 'http://127.0.0.1:9'}\n"
        "forecast: {url: 'http://127.0.0.1:9'}\n"
    )
    (tmp / "plain.yaml").write_text(plain)
    (tmp / "client.yaml").write_text(plain + "viessmann: {client_id: abc123}\n")
    # Its own state directory: the child processes run side by side, and a daemon holds its
    # database's lock.
    (tmp / "web").mkdir()
    (tmp / "busy-web.yaml").write_text(
        plain.replace(f"{tmp}/state/", f"{tmp}/web/")
        + f"webui: {{port: {held_port}}}\nmetrics: {{port: 0, bind: 127.0.0.1}}\n"
    )
    (tmp / "badcreds.yaml").write_text(
        plain + "loads:\n  wb_a:\n    device: {type: shelly_gen2, host: '127.0.0.1:9', "
        f"credentials_file: '{tmp}/nocreds.env'}}\n"
    )
    (tmp / "notes.db").write_text("shopping list\n")
    (tmp / "nocharge.yaml").write_text(plain + "loads:\n  wb_b:\n    charging: {enabled: false}\n")
    # A web UI key that is too short, cannot be read (a directory), is not text.
    for name in ("shortkey", "dirkey", "binkey"):
        (tmp / name).mkdir()
        (tmp / name / "c.yaml").write_text(
            plain.replace(f"{tmp}/state/", f"{tmp}/{name}/")
            + "webui: {port: 0}\nmetrics: {enabled: false}\n"
        )
    (tmp / "shortkey" / "webui-secret").write_text("short")
    (tmp / "dirkey" / "webui-secret").mkdir()
    (tmp / "binkey" / "webui-secret").write_bytes(b"\xff\xfe" * 32)
    conn = sqlite3.connect(tmp / "other.db")
    with conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.close()
    Store.open(tmp / "ems.db").close()
    return tmp


def _fill(text: str, scratch: Path, port: int) -> str:
    return text.replace("{tmp}", str(scratch)).replace("{port}", str(port))


#: Log records (`[time] LEVEL logger: message`) at INFO and below are the normal start-up of
#: `run` and `demo`, not the message.
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d [\d:,]+ )?(DEBUG|INFO) [\w.]+: ")


def _check(c: Case, rc: object, out: str, err: str, scratch: Path, port: int) -> None:
    both = out + err
    assert rc == 2, both
    assert "Traceback" not in both
    assert _fill(c.says, scratch, port) in both
    message = [line for line in err.strip().splitlines() if not _LOG_LINE.match(line)]
    # argparse's usage lines and one message, or a config error with its problem lines.
    assert 1 <= len(message) <= 8, err


# --------------------------------------------------------------------------- in-process


@pytest.fixture
def owner_env(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """As in a checkout: no /etc/ems, a scratch HOME and working directory. The logging
    that main() sets up is put back afterwards."""
    for key in list(os.environ):
        if key.startswith("EMS_"):
            monkeypatch.delenv(key)
    missing = str(scratch / "no-such-config.yaml")
    monkeypatch.setenv("EMS_CONFIG", missing)
    monkeypatch.setattr(cli, "DEFAULT_CONFIG", missing)
    monkeypatch.setenv("HOME", str(scratch))
    monkeypatch.chdir(scratch)
    root = logging.getLogger()
    for handler in root.handlers[:]:  # left by an earlier in-process main() on a closed stream
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    root.handlers[:] = handlers
    root.setLevel(level)


def _no_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad simulate argument must be refused before the replay of many seconds runs."""
    import emsctl.sim.cli as sim_cli

    def replay(*_a: object, **_k: object) -> None:
        raise AssertionError("the replay ran before the arguments were checked")

    monkeypatch.setattr(sim_cli, "run_ems", replay)
    monkeypatch.setattr(sim_cli, "run_baseline", replay)


@pytest.mark.parametrize("c", _params([c for c in CASES if not c.process_only]))
def test_bad_input_in_process(
    c: Case,
    scratch: Path,
    held_port: int,
    owner_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner_env.setattr(sys, "stdin", io.StringIO(c.stdin))
    if _command_of(c.argv) == "simulate":
        _no_replay(owner_env)
    try:
        rc: object = cli.main([_fill(a, scratch, held_port) for a in c.argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    _check(c, rc, out, err, scratch, held_port)


# --------------------------------------------------------------------------- child processes

Outcome = tuple[object, str, str]


@pytest.fixture(scope="module")
def process_results(scratch: Path, held_port: int) -> dict[tuple[str, ...], Outcome]:
    """Every case of IN_A_PROCESS run as `python -m emsctl.cli ...`, four at a time."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EMS_")},
        "EMS_CONFIG": str(scratch / "no-such-config.yaml"),
        "HOME": str(scratch),
    }
    stdin = {c.argv: c.stdin for c in CASES}

    def run(argv: tuple[str, ...]) -> Outcome:
        try:
            res = subprocess.run(
                [sys.executable, "-m", "emsctl.cli", *(_fill(a, scratch, held_port) for a in argv)],
                cwd=scratch,
                env=env,
                input=stdin[argv],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return None, "", f"still running after {exc.timeout} s"
        return res.returncode, res.stdout, res.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(IN_A_PROCESS, pool.map(run, IN_A_PROCESS), strict=True))


@pytest.mark.parametrize("c", _params([c for c in CASES if c.argv in IN_A_PROCESS]))
def test_bad_input_in_a_process(
    c: Case, scratch: Path, held_port: int, process_results: dict[tuple[str, ...], Outcome]
) -> None:
    rc, out, err = process_results[c.argv]
    _check(c, rc, out, err, scratch, held_port)


@pytest.mark.parametrize("name", ["shortkey", "dirkey", "binkey"])
def test_a_bad_web_ui_key_stops_run_with_one_line(
    name: str, process_results: dict[tuple[str, ...], Outcome]
) -> None:
    """Besides the log records of the start so far (a warning among them: the short key's
    file is readable by others), the reason is one line, naming the file."""
    rc, _out, err = process_results[("run", "--config", f"{{tmp}}/{name}/c.yaml")]
    assert rc == 2
    log_record = re.compile(r"^(\d{4}-\d\d-\d\d [\d:,]+ )?(DEBUG|INFO|WARNING) [\w.]+: ")
    message = [line for line in err.strip().splitlines() if not log_record.match(line)]
    assert len(message) == 1, err
    assert message[0].startswith("cannot start: web UI secret key ")
    assert f"{name}/webui-secret" in message[0]


# --------------------------------------------------------------------------- coverage


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command path the parser accepts, e.g. ('db', 'upgrade'), ('diagram',)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {path}
    out: set[tuple[str, ...]] = set()
    for name, child in subs[0].choices.items():
        out |= _leaves(child, (*path, name))
    return out


def _words(argv: tuple[str, ...]) -> tuple[str, ...]:
    """argv from the command word on (global options before it left out; `car`'s wallbox,
    which comes before its action, too)."""
    word = cli.command_word(list(argv))
    words = () if word is None else argv[argv.index(word) :]
    if words[:1] == ("car",) and len(words) > 1 and words[1] in ("wb_a", "wb_b"):
        words = ("car", *words[2:])
    return words


def test_every_command_and_subcommand_has_a_case() -> None:
    leaves = _leaves(cli.build_parser(None))
    assert {path[0] for path in leaves} == {"check-config", *cli.COMMANDS}
    words = [_words(c.argv) for c in CASES]
    assert {leaf for leaf in leaves if not any(w[: len(leaf)] == leaf for w in words)} == set()
    # A command with subcommands, given none, is a case too.
    parents = {leaf[:-1] for leaf in leaves if len(leaf) > 1}
    assert parents - set(words) == set()


def test_an_unknown_command_in_a_process_imports_every_command_module() -> None:
    # An import-time error in any command's module shows in the child process of `nope`:
    # for a word it does not know, the parser loads every module to list the commands.
    assert ("nope",) in IN_A_PROCESS
    assert cli.command_word(["nope"]) not in cli.COMMANDS
    assert len(IN_A_PROCESS) >= 5
