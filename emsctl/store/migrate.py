"""Alembic, configured in code: the script directory is the installed `migrations` package.

Used by Store.open (upgrade at start-up) and by `emsctl db upgrade|current|downgrade|check`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.command import downgrade as _downgrade
from alembic.command import upgrade as _upgrade
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine

import migrations
from emsctl.store.models import metadata

# Alembic's per-run INFO lines ("Context impl SQLiteImpl") would fill the journal at every
# start; the store logs the migrations it actually applies.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: `__path__` rather than `__file__`: it also works when `migrations` resolves as a namespace
#: package (an editable install made before the package had its __init__.py).
SCRIPT_LOCATION = Path(next(iter(migrations.__path__))).resolve()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config without alembic.ini; `connection` is what env.py migrates."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    heads = script_directory().get_heads()
    if len(heads) != 1:  # pragma: no cover - a packaging mistake, caught by the tests
        raise RuntimeError(f"the migrations have {len(heads)} heads: {heads}")
    return heads[0]


def known_revision(rev: str) -> bool:
    """Whether this code's migrations contain `rev` (a newer EMS may have written others)."""
    try:
        return script_directory().get_revision(rev) is not None
    except (CommandError, RevisionError):
        return False


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        _upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        _downgrade(alembic_config(conn), revision)


def drift(engine: Engine) -> list[Any]:
    """Differences between the models and the migrated schema (empty: none)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))
