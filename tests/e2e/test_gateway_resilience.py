"""The gateway under abuse, end to end: the real ``ecommunity gateway run`` process (and the real
``ecommunity cloud serve`` where a cloud is involved) against a fake AMIS meter on a pty.

- SIGKILL mid-stream, several times, then a restart: no committed reading is lost or doubled,
  the database stays sound, and the uplink still delivers every minute exactly once.
- The cloud down for a whole day: every minute of the day arrives exactly once afterwards, and
  the quarter-hour and day energies are the counter differences.
- A flood of garbage on the line, a wrong meter key, a full disk: the service keeps running and
  says what is wrong.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ecommunity.gateway.store import ReadingStore, from_epoch_ms
from ecommunity.meter import Reading, StreamDecoder, encode_amis
from tests.e2e.processes import (
    MINUTE,
    Cloud,
    Gateway,
    cloud_minutes,
    connect_read_only,
    count_readings,
    integrity_check,
    last_of_each_minute,
    latest_reading_at,
    local_readings,
    wait_until,
)
from tests.gateway.fake_meter import KEY, PTY_AMIS, FakeAmisMeter, Pty, SentFrame, make_reading
from tests.gateway.small_filesystem import SmallFilesystem

pytestmark = pytest.mark.slow

VIENNA = ZoneInfo("Europe/Vienna")
SECOND = timedelta(seconds=1)
#: (meter time, +A) identifies a reading here: the fake meter's counter rises with every push.
Key = tuple[datetime, int]


def key_of(reading: Reading) -> Key:
    assert reading.meter_timestamp is not None
    assert reading.energy_import_wh is not None
    return (reading.meter_timestamp.astimezone(UTC), reading.energy_import_wh)


class CommittedRows:
    """Watches the gateway's database from another connection, as any other process could:
    every row it sees was committed, so it must survive whatever happens to the gateway."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.seen: dict[int, Key] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="committed-rows", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> CommittedRows:
        self._thread.start()
        return self

    def stop(self) -> dict[int, Key]:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._error is not None:
            raise self._error
        return self.seen

    def _run(self) -> None:
        try:
            with contextlib.closing(connect_read_only(self.db)) as conn:
                last = 0
                while not self._stop.is_set():
                    rows = conn.execute(
                        "SELECT id, meter_timestamp_ms, energy_import_wh FROM readings "
                        "WHERE id > ? ORDER BY id",
                        (last,),
                    ).fetchall()
                    for row_id, ms, wh in rows:
                        self.seen[row_id] = (from_epoch_ms(ms), wh)
                        last = row_id
                    time.sleep(0.005)
        except BaseException as exc:
            self._error = exc


def reached(db: Path, at: datetime) -> bool:
    """Whether the gateway has stored a reading of meter time ``at`` or later."""
    latest = latest_reading_at(db)
    return latest is not None and latest >= at


def rows_by_id(db: Path) -> dict[int, Key]:
    with contextlib.closing(connect_read_only(db)) as conn:
        rows = conn.execute("SELECT id, meter_timestamp_ms, energy_import_wh FROM readings")
        return {row_id: (from_epoch_ms(ms), wh) for row_id, ms, wh in rows}


def acknowledged_in(frames: list[SentFrame], acked: set[int]) -> list[SentFrame]:
    """The frames of one gateway run that the meter knows were acknowledged by that run.

    Leading frames without an E5 were sent before the gateway had the port open. After the
    first frame with no E5 in time, a late E5 could be taken for the next frame's: the E5s
    that follow no longer tell which frame they answer, so the list ends there.
    """
    known: list[SentFrame] = []
    for frame in frames:
        if frame.index in acked:
            known.append(frame)
        elif known:
            break
    return known


# -- SIGKILL ----------------------------------------------------------------------------------

KILLS = 3


