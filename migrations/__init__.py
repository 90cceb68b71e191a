"""Alembic migrations of the EMS store; emsctl.store.migrate runs them (no alembic.ini needed)."""
