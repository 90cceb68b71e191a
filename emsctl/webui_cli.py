"""`emsctl webui hash-password`: turn a password into the hash for webui.password_hash.

The password is read from a prompt (asked twice) or, when stdin is not a terminal, from its
first line; never from the command line, where it would end up in the shell history.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from werkzeug.security import generate_password_hash

MIN_LENGTH = 8


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New web UI password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise ValueError("the two entries differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _hash_password(args: argparse.Namespace) -> int:
    try:
        password = _read_password()
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"no password set: {exc or 'cancelled'}", file=sys.stderr)
        return 2
    if len(password) < MIN_LENGTH:
        print(f"the password needs at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    print(generate_password_hash(password))
    if sys.stdout.isatty():
        print(
            "Put this line into the config as webui.password_hash (quoted), then restart EMS.",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("webui", help="web UI helpers")
    wsub = p.add_subparsers(dest="webui_command", metavar="SUBCOMMAND")
    wsub.required = True
    h = wsub.add_parser(
        "hash-password",
        help="read a password (prompt or stdin) and print its hash for webui.password_hash",
    )
    h.set_defaults(func=_hash_password)