def test_sigkill_mid_stream_loses_no_committed_reading(pty_pair: Pty, tmp_path: Path) -> None:
    """SIGKILL the gateway while the meter pushes as fast as the gateway takes frames, three
    times, restarting it each time.

    What the gateway committed is what another connection saw in its database, what the meter
    got an E5 for (the reader acknowledges a frame *before* committing it, to answer within
    0.5 s, and commits it before it reads the next frame: so every acknowledged frame but the
    last one was committed) and what the cloud confirmed. All of it must be there after the
    kill, once, in a database that passes ``PRAGMA integrity_check``; at the end the cloud
    holds every minute, exactly once, as the last reading of the minute stored locally.
    """
    cloud = Cloud.embedded(tmp_path)
    gateway = Gateway.create(tmp_path, pty_pair.path, cloud_url=cloud.url)
    start = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    # The real meter's 0.5 s for an E5, and it pushes on while nobody answers (then searches).
    meter = FakeAmisMeter(
        pty_pair.master, push_interval_s=0, start=start, ack_timeout_s=0.5, max_missed_acks=3
    )
    rng = random.Random(8)
    cloud.start_and_wait()
    api = cloud.user()
    try:
        meter.start()
        gateway.start()
        gateway.pair(api)
        (cloud_meter,) = wait_until(
            lambda: api.get("/api/v1/meters").json() or None, 10, "the meter"
        )
        meter_id = cloud_meter["id"]
        run_began = 0.0  # time.monotonic() of the previous kill
        for _ in range(KILLS):
            watcher = CommittedRows(gateway.db).start()
            stored = len(local_readings(gateway.db))
            wait_until(lambda w=watcher, n=stored: len(w.seen) >= n + 500, 30, "500 new readings")
            time.sleep(rng.uniform(0, 0.3))  # anywhere in a frame, a commit, an upload
            assert gateway.stop(signal.SIGKILL) == -signal.SIGKILL
            killed_at = time.monotonic()
            seen = watcher.stop()
            confirmed = cloud_minutes(api, meter_id, start, datetime.now(UTC))

            after = rows_by_id(gateway.db)
            assert integrity_check(gateway.db) == ["ok"]
            assert len(set(after.values())) == len(after)  # no reading twice
            assert seen.items() <= after.items()  # every committed row, as it was
            run = [f for f in meter.sent if run_began < f.sent_at < killed_at]
            acked_indices = {f.index for f in meter.acked}
            acked = [key_of(f.reading) for f in acknowledged_in(run, acked_indices)]
            assert len(acked) >= 100  # something to check
            assert set(acked[:-1]) <= set(after.values())
            assert set(confirmed) <= set(after.values())  # what the cloud has stays local
            run_began = killed_at
            gateway.start()

        wait_until(lambda: count_readings(gateway.db) >= len(after) + 500, 30, "readings after")
        newest = local_readings(gateway.db)[-1][0]
        through = gateway.wait_uploaded_through(newest.replace(second=0) - MINUTE, 30)
        got = cloud_minutes(api, meter_id, start, through + MINUTE)
        expected = last_of_each_minute(local_readings(gateway.db), through + MINUTE)
        assert got == expected  # every minute, once, its last reading
        assert got[0][0] < start + MINUTE
        assert len(got) >= 30
        assert gateway.stop() == 0, gateway.logs()
    finally:
        api.close()
        meter.stop()
        gateway.kill()
        cloud.kill()
    assert integrity_check(gateway.db) == ["ok"]
    final = local_readings(gateway.db)
    assert len(set(final)) == len(final)
    assert set(final) <= {key_of(f.reading) for f in meter.sent}


# -- a day without the cloud ------------------------------------------------------------------

#: Meter time through the pty at the start and at the end of the day; the rest is seeded.
PTY_HEAD = timedelta(hours=1)
PTY_TAIL = timedelta(minutes=10)


def seed(db: Path, first_index: int, last_index: int, start: datetime) -> None:
    """Store the pushes ``first_index..last_index`` as the reader would: real encrypted
    frames, decoded by the stream decoder, committed in the gateway's store."""
    decoder = StreamDecoder(PTY_AMIS, key=KEY)
    with ReadingStore(db, synchronous="NORMAL") as store:
        for chunk in range(first_index, last_index + 1, 10_000):
            batch: list[tuple[Reading, datetime]] = []
            for index in range(chunk, min(chunk + 10_000, last_index + 1)):
                reading = make_reading(index, start)
                decoder.feed(
                    encode_amis(reading, KEY, access_number=index & 0xFF, fcb=bool(index & 1))
                )
                batch.extend((decoded, datetime.now(UTC)) for decoded in decoder)
            assert store.add_many(batch) == len(batch) == min(10_000, last_index + 1 - chunk)
        assert not decoder.pop_errors()


