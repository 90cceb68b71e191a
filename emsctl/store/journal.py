"""The outage journal: transitions the database could not take, kept in a file beside it.

While the database refuses writes (disk locked, I/O error) the store keeps transitions in
memory and writes them here too, fsynced, so that a crash during the outage loses none; the
next start writes them into the database first and removes the file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".journal"


def journal_path(db: str | Path) -> Path:
    return Path(f"{db}{SUFFIX}")


def _encode(row: dict[str, Any]) -> str:
    return json.dumps(
        {k: ({"$dt": v.isoformat()} if isinstance(v, datetime) else v) for k, v in row.items()},
        ensure_ascii=False,
    )


def _decode(line: str) -> dict[str, Any]:
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    return {
        k: (datetime.fromisoformat(v["$dt"]) if isinstance(v, dict) and "$dt" in v else v)
        for k, v in raw.items()
    }


def write(path: Path, rows: Iterable[dict[str, Any]]) -> bool:
    """Replace the journal with these rows, durably (write, fsync, rename). True on success."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(_encode(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        log.error("cannot write the outage journal %s (%s): a crash now would lose them", path, exc)
        return False
    return True


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a journal; lines that cannot be read (a torn last line) are skipped."""
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return rows
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(_decode(line))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("%s line %d is unreadable, skipped (%s)", path, n, exc)
    return rows


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove the outage journal %s (%s)", path, exc)
