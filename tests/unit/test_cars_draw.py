"""The draw watch: a meter's word, and a car without a meter told by the step in the house's
consumption, confirmed at switch-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emsctl.cars.draw import DrawWatch

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def _play(watch: DrawWatch, ticks: list[tuple[bool, float]]) -> list[bool | None]:
    """(relay on, house consumption W) per minute -> `drawing` after each."""
    out = []
    for i, (on, rest) in enumerate(ticks):
        watch.observe(_at(i), on, None, rest)
        out.append(watch.drawing)
    return out


def test_a_metered_car_draws_when_its_meter_says_so_after_a_grace() -> None:
    w = DrawWatch(2000, metered=True)
    w.observe(_at(0), True, 0.0, None)
    assert w.drawing is None  # just switched on: the car may take a moment
    w.observe(_at(3), True, 0.0, None)
    assert w.drawing is False
    w.observe(_at(4), True, 1950.0, None)
    assert w.drawing is True and w.power_w == 1950.0
    w.observe(_at(5), False, 0.0, None)
    assert w.drawing is None and w.off_verdict is True


def test_an_unmetered_car_is_the_step_up_that_holds_two_ticks() -> None:
    w = DrawWatch(4000, metered=False)
    got = _play(w, [(False, 500), (True, 500), (True, 4600), (True, 4500), (True, 4550)])
    assert got == [None, None, None, True, True]
    assert w.power_w == 4000


def test_a_house_spike_is_not_a_car() -> None:
    w = DrawWatch(4000, metered=False)
    # Relay on with no car (judged after the grace), then a 3 kW kettle for one minute.
    got = _play(w, [(False, 500), (True, 500), (True, 500), (True, 500), (True, 3500), (True, 500)])
    assert got[-1] is False and True not in got


def test_a_car_coming_to_a_relay_kept_on_and_stopping_when_full() -> None:
    w = DrawWatch(4000, metered=False)
    ticks = [(False, 400), (True, 400), (True, 400), (True, 400), (True, 400), (True, 4400)]
    ticks += [(True, 4450), (True, 4400), (True, 450)]
    got = _play(w, ticks)
    assert got[:6] == [None, None, None, None, False, False]  # judged: no car; then rising
    assert got[6:] == [True, True, False]


def test_the_step_down_at_switch_off_confirms_a_car_or_denies_it() -> None:
    w = DrawWatch(4000, metered=False)
    _play(w, [(False, 400), (True, 400), (True, 4400), (True, 4400)])
    assert w.drawing is True
    w.observe(_at(10), False, None, 4400)  # measurements a scrape behind
    assert w.off_verdict is None
    w.observe(_at(11), False, None, 420)
    assert w.off_verdict is True
    w.observe(_at(12), False, None, 420)
    assert w.off_verdict is None  # said once

    # An oven that started with the relay: the step up looked like a car, but switching off
    # takes nothing away.
    w = DrawWatch(4000, metered=False)
    _play(w, [(False, 400), (True, 400), (True, 4400), (True, 4400)])
    assert w.drawing is True
    w.observe(_at(10), False, None, 4400)
    w.observe(_at(12), False, None, 4380)
    w.observe(_at(13), False, None, 4390)
    assert w.off_verdict is False


def test_no_data_and_no_reading_change_nothing() -> None:
    w = DrawWatch(4000, metered=False)
    _play(w, [(False, 400), (True, 400), (True, 4400), (True, 4400)])
    w.observe(_at(5), None, None, 400)  # the device was not read
    assert w.drawing is True
    w.observe(_at(6), True, None, None)  # no measurements this tick
    assert w.drawing is True


def test_a_stop_lost_among_other_changes_is_found_by_the_level() -> None:
    w = DrawWatch(4000, metered=False)
    _play(w, [(False, 400), (True, 400), (True, 4400), (True, 4400)])
    assert w.drawing is True
    # The car stops while another load starts (-4 kW + 2 kW): no step of the car's size...
    w.observe(_at(5), True, None, 2400)
    assert w.drawing is True
    # ...but a house that consumes less than the car alone cannot hold it: after two ticks.
    w.observe(_at(6), True, None, 2300)
    assert w.drawing is False