def test_a_day_without_the_cloud_arrives_minute_by_minute(pty_pair: Pty, tmp_path: Path) -> None:
    """The cloud goes down for a whole day of meter readings, one per second of meter time,
    then comes back: every minute of the day arrives exactly once, and the quarter-hour and
    day energies in the cloud are the counter differences.

    A day is 86,400 frames. The gateway takes about 1,800 frames/s from the pty on an idle
    machine of two cores (each frame waits for its E5, each reading is committed with
    synchronous=FULL), a few hundred while other work runs, so a whole day through the pty
    would take 50 s to minutes. The half hour before the day, its first hour and its last ten
    minutes go through the pty and the running gateway; the hours between are real encrypted
    frames decoded by the same stream decoder (about 7,000/s) and stored with
    ``ReadingStore.add_many`` while the gateway is stopped, as if it had read them before a
    restart. The uplink sees the same store either way: a day of minutes that the cloud never
    confirmed.
    """
    day_vienna = datetime.now(VIENNA).date() - timedelta(days=2)
    day_start = datetime.combine(day_vienna, datetime.min.time(), VIENNA).astimezone(UTC)
    next_day = datetime.combine(
        day_vienna + timedelta(days=1), datetime.min.time(), VIENNA
    ).astimezone(UTC)
    minutes = (next_day - day_start) // MINUTE  # 1,440 but on the days clocks change
    start = day_start - timedelta(minutes=30)  # push 0 of the meter

    def index_at(at: datetime) -> int:
        return (at - start) // SECOND

    cloud = Cloud.embedded(tmp_path)
    gateway = Gateway.create(tmp_path, pty_pair.path, cloud_url=cloud.url)
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=0.02, start=start)
    tail: FakeAmisMeter | None = None
    cloud.start_and_wait()
    api = cloud.user()
    try:
        meter.start()
        gateway.start()
        gateway.pair(api)
        (cloud_meter,) = wait_until(
            lambda: api.get("/api/v1/meters").json() or None, 10, "the meter"
        )
        meter_id = cloud_meter["id"]
        gateway.wait_uploaded_through(start + MINUTE, 20)

        # -- the cloud goes away: the first hour through the pty ------------------------------
        cloud.stop()
        wait_until(lambda: gateway.uplink("state") == "offline", 10, "the uplink to notice")
        meter.push_interval_s = 0
        wait_until(lambda: reached(gateway.db, day_start + PTY_HEAD), 120, "the first hour")
        meter.stop()
        assert gateway.stop() == 0, gateway.logs()

        # -- the middle of the day, seeded while the gateway is stopped -----------------------
        head_end = index_at(local_readings(gateway.db)[-1][0])
        tail_start = index_at(next_day - PTY_TAIL)
        seed(gateway.db, head_end + 1, tail_start - 1, start)

        # -- the end of the day and a minute more through the pty -----------------------------
        tail = FakeAmisMeter(
            pty_pair.master, push_interval_s=0, start=start, first_index=tail_start
        )
        tail.start()
        gateway.start()
        wait_until(lambda: reached(gateway.db, next_day + MINUTE), 60, "the day's end")
        tail.stop()
        assert gateway.uplink("state") in ("offline", "connecting")
        assert gateway.uplink("uploaded_through") is None  # nothing confirmed since the restart

        # -- the cloud is back ----------------------------------------------------------------
        cloud.start_and_wait()
        gateway.wait_uploaded_through(next_day, 60)
        assert gateway.uplink("backlog_minutes") == 0
        assert gateway.stop() == 0, gateway.logs()

        local = local_readings(gateway.db)
        assert integrity_check(gateway.db) == ["ok"]
        assert len(local) == len(set(local))
        day = [(at, wh) for at, wh in local if day_start <= at < next_day]
        # Every push of the day is stored: one reading per second.
        assert [at for at, _ in day] == [day_start + i * SECOND for i in range(minutes * 60)]

        got = cloud_minutes(api, meter_id, day_start, next_day)
        assert len(got) == minutes
        assert len({at for at, _ in got}) == minutes
        assert got == last_of_each_minute(day, next_day)

        def counter_at(boundary: datetime) -> int:
            # The cloud's rule: the last minute reading at or before the boundary.
            return max((at, wh) for at, wh in got_all if at <= boundary)[1]

        got_all = cloud_minutes(api, meter_id, start, datetime.now(UTC))
        quarters = api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": day_start.isoformat(), "to": next_day.isoformat(),
                    "resolution": "15min"},
        )  # fmt: skip
        assert quarters.status_code == 200, quarters.text
        assert len(quarters.json()) == minutes // 15
        for quarter in quarters.json():
            begins = datetime.fromisoformat(quarter["start"])
            ends = datetime.fromisoformat(quarter["end"])
            assert quarter["complete"], quarter
            assert quarter["energy_import_wh"] == counter_at(ends) - counter_at(begins)
            assert quarter["energy_import_wh"] == 3 * 900  # 3 Wh per push, one push a second
            assert quarter["energy_export_wh"] == 900
        whole_day = api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": day_start.isoformat(), "to": next_day.isoformat(),
                    "resolution": "1d"},
        )  # fmt: skip
        assert whole_day.status_code == 200, whole_day.text
        (the_day,) = whole_day.json()
        assert datetime.fromisoformat(the_day["start"]) == day_start
        assert the_day["energy_import_wh"] == counter_at(next_day) - counter_at(day_start)
        assert the_day["energy_import_wh"] == 3 * 60 * minutes

        # In the cloud's own database: one row per minute, no more.
        with contextlib.closing(sqlite3.connect(f"file:{cloud.database}?mode=ro", uri=True)) as db:
            count, distinct = db.execute(
                "SELECT count(*), count(DISTINCT measured_at) FROM minute_readings "
                "WHERE meter_id = ?",
                (meter_id,),
            ).fetchone()
        assert count == distinct == len(got_all)
    finally:
        api.close()
        meter.stop()
        if tail is not None:
            tail.stop()
        gateway.kill()
        cloud.kill()


