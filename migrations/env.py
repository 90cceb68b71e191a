"""Alembic environment of the EMS store.

emsctl.store.migrate configures Alembic in code and passes an open connection in
`config.attributes["connection"]`; a `sqlalchemy.url` main option also works (offline `--sql`).
The whole upgrade runs in one transaction: SQLite's DDL is transactional, so a failed migration
leaves the file as it was.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from emsctl.store.models import metadata

config = context.config
target_metadata = metadata
OPTIONS = {
    "target_metadata": target_metadata,
    # SQLite cannot ALTER most things: later migrations copy-and-move tables.
    "render_as_batch": True,
    "compare_type": True,
    "transactional_ddl": True,
}


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the EMS migrations")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
