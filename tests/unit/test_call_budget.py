"""CallBudget: rolling windows, reserves, server blocks, persistence through the StateStore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emsctl.adapters.base import RateLimited
from emsctl.adapters.budget import CallBudget, Window
from emsctl.adapters.statestore import MemoryStateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _budget(store: MemoryStateStore | None = None, daily: int = 5, burst: int = 3) -> CallBudget:
    return CallBudget(
        store or MemoryStateStore(),
        "test:calls",
        [Window(daily, 86400), Window(burst, 600)],
        device="test",
    )


def test_the_tightest_window_decides_and_calls_age_out() -> None:
    b = _budget()
    for i in range(3):
        b.check(T0 + timedelta(seconds=i))
        b.record(T0 + timedelta(seconds=i))
    assert b.remaining(T0 + timedelta(seconds=5)) == 0  # burst window full
    with pytest.raises(RateLimited) as info:
        b.check(T0 + timedelta(seconds=5))
    assert info.value.retry_at == T0 + timedelta(seconds=600)
    later = T0 + timedelta(seconds=601)
    assert b.remaining(later) == 2  # the burst window freed one slot, the day has 2 left
    b.record(later)
    b.record(later + timedelta(seconds=1))
    assert b.remaining(later + timedelta(seconds=2)) == 0
    with pytest.raises(RateLimited, match="5 of 5 calls used in the last 24 h"):
        b.check(later + timedelta(seconds=700))
    assert b.used(T0 + timedelta(days=1, seconds=3)) == 2  # only the two later calls
    assert b.remaining(T0 + timedelta(days=1, seconds=603)) == 3  # all aged out: burst decides


def test_a_reserve_refuses_reads_while_writes_still_fit() -> None:
    b = _budget(daily=10, burst=10)
    for i in range(7):
        b.record(T0 + timedelta(seconds=i))
    now = T0 + timedelta(minutes=20)
    with pytest.raises(RateLimited, match="keeping 3 for writes"):
        b.check(now, reserve=3)
    b.check(now)  # a write may still go


def test_next_free_names_when_a_slot_with_reserve_opens() -> None:
    b = _budget(daily=4, burst=100)
    for h in range(4):
        b.record(T0 + timedelta(hours=h))
    now = T0 + timedelta(hours=5)
    assert b.next_free(now) == T0 + timedelta(days=1)
    assert b.next_free(now, reserve=1) == T0 + timedelta(days=1, hours=1)
    # A reserve no window can ever hold: the answer is a whole window after the last call.
    assert b.next_free(now, reserve=10) == T0 + timedelta(days=1, hours=3)


def test_a_server_block_holds_across_instances_and_lifts_on_time() -> None:
    store = MemoryStateStore()
    _budget(store).block(T0 + timedelta(hours=2), T0)
    other = _budget(store)  # a restarted daemon, or the CLI
    with pytest.raises(RateLimited, match="server asked us to wait") as info:
        other.check(T0 + timedelta(hours=1))
    assert info.value.retry_at == T0 + timedelta(hours=2)
    assert other.blocked_until(T0 + timedelta(hours=2)) is None
    other.check(T0 + timedelta(hours=2))


def test_a_damaged_record_starts_afresh_instead_of_failing() -> None:
    store = MemoryStateStore()
    store.kv_put("test:calls", "{not json", T0)
    b = _budget(store)
    assert b.remaining(T0) == 3
    b.record(T0)
    assert b.used(T0) == 1