# -- bad input --------------------------------------------------------------------------------

JUNK_TOTAL = 8 << 20


def test_a_flood_of_garbage_on_the_line(pty_pair: Pty, tmp_path: Path) -> None:
    """Megabytes of random bytes between the meter's frames (up to 64 KiB before each): the
    gateway keeps reading, counts the bad frames the junk looks like, warns once per kind, and
    stores every real frame."""
    rng = random.Random(1)  # used by the meter's thread only
    meter = FakeAmisMeter(
        pty_pair.master, push_interval_s=0, junk=lambda index: rng.randbytes(rng.randrange(65536))
    )
    gateway = Gateway.create(tmp_path, pty_pair.path)
    try:
        gateway.start()
        meter.start()
        wait_until(lambda: meter.junk_bytes >= JUNK_TOTAL // 2, 60, "half of the junk")
        assert sum(gateway.live_status()["reader"]["frame_errors"].values()) > 0
        wait_until(lambda: meter.junk_bytes >= JUNK_TOTAL, 60, f"{JUNK_TOTAL} bytes of junk")
        meter.stop()
        acked = {key_of(f.reading) for f in meter.acked}
        wait_until(lambda: acked <= set(local_readings(gateway.db)), 10, "the last readings")
        assert gateway.alive(), gateway.logs()
        assert gateway.stop() == 0, gateway.logs()
    finally:
        meter.stop()
        gateway.kill()

    stored = local_readings(gateway.db)
    sent = [key_of(f.reading) for f in meter.sent]
    assert len(sent) >= 200
    assert len(set(stored)) == len(stored)
    assert set(stored) <= set(sent)
    # A junk "frame header" may hold back the last real frame until more bytes come.
    assert len(stored) >= len(sent) - 1
    reader = gateway.status()["reader"]
    assert reader["readings_stored"] == len(stored)
    assert reader["bytes_read"] >= meter.junk_bytes
    assert sum(reader["frame_errors"].values()) >= 10
    warnings = [line for line in gateway.stderr.read_text().splitlines() if "bad frame" in line]
    assert len(warnings) == len(reader["frame_errors"])  # once per kind, at WARNING
    assert all(" WARNING " in line for line in warnings)


def test_a_wrong_meter_key_is_said_clearly(pty_pair: Pty, tmp_path: Path) -> None:
    """A key that is not the meter's: "wrong key" in the log (once) and in status.json, nothing
    stored, no crash; restarted with the right key, the same gateway reads the meter."""
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=0.01).start()
    wrong = Gateway.create(tmp_path, pty_pair.path, key=bytes(range(16)), name="wrong")
    right = Gateway.create(tmp_path, pty_pair.path, data_dir=wrong.data_dir, name="right")
    try:
        wrong.start()
        wait_until(lambda: "wrong key" in wrong.stderr.read_text(), 15, "the wrong key to be said")
        sent = len(meter.sent)
        wait_until(lambda: len(meter.sent) >= sent + 50, 10, "50 more frames")
        live = wrong.live_status()["reader"]
        assert live["wrong_key"] is True
        assert live["frame_errors"]["wrong-key"] >= 50
        assert local_readings(wrong.db) == []
        assert wrong.stop() == 0, wrong.logs()
        status = wrong.status()
        assert status["reader"]["wrong_key"] is True
        assert status["reader"]["frame_errors"]["wrong-key"] >= 50
        assert status["reader"]["readings_stored"] == 0
        said = [line for line in wrong.stderr.read_text().splitlines() if "wrong key" in line]
        assert len(said) == 1, said
        assert "do not decrypt with the configured meter key" in said[0]

        right.start()
        wait_until(lambda: count_readings(right.db) >= 20, 15, "20 readings")
        assert right.stop() == 0, right.logs()
        assert right.status()["reader"]["wrong_key"] is False
    finally:
        meter.stop()
        wrong.kill()
        right.kill()


