"""Memberships: metering point numbers, factors 1–100, five communities, 100 %, one change a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from ecommunity.community import (
    DuplicateParticipationError,
    IntervalError,
    Membership,
    MeteringPointError,
    ParticipationChangeError,
    ParticipationError,
    ParticipationFactorError,
    ParticipationSumError,
    Role,
    RoleConflictError,
    TooManyCommunitiesError,
    check_participations,
    check_tf_percent,
    effective_tf_matrix,
    parse_metering_point,
    regular_starts,
    tf_change_effective_on,
)

POINT = "AT0030000000000000000000000123456"
JAN = datetime(2025, 1, 1, tzinfo=UTC)


def member(community: str, tf: int = 100, **kwargs: object) -> Membership:
    return Membership(community, POINT, Role.CONSUMER, tf, **kwargs)  # type: ignore[arg-type]


def test_metering_point_numbers() -> None:
    assert parse_metering_point(" at00300000 00000000000000000123456 ") == POINT
    for bad in ("", "AT123", POINT + "7", "DE" + POINT[2:], POINT[:-1] + "-"):
        with pytest.raises(MeteringPointError, match="AT followed by 31"):
            parse_metering_point(bad)
    with pytest.raises(MeteringPointError, match="normal form"):
        Membership("c", POINT.lower(), Role.CONSUMER)


@pytest.mark.parametrize("tf", [1, 37, 100])
def test_factors_from_1_to_100(tf: int) -> None:
    assert check_tf_percent(tf) == tf
    assert member("c", tf).tf_percent == tf


@pytest.mark.parametrize("tf", [0, 101, -5, 50.0, True, "50"])
def test_other_factors_are_refused(tf: object) -> None:
    with pytest.raises(ParticipationFactorError):
        member("c", tf)  # type: ignore[arg-type]


def test_factor_zero_is_an_inactive_membership() -> None:
    pending = member("c", 40)
    active = member("c", 40, active_from=JAN, active_until=JAN + timedelta(days=31))
    assert pending.effective_tf_percent(JAN) == 0
    assert active.effective_tf_percent(JAN - timedelta(minutes=15)) == 0
    assert active.effective_tf_percent(JAN) == 40
    assert active.effective_tf_percent(JAN + timedelta(days=31)) == 0
    starts = regular_starts(JAN - timedelta(minutes=30), 4)
    matrix = effective_tf_matrix([active, pending], starts)
    assert matrix.tolist() == [[0, 0, 40, 40], [0, 0, 0, 0]]
    assert effective_tf_matrix([], starts).shape == (0, 4)
    as_datetimes = [JAN + timedelta(minutes=15 * (i - 2)) for i in range(4)]
    assert np.array_equal(effective_tf_matrix([active], as_datetimes), matrix[:1])


def test_membership_periods_are_checked() -> None:
    with pytest.raises(ParticipationError, match="before it starts"):
        member("c", active_from=JAN, active_until=JAN)
    with pytest.raises(IntervalError, match="no UTC offset"):
        member("c", active_from=datetime(2025, 1, 1))


def test_five_communities_and_100_percent() -> None:
    check_participations([member(f"c{i}", 20, active_from=JAN) for i in range(5)])
    check_participations([])
    with pytest.raises(TooManyCommunitiesError, match="6 communities"):
        check_participations([member(f"c{i}", 10, active_from=JAN) for i in range(6)])
    with pytest.raises(ParticipationSumError, match="101 %"):
        check_participations([member("a", 60, active_from=JAN), member("b", 41)])
    with pytest.raises(DuplicateParticipationError, match="community a twice"):
        check_participations([member("a", 10, active_from=JAN), member("a", 10)])


def test_only_overlapping_memberships_count() -> None:
    feb = JAN + timedelta(days=31)
    # Left one community at the end of January, joined another with 100 % in February.
    check_participations(
        [member("a", 100, active_from=JAN, active_until=feb), member("b", 100, active_from=feb)]
    )
    check_participations(
        [member(f"old{i}", 20, active_until=JAN) for i in range(5)]
        + [member(f"new{i}", 20, active_from=JAN) for i in range(5)]
    )
    # A pending application reserves its factor against what is active.
    with pytest.raises(ParticipationSumError):
        check_participations([member("a", 100, active_from=feb), member("b", 1)])


def test_one_point_one_direction() -> None:
    other = Membership("b", POINT[:-1] + "7", Role.CONSUMER)
    with pytest.raises(ParticipationError, match="several metering points"):
        check_participations([member("a"), other])
    producer = Membership("b", POINT, Role.PRODUCER, 10)
    with pytest.raises(RoleConflictError, match="one direction"):
        check_participations([member("a", 10), producer])


def vienna(day: date, hour: int, minute: int = 0) -> datetime:
    # Vienna is UTC+1 in January, UTC+2 in July.
    offset = 2 if 4 <= day.month <= 9 else 1
    return datetime(day.year, day.month, day.day, hour - offset, minute, tzinfo=UTC)


def test_factor_changes_take_effect_the_next_day() -> None:
    day = date(2025, 7, 14)
    assert tf_change_effective_on(vienna(day, 9)) == date(2025, 7, 15)
    assert tf_change_effective_on(vienna(day, 16, 59)) == date(2025, 7, 15)
    yesterday = vienna(day, 12) - timedelta(days=1)
    assert tf_change_effective_on(vienna(day, 12), previous_change_received_at=yesterday) == (
        date(2025, 7, 15)
    )
    assert tf_change_effective_on(vienna(date(2025, 12, 31), 10)) == date(2026, 1, 1)


def test_factor_changes_outside_the_window_or_twice_a_day_are_refused() -> None:
    day = date(2025, 1, 14)
    for hour, minute in ((8, 59), (17, 0), (23, 30)):
        with pytest.raises(ParticipationChangeError, match="09:00–17:00"):
            tf_change_effective_on(vienna(day, hour, minute))
    with pytest.raises(ParticipationChangeError, match="one change a day"):
        tf_change_effective_on(vienna(day, 15), previous_change_received_at=vienna(day, 10))
    with pytest.raises(IntervalError):
        tf_change_effective_on(datetime(2025, 1, 14, 10))
