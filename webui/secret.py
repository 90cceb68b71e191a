"""The key that signs session cookies and CSRF tokens, kept in a 0600 file in the state directory.

Kept across restarts so a restart does not log everybody out; created on first start.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

#: Bytes of randomness in a new key (written as hex).
KEY_BYTES = 32


class SecretKeyError(Exception):
    """The key file cannot be read or created; the message names the file and the cause."""


def load_or_create(path: Path) -> str:
    """The key stored at `path`; a new random key is written there (mode 0600) when missing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise SecretKeyError(
            f"web UI secret key {path}: cannot be created ({exc.strerror})"
        ) from None
    key = secrets.token_hex(KEY_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    log.info("created the web UI secret key %s", path)
    return key


def _read(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise SecretKeyError(
            f"web UI secret key {path}: cannot be read ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise SecretKeyError(
            f"web UI secret key {path}: not a key EMS wrote (not ASCII text); delete the file "
            "and a new key is created at the next start"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "web UI secret key %s is readable by others (mode %o): chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )
    if len(key) < KEY_BYTES:
        raise SecretKeyError(
            f"web UI secret key {path}: too short ({len(key)} characters, need at least "
            f"{KEY_BYTES}); delete the file and a new key is created at the next start"
        )
    return key