def test_a_full_disk_is_said_and_survived(pty_pair: Pty, tmp_path: Path) -> None:
    """The gateway's data directory on a small tmpfs that the test fills up: the gateway says
    "disk full" once, acknowledges no frame it could not store (but the one in flight when the
    disk filled), keeps the database sound, and stores again once the space is back."""
    with SmallFilesystem(tmp_path / "small", 16 << 20) as small:
        gateway = Gateway.create(tmp_path, pty_pair.path, data_dir=small.path / "gateway")
        meter = FakeAmisMeter(pty_pair.master, push_interval_s=0.005, max_missed_acks=3)
        try:
            gateway.start()
            meter.start()
            wait_until(lambda: count_readings(gateway.db) >= 200, 15, "200 readings")
            small.fill()
            filled_at = time.monotonic()
            wait_until(lambda: "disk full" in gateway.stderr.read_text(), 10, "disk full")

            # The meter hears no E5 for what is not stored, and goes back to searching.
            def unanswered() -> int:
                answered = {f.index for f in meter.acked}
                return sum(f.sent_at > filled_at and f.index not in answered for f in meter.sent)

            wait_until(lambda: unanswered() >= 5, 10, "5 frames without an E5")
            time.sleep(0.5)
            reader = gateway.live_status()["reader"]  # status.json cannot be written now
            assert reader["disk_full"] is True
            assert reader["store_error"] == "disk full: database or disk is full"
            assert reader["acks_withheld"] >= 5
            while_full = local_readings(gateway.db)
            assert integrity_check(gateway.db) == ["ok"]
            acked = {key_of(f.reading) for f in meter.acked}
            assert len(acked - set(while_full)) <= 1

            small.free()
            wait_until(lambda: count_readings(gateway.db) >= len(while_full) + 100, 15, "storing")
            assert gateway.live_status()["reader"]["disk_full"] is False
            assert gateway.stop() == 0, gateway.logs()
        finally:
            meter.stop()
            gateway.kill()

        stored = local_readings(gateway.db)
        assert integrity_check(gateway.db) == ["ok"]
        status = gateway.status()

    assert len(set(stored)) == len(stored)
    assert set(stored) <= {key_of(f.reading) for f in meter.sent}
    acked = {key_of(f.reading) for f in meter.acked}
    assert len(acked - set(stored)) <= 1
    reader = status["reader"]
    assert reader["store_errors"] >= 5
    assert reader["acks_withheld"] == reader["store_errors"] - 1
    assert reader["store_error"] is None
    assert reader["disk_full"] is False
    log = gateway.stderr.read_text().splitlines()
    said = [line for line in log if "disk full" in line and " ERROR " in line]
    assert len(said) == 1, said
    assert "free space on its file system" in said[0]
    assert any("storing readings again" in line for line in log)
