"""``cloud.db.meter_counters``: counters at boundaries from one grouped scan agree with the
definition of ``readings.energy_intervals`` (last unflagged counter at or before a boundary,
counting when it lies within the tolerance), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecommunity.cloud.db.meter_counters import (
    counters_at_boundaries,
    import_spans,
    latest_received_at,
)
from ecommunity.cloud.db.models import Meter
from ecommunity.cloud.db.readings import energy_intervals
from tests.cloud.test_ingest import add_account, add_gateway, db_session, reading, upload

START = datetime(2025, 3, 29, 20, 0, tzinfo=UTC)  # across the night of the spring change
MINUTE = timedelta(minutes=1)
QUARTER = timedelta(minutes=15)
TOLERANCE = timedelta(minutes=2)


def _irregular_readings(seed: int) -> list[dict[str, object]]:
    """Eight hours of readings with what meters do: seconds past the minute, sub-second stamps,
    readings exactly on boundaries, lost minutes, a gap of 40 minutes, export only now and
    then, and a counter that runs backwards once (stored flagged, never used)."""
    rng = random.Random(seed)
    readings: list[dict[str, object]] = []
    imported, exported = 1_000_000, 50_000
    for k in range(8 * 60):
        if 200 <= k < 240 or rng.random() < 0.1:
            continue
        imported += rng.randint(0, 40)
        exported += rng.randint(0, 3)
        offset = timedelta(seconds=rng.choice([0, 0, 7, 59]), microseconds=rng.choice([0, 500]))
        at = START + k * MINUTE + offset
        export: int | None = exported if k % 7 else None
        readings.append(reading(at, imported, export))
    readings.append(reading(START + 300 * MINUTE + timedelta(seconds=30), imported - 500, None))
    return readings


def test_counters_agree_with_the_energy_intervals(client: TestClient) -> None:
    account = add_account(client)
    gateway = add_gateway(client, account)
    result = upload(client, gateway, _irregular_readings(3))
    assert result["flagged"] == 1
    count = 8 * 4
    with db_session(client) as db:
        meter_id = db.execute(select(Meter.id)).scalar_one()
        for step, intervals in ((QUARTER, count), (MINUTE, 8 * 60)):
            boundaries = [START + k * step for k in range(intervals + 1)]
            expected = energy_intervals(
                db, meter_id, boundaries, tolerance=TOLERANCE, now=START + timedelta(days=1)
            )
            counters = counters_at_boundaries(
                db, [meter_id, 999_999], START, intervals, step, tolerance=TOLERANCE
            )
            assert not counters[999_999].import_fresh.any()
            found = counters[meter_id]
            checked = 0
            for k, interval in enumerate(expected):
                for value, fresh, energy in (
                    (found.import_wh, found.import_fresh, interval.energy_import_wh),
                    (found.export_wh, found.export_fresh, interval.energy_export_wh),
                ):
                    if fresh[k] and fresh[k + 1]:
                        assert energy == int(value[k + 1] - value[k]), (step, k)
                        checked += 1
                both = (
                    found.import_fresh[k]
                    and found.import_fresh[k + 1]
                    and found.export_fresh[k]
                    and found.export_fresh[k + 1]
                )
                assert interval.complete == both, (step, k, interval)
            assert checked > intervals  # most intervals are complete in both counters
        # The gap: no reading within two minutes before 23:20 and 23:30.
        quarter = counters_at_boundaries(db, [meter_id], START, count, QUARTER, tolerance=TOLERANCE)
        assert not quarter[meter_id].import_fresh[14]  # 23:30 UTC, inside the 40-minute gap
        assert not np.any(quarter[meter_id].import_wh[~quarter[meter_id].import_fresh])


def test_spans_and_the_latest_reading(client: TestClient) -> None:
    gateway = add_gateway(client, add_account(client))
    upload(
        client,
        gateway,
        [
            reading(START, 1000, 0),
            reading(START + MINUTE, 900, 0),  # backwards: flagged, left out
            reading(START + 2 * MINUTE, 1200, 0),
            reading(START + 3 * MINUTE, 1300, 0),
        ],
    )
    with db_session(client) as db:
        meter_id = db.execute(select(Meter.id)).scalar_one()
        spans = import_spans(db, [meter_id], START, START + 3 * MINUTE)
        span = spans[meter_id]
        assert (span.first_at, span.first_wh) == (START, 1000)
        assert (span.last_at, span.last_wh) == (START + 2 * MINUTE, 1200)
        assert (
            import_spans(db, [meter_id], START + timedelta(days=1), START + timedelta(days=2)) == {}
        )
        stored = latest_received_at(db, [meter_id], measured_after=START, received_after=None)
        assert stored is not None
        assert datetime.now(UTC) - stored < timedelta(minutes=5)
        assert (
            latest_received_at(db, [meter_id], measured_after=START, received_after=stored) is None
        )
        after_all = START + 3 * MINUTE
        assert (
            latest_received_at(db, [meter_id], measured_after=after_all, received_after=None)
            is None
        )
        assert latest_received_at(db, [], measured_after=START, received_after=None) is None
