"""Small documents by key (call budgets, caches, device IDs, logged-out sessions) and the
stored PV forecasts. Tick-time: a failure is logged and counted, never raised."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from emsctl.store.base import StoreBase
from emsctl.store.models import (
    forecasts_table,
    kv_table,
)

log = logging.getLogger(__name__)


class KeyValuePort(Protocol):
    """Strings by key, and the raw forecast documents by source."""

    def kv_get(self, key: str) -> str | None: ...

    def kv_put(self, key: str, value: str, at: datetime) -> bool: ...

    def kv_delete(self, key: str) -> bool: ...

    def put_forecast(self, source_key: str, fetched_at: datetime, payload_json: str) -> bool: ...

    def latest_forecast(self, source_key: str) -> tuple[datetime, str] | None: ...


class KeyValue(StoreBase):
    """Key/value rows and forecasts (see KeyValuePort)."""

    def kv_get(self, key: str) -> str | None:
        def read() -> str | None:
            with self.engine.connect() as conn:
                value: str | None = conn.execute(
                    select(kv_table.c.value).where(kv_table.c.key == key)
                ).scalar_one_or_none()
                return value

        return self._guard("kv_get", read, None)

    def kv_put(self, key: str, value: str, at: datetime) -> bool:
        def write() -> bool:
            upsert = sqlite_insert(kv_table).values(key=key, value=value, updated_at=at)
            with self.engine.begin() as conn:
                conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[kv_table.c.key],
                        set_={
                            "value": upsert.excluded.value,
                            "updated_at": upsert.excluded.updated_at,
                        },
                    )
                )
            return True

        return self._guard("kv_put", write, False)

    def kv_delete(self, key: str) -> bool:
        def write() -> bool:
            with self.engine.begin() as conn:
                conn.execute(delete(kv_table).where(kv_table.c.key == key))
            return True

        return self._guard("kv_delete", write, False)

    def put_forecast(self, source_key: str, fetched_at: datetime, payload_json: str) -> bool:
        def write() -> bool:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(forecasts_table),
                    [{"source_key": source_key, "fetched_at": fetched_at, "payload": payload_json}],
                )
            return True

        return self._guard("put_forecast", write, False)

    def latest_forecast(self, source_key: str) -> tuple[datetime, str] | None:
        def read() -> tuple[datetime, str] | None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(forecasts_table.c.fetched_at, forecasts_table.c.payload)
                    .where(forecasts_table.c.source_key == source_key)
                    .order_by(forecasts_table.c.fetched_at.desc(), forecasts_table.c.id.desc())
                    .limit(1)
                ).first()
                return None if row is None else (row[0], row[1])

        return self._guard("latest_forecast", read, None)
