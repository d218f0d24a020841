"""The gateway's SQLite reading store: WAL, schema version, deduplication, durability."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommunity.gateway.store import (
    SCHEMA_VERSION,
    ReadingStore,
    StoreError,
    from_epoch_ms,
    to_epoch_ms,
)
from ecommunity.meter import ObisValue, Reading

VIENNA = ZoneInfo("Europe/Vienna")
T0 = datetime(2024, 3, 31, 1, 59, 58, tzinfo=VIENNA)  # spans the switch to summer time
RECEIVED = datetime(2024, 3, 31, 0, 0, 5, tzinfo=UTC)


def make_reading(
    i: int = 0, *, meter_id: str | None = None, timestamp: datetime | None = T0
) -> Reading:
    return Reading(
        profile="amis",
        meter_id=meter_id,
        meter_timestamp=None if timestamp is None else timestamp + timedelta(seconds=i),
        energy_import_wh=1_000_000 + 7 * i,
        energy_export_wh=500 + i,
        power_import_w=100 + i,
        power_export_w=None,
        obis={"1.0.1.8.0.255": ObisValue(1_000_000 + 7 * i, "Wh")},
        frame_counter=i,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "readings.sqlite3"


def test_new_store_is_wal_full_sync_and_current_schema(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.synchronous == "FULL"
        assert store.count() == 0
        assert store.latest() is None
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        conn.close()


def test_add_stores_all_columns_in_utc(db_path: Path) -> None:
    reading = make_reading(3)
    with ReadingStore(db_path) as store:
        assert store.add(reading, RECEIVED) is True
        stored = store.latest()
    assert stored is not None
    assert stored.meter_id == ""
    # 01:59:58 CET + 3 s is 03:00:01 CEST: 01:00:01 UTC.
    assert stored.meter_timestamp == datetime(2024, 3, 31, 1, 0, 1, tzinfo=UTC)
    assert stored.meter_timestamp.tzinfo is UTC
    assert stored.received_at == RECEIVED
    assert stored.profile == "amis"
    assert (stored.energy_import_wh, stored.energy_export_wh) == (1_000_021, 503)
    assert (stored.power_import_w, stored.power_export_w) == (103, None)
    assert stored.reading_data() == json.loads(json.dumps(reading.to_json()))


def test_same_reading_twice_is_a_duplicate(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        assert store.add(make_reading(1), RECEIVED) is True
        later = RECEIVED + timedelta(minutes=5)
        assert store.add(make_reading(1), later) is False
        assert store.count() == 1
        stored = store.latest()
        assert stored is not None
        assert stored.received_at == RECEIVED  # the first copy is kept untouched


def test_uniqueness_is_per_meter_and_timestamp(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        assert store.add(make_reading(0, meter_id="A"), RECEIVED)
        assert store.add(make_reading(0, meter_id="B"), RECEIVED)
        assert store.add(make_reading(1, meter_id="A"), RECEIVED)
        assert not store.add(make_reading(0, meter_id="A"), RECEIVED)
        assert store.count() == 3
        latest_a = store.latest("A")
        assert latest_a is not None
        assert latest_a.energy_import_wh == 1_000_007


def test_readings_without_meter_clock_are_never_deduplicated(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        assert store.add(make_reading(0, timestamp=None), RECEIVED)
        assert store.add(make_reading(0, timestamp=None), RECEIVED)
        assert store.count() == 2
        assert all(r.meter_timestamp is None for r in store.readings())


def test_add_many_counts_new_rows_in_one_transaction(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        store.add(make_reading(0), RECEIVED)
        batch = [(make_reading(i), RECEIVED) for i in (0, 1, 2, 2, 3)]
        assert store.add_many(batch) == 3
        assert [r.energy_import_wh for r in store.readings()] == [
            1_000_000,
            1_000_007,
            1_000_014,
            1_000_021,
        ]


def test_naive_times_are_rejected_and_nothing_is_stored(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        with pytest.raises(ValueError, match="no timezone"):
            store.add(make_reading(0), datetime(2024, 1, 1, 12, 0))
        naive = make_reading(0, timestamp=datetime(2024, 1, 1, 12, 0))
        with pytest.raises(ValueError, match="no timezone"):
            store.add_many([(make_reading(1), RECEIVED), (naive, RECEIVED)])
        assert store.count() == 0
        # The store is still usable: no transaction was left open.
        assert store.add(make_reading(2), RECEIVED)


def test_reopen_keeps_data_and_schema(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        store.add_many((make_reading(i), RECEIVED) for i in range(5))
    with ReadingStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.count() == 5
        assert not store.add(make_reading(4), RECEIVED)
        assert store.add(make_reading(5), RECEIVED)
        ids = [r.id for r in store.readings()]
        assert ids == sorted(ids)
        assert [r.id for r in store.readings(after_id=ids[2], limit=2)] == ids[3:5]


def test_newer_schema_is_refused(db_path: Path) -> None:
    ReadingStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        ReadingStore(db_path)


def test_concurrent_reader_sees_each_committed_row(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        # A separate read-only connection, as the local API or the uplink would open.
        reader = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            for i in range(5):
                store.add(make_reading(i), RECEIVED)
                (count,) = reader.execute("SELECT count(*) FROM readings").fetchone()
                assert count == i + 1
            # A long read transaction does not block the writer (WAL) and keeps its snapshot.
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM readings").fetchone() == (5,)
            assert store.add(make_reading(5), RECEIVED)
            assert reader.execute("SELECT count(*) FROM readings").fetchone() == (5,)
            reader.execute("COMMIT")
            assert reader.execute("SELECT count(*) FROM readings").fetchone() == (6,)
        finally:
            reader.close()


def test_store_can_be_shared_between_threads(db_path: Path) -> None:
    with ReadingStore(db_path) as store:
        errors: list[BaseException] = []

        def write(start: int) -> None:
            try:
                for i in range(start, start + 20):
                    store.add(make_reading(i), RECEIVED)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n * 10,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert errors == []
        assert store.count() == 40  # 0..49 with overlaps: 0-19, 10-29, 20-39


def test_close_is_idempotent(db_path: Path) -> None:
    store = ReadingStore(db_path)
    store.close()
    store.close()


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.timezones(),
    )
)
def test_epoch_ms_round_trip(when: datetime) -> None:
    ms = to_epoch_ms(when)
    back = from_epoch_ms(ms)
    assert back.tzinfo is UTC
    assert timedelta(0) <= when - back < timedelta(milliseconds=1)
