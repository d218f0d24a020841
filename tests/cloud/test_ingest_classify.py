"""Classifying readings: the straight path for readings after everything known flags exactly
as the general one that searches among known readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ecommunity.cloud.actions.ingest import (
    JUMP_SLACK_WH,
    _classify,
    _classify_after,
    _classify_among,
)
from ecommunity.cloud.db.readings import CounterValue, KnownReadings
from ecommunity.cloud.schemas import ReadingIn

T0 = datetime(2024, 6, 15, 10, 0, tzinfo=UTC)

#: Steps between readings: a second to a day, and exactly the elapsed times whose limit lands on
#: a whole number of Wh (36 s: 1,000 Wh + slack).
STEPS = st.one_of(st.integers(1, 86_400), st.sampled_from([36, 72, 60, 3600])).map(
    lambda s: timedelta(seconds=s)
)
#: Counter changes: small rises, rises around the jump limit for a minute, falls, glitches.
CHANGES = st.one_of(
    st.integers(0, 50),
    st.integers(JUMP_SLACK_WH - 2, JUMP_SLACK_WH + 2),
    st.integers(2_666, 2_668),
    st.integers(-50, -1),
    st.integers(10**6, 10**9),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[KnownReadings, list[datetime], dict[datetime, ReadingIn]]:
    """Known counter values, then new readings all after them."""
    at, values = T0, {"import": 10_000, "export": 5_000}
    known: dict[str, list[CounterValue]] = {"import": [], "export": []}
    for _ in range(draw(st.integers(0, 4))):
        at += draw(STEPS)
        for counter in known:
            if draw(st.integers(0, 3)):
                values[counter] += abs(draw(CHANGES))
                known[counter].append((at, values[counter]))
    instants, readings = [], {}
    for _ in range(draw(st.integers(1, 40))):
        at += draw(STEPS)
        counters = {}
        for counter in ("import", "export"):
            if draw(st.integers(0, 5)):
                values[counter] = max(0, values[counter] + draw(CHANGES))
                counters[counter] = values[counter]
        instants.append(at)
        readings[at] = ReadingIn(
            measured_at=at,
            energy_import_wh=counters.get("import"),
            energy_export_wh=counters.get("export"),
            power_import_w=draw(st.none() | st.integers(0, 10**5)),
        )
    return KnownReadings(set(), known["import"], known["export"]), instants, readings


@settings(max_examples=300, deadline=None)
@given(histories())
def test_the_straight_path_flags_as_the_search_does(
    history: tuple[KnownReadings, list[datetime], dict[datetime, ReadingIn]],
) -> None:
    known, instants, readings = history
    straight = _classify_after(7, instants, readings, known)
    searched = _classify_among(7, instants, readings, known)
    assert straight == searched
    # And _classify takes the straight path for them (same rows, nothing counted twice).
    batch = [(at, readings[at]) for at in instants]
    assert _classify(7, batch, known) == (searched, 0)


def test_a_rise_of_exactly_the_limit_is_no_jump() -> None:
    # 36 s at 100 kW is 1,000 Wh, plus the slack: 2,000 Wh is the most believable rise.
    known = KnownReadings(set(), [(T0, 0)], [])
    later = T0 + timedelta(seconds=36)
    for rise, flags in ((2_000, 0), (2_001, 2)):
        readings = {later: ReadingIn(measured_at=later, energy_import_wh=rise)}
        [row] = _classify_after(1, [later], readings, known)
        assert row.flags == flags
