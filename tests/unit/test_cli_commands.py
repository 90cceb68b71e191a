"""The command table of `emsctl`: each subcommand's module is imported only when that command
runs, so the table must name every command its module registers, and nothing else."""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emsctl import cli

ROOT = Path(__file__).resolve().parents[2]


def _registered(module: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(module).register(sub)
    return set(sub.choices)


@pytest.mark.parametrize("module", cli.COMMAND_MODULES)
def test_command_table_names_exactly_what_each_module_registers(module: str) -> None:
    listed = {name for name, owner in cli.COMMANDS.items() if owner == module}
    assert _registered(module) == listed


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["run", "--config", "x.yaml"], "run"),
        (["--log-level", "DEBUG", "db", "upgrade"], "db"),
        (["--log-level=DEBUG", "history"], "history"),
        (["check-config", "x.yaml"], "check-config"),
        (["--help"], None),
        (["-h", "run"], None),
        (["--version"], None),
        ([], None),
        (["--log-level"], None),
    ],
)
def test_command_word_is_the_first_argument_that_is_not_a_global_option(
    argv: list[str], word: str | None
) -> None:
    assert cli.command_word(argv) == word


def test_help_without_a_command_lists_every_command() -> None:
    parser = cli.build_parser(None)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"check-config", *cli.COMMANDS}


def test_a_mistyped_command_is_refused_with_the_full_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["rn"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'rn'" in err
    assert "'run'" in err and "'simulate'" in err


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_parsing_run_imports_the_daemon_and_no_other_command() -> None:
    modules = _modules_after(
        "from emsctl import cli\n"
        "cli.build_parser(cli.command_word(['run', '--config', 'x'])).parse_args(['run'])"
    )
    assert "emsctl.daemon" in modules
    others = {m for m in set(cli.COMMANDS.values()) - {"emsctl.daemon"} if m in modules}
    assert not others
    assert not any(m == "alembic" or m.startswith(("alembic.", "emsctl.sim")) for m in modules)


def test_httpx_after_emsctl_does_without_its_command_line_client() -> None:
    modules = _modules_after("import emsctl, httpx\nassert callable(httpx.main)")
    assert "httpx" in modules
    assert not {"rich", "pygments"} & modules


# --------------------------------------------------------------------------- everyday edges


@pytest.fixture
def _logging_put_back() -> Iterator[None]:
    """main() points the root logger at the test's captured stderr; put it back."""
    root = logging.getLogger()
    for handler in root.handlers[:]:  # left by an earlier in-process main() on a closed stream
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class _CtrlC(io.StringIO):
    def readline(self, *_a: object) -> str:
        raise KeyboardInterrupt


@pytest.mark.usefixtures("_logging_put_back")
def test_ctrl_c_at_a_prompt_ends_with_130_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "ems.yaml"
    cfg.write_text(f"store: {{path: '{tmp_path}/ems.db'}}\nviessmann: {{client_id: abc123}}\n")
    monkeypatch.setattr(sys, "stdin", _CtrlC())
    try:
        rc = cli.main(["viessmann", "login", "--config", str(cfg)])
    except KeyboardInterrupt:  # would end the whole test session
        pytest.fail("Ctrl-C escaped main() (a traceback for the owner)")
    assert rc == 130
    out, err = capsys.readouterr()
    assert "Paste that whole URL" in out
    assert err.strip() == "emsctl: interrupted"


@pytest.mark.usefixtures("_logging_put_back")
@pytest.mark.parametrize("enabled", [False, True])
def test_forecast_show_says_when_the_daemon_does_not_use_a_forecast(
    enabled: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "ems.yaml"
    cfg.write_text(
        f"store: {{path: '{tmp_path}/ems.db'}}\n"
        f"forecast: {{enabled: {str(enabled).lower()}, url: 'http://127.0.0.1:9'}}\n"
    )
    assert cli.main(["forecast", "show", "--config", str(cfg)]) == 1  # nothing listens there
    out, err = capsys.readouterr()
    assert "no forecast: forecast.solar: not reachable" in out
    assert ("note: forecast.enabled is false: the daemon fetches no forecast" in err) is not enabled


def test_output_into_a_pipe_closed_early_ends_quietly() -> None:
    # `emsctl simulate ... --json - | head -1`: the reader goes before the report is written.
    proc = subprocess.Popen(
        [sys.executable, "-m", "emsctl.cli", "simulate", "s6_april_week", "--json", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert rc == 141  # as a command ended by SIGPIPE


def test_a_commands_logging_set_up_does_not_outlive_its_test() -> None:
    from tests.conftest import logging_restored

    root = logging.getLogger()
    before = list(root.handlers), root.level, logging.getLogger("httpx").level
    stream = io.StringIO()
    with logging_restored():
        cli.setup_logging("DEBUG")
        assert root.level == logging.DEBUG and root.handlers != before[0]
        root.handlers[0].setStream(stream)
    stream.close()
    logging.getLogger("emsctl.test").warning("after the test")  # no "Logging error"
    assert (list(root.handlers), root.level, logging.getLogger("httpx").level) == before
