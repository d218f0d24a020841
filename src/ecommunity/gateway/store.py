"""The gateway's local store of meter readings: one SQLite file, WAL mode, versioned schema.

A reading counts as stored once :meth:`ReadingStore.add` has returned: the row is committed
with ``synchronous=FULL``, so it survives a crash or power cut from that moment on. Callers
report a reading (print it, publish it, upload it) only after that.

Timestamps are stored as integer milliseconds since the Unix epoch, UTC (columns ending in
``_ms``): they sort and compare as numbers, cannot carry a wrong zone, and map 1:1 to the
timezone-aware UTC datetimes of the Python API. The meter's own offset is kept in the reading
JSON.

Readings are unique by ``(meter_id, meter_timestamp_ms)``: the same push stored twice (a
replayed capture, a reader restarted mid-stream) is one row. ``meter_id`` is ``""`` when the
frame carries no identification (AMIS meters send 0). A reading without a meter clock has a
NULL ``meter_timestamp_ms`` and, as SQLite treats NULLs as distinct, is never deduplicated.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Literal

from ecommunity.meter import Reading

logger = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

#: Schema migrations, applied in order on open; migration ``i`` takes the schema from
#: version ``i`` to ``i + 1`` (``PRAGMA user_version``). Append, never edit a released one.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # AUTOINCREMENT keeps ids increasing even after old rows are pruned, so an uplink
        # can use "id > last uploaded id" as its cursor.
        """
        CREATE TABLE readings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            meter_id TEXT NOT NULL,
            meter_timestamp_ms INTEGER,
            received_at_ms INTEGER NOT NULL,
            profile TEXT NOT NULL,
            energy_import_wh INTEGER,
            energy_export_wh INTEGER,
            power_import_w INTEGER,
            power_export_w INTEGER,
            reading_json TEXT NOT NULL,
            UNIQUE (meter_id, meter_timestamp_ms)
        )
        """,
        "CREATE INDEX readings_received_at ON readings (received_at_ms)",
    ),
    (
        # The uplink's progress: the start of the last UTC minute of each meter that the cloud
        # has confirmed. ``target`` names the cloud and the device identity the minutes went
        # to, so that pairing again (or with another cloud) starts the upload from the start.
        """
        CREATE TABLE uplink_watermarks (
            target TEXT NOT NULL,
            meter_id TEXT NOT NULL,
            minute_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            PRIMARY KEY (target, meter_id)
        ) WITHOUT ROWID
        """,
    ),
)
#: The schema version this code writes.
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_COLUMNS: Final = (
    "id, meter_id, meter_timestamp_ms, received_at_ms, profile, energy_import_wh, "
    "energy_export_wh, power_import_w, power_export_w, reading_json"
)
INSERT_SQL: Final = (
    "INSERT INTO readings (meter_id, meter_timestamp_ms, received_at_ms, profile, "
    "energy_import_wh, energy_export_wh, power_import_w, power_export_w, reading_json) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    # Not INSERT OR IGNORE: that would also swallow NOT NULL violations.
    "ON CONFLICT (meter_id, meter_timestamp_ms) DO NOTHING"
)

Synchronous = Literal["FULL", "EXTRA", "NORMAL"]


class StoreError(Exception):
    """The database cannot be used: WAL not available, or written by a newer schema."""


@dataclass(frozen=True, slots=True)
class StoredReading:
    """One row of the store."""

    id: int
    #: The meter's identification, ``""`` when the frame carries none.
    meter_id: str
    #: The meter's clock, converted to UTC; None if the frame has no clock.
    meter_timestamp: datetime | None
    #: When the gateway received the frame. [UTC]
    received_at: datetime
    profile: str
    #: Cumulative active energy imported / exported. [Wh]
    energy_import_wh: int | None
    energy_export_wh: int | None
    #: Instantaneous active power imported / exported. [W]
    power_import_w: int | None
    power_export_w: int | None
    #: The full reading as ``Reading.to_json()`` gave it, serialised.
    reading_json: str

    def reading_data(self) -> dict[str, Any]:
        """The full reading, parsed back from JSON."""
        data: dict[str, Any] = json.loads(self.reading_json)
        return data


def to_epoch_ms(when: datetime) -> int:
    """Milliseconds since the Unix epoch (integer arithmetic: no float rounding).

    Raises:
        ValueError: ``when`` is naive; a naive time has no defined instant.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"timestamp {when.isoformat()} has no timezone")
    return (when - _EPOCH) // _MS


def from_epoch_ms(value: int) -> datetime:
    """The timezone-aware UTC datetime for milliseconds since the Unix epoch."""
    return _EPOCH + value * _MS


class ReadingStore:
    """Readings in an SQLite file (created if missing, migrated to :data:`SCHEMA_VERSION`).

    One instance can be shared between threads: calls are serialised by a lock. Other
    processes may read the same file at the same time (WAL mode) and see every committed row.

    ``synchronous`` is ``FULL`` for the live path: in WAL mode ``NORMAL`` may lose the last
    commits on a power cut, which would break "committed before reported". Use ``NORMAL``
    only for bulk imports that can be repeated.

    Raises:
        StoreError: the file cannot be put in WAL mode, or its schema is newer than ours.
        sqlite3.Error: the file cannot be opened or is not a database.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: Synchronous = "FULL") -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        # Autocommit mode: transactions are opened explicitly, so that exactly one commit
        # happens per add() and nothing is left pending behind the caller's back.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._configure(synchronous)
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _configure(self, synchronous: Synchronous) -> None:
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 5000")
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite refused WAL mode (journal mode {mode!r})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")

    def _migrate(self) -> None:
        # BEGIN IMMEDIATE takes the write lock before reading the version, so two processes
        # opening a new file at once do not both run the same migration.
        with self._transaction():
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this code's "
                    f"{SCHEMA_VERSION}; upgrade ecommunity"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[number]:
                    self._conn.execute(statement)
                # user_version is part of the database header: it commits with the tables.
                self._conn.execute(f"PRAGMA user_version = {number + 1}")
                logger.info("%s: migrated schema to version %d", self.path, number + 1)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (SQLITE_FULL, I/O errors); a failed COMMIT
            # leaves the transaction open. Either way the next BEGIN must find none.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        """The ``user_version`` of the open file."""
        with self._lock:
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        return int(version)

    @property
    def synchronous(self) -> str:
        """The connection's ``PRAGMA synchronous`` setting (``FULL`` on the live path)."""
        with self._lock:
            (level,) = self._conn.execute("PRAGMA synchronous").fetchone()
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[int(level)]

    def add(self, reading: Reading, received_at: datetime) -> bool:
        """Store one reading and commit before returning.

        Returns:
            True if the reading is new, False if it was already stored (a duplicate).

        Raises:
            ValueError: ``received_at`` or the reading's timestamp is naive.
            sqlite3.Error: the write failed (disk full, database locked too long); nothing
                was stored.
        """
        row = row_of(reading, received_at)
        with self._lock, self._transaction():
            cursor = self._conn.execute(INSERT_SQL, row)
        return cursor.rowcount == 1

    def add_many(self, readings: Iterable[tuple[Reading, datetime]]) -> int:
        """Store ``(reading, received_at)`` pairs in one transaction.

        Returns:
            How many of them were new.

        Raises:
            ValueError, sqlite3.Error: as :meth:`add`; on error nothing is stored.
        """
        rows = [row_of(reading, received_at) for reading, received_at in readings]
        added = 0
        with self._lock, self._transaction():
            for row in rows:
                added += self._conn.execute(INSERT_SQL, row).rowcount
        return added

    def count(self) -> int:
        """The number of stored readings."""
        with self._lock:
            (count,) = self._conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(count)

    def latest(self, meter_id: str | None = None) -> StoredReading | None:
        """The most recently stored reading (of one meter, if given), or None."""
        sql = f"SELECT {_COLUMNS} FROM readings"
        params: tuple[str, ...] = ()
        if meter_id is not None:
            sql += " WHERE meter_id = ?"
            params = (meter_id,)
        with self._lock:
            row = self._conn.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        return None if row is None else _stored(row)

    def readings(self, *, after_id: int = 0, limit: int = 1000) -> list[StoredReading]:
        """Stored readings with ``id > after_id`` in storage order, at most ``limit``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM readings WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [_stored(row) for row in rows]

    # -- the uplink's queries ---------------------------------------------------------------

    def meter_ids(self) -> list[str]:
        """The ids of the meters that have readings with a meter clock, sorted."""
        # A skip scan over the (meter_id, meter_timestamp_ms) index: one seek per meter, where
        # SELECT DISTINCT would read every row of a year of readings.
        sql = """
            WITH RECURSIVE meters(id) AS (
                SELECT min(meter_id) FROM readings WHERE meter_timestamp_ms IS NOT NULL
                UNION ALL
                SELECT (
                    SELECT min(meter_id) FROM readings
                    WHERE meter_id > meters.id AND meter_timestamp_ms IS NOT NULL
                ) FROM meters WHERE meters.id IS NOT NULL
            )
            SELECT id FROM meters WHERE id IS NOT NULL
        """
        with self._lock:
            rows = self._conn.execute(sql).fetchall()
        return [str(row[0]) for row in rows]

    def latest_timed(self, meter_id: str) -> StoredReading | None:
        """The reading of ``meter_id`` with the latest meter clock, or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM readings WHERE meter_id = ? "
                "AND meter_timestamp_ms IS NOT NULL ORDER BY meter_timestamp_ms DESC LIMIT 1",
                (meter_id,),
            ).fetchone()
        return None if row is None else _stored(row)

    def minute_readings(
        self, meter_id: str, *, from_ms: int, before_ms: int, limit: int = 1000
    ) -> list[StoredReading]:
        """The last reading (latest meter clock) of each UTC minute, oldest minute first.

        Only readings of ``meter_id`` with ``from_ms <= meter_timestamp_ms < before_ms`` count;
        both bounds are epoch milliseconds and must not be negative. At most ``limit`` minutes.
        """
        if from_ms < 0:
            raise ValueError(f"from_ms must not be negative, got {from_ms}")
        # SQLite takes the bare columns of an aggregate query with max() from the row that
        # has the maximum: the latest reading of each minute, from the unique index's order.
        sql = (
            f"SELECT {_COLUMNS}, max(meter_timestamp_ms) FROM readings "
            "WHERE meter_id = ? AND meter_timestamp_ms >= ? AND meter_timestamp_ms < ? "
            "GROUP BY meter_timestamp_ms / 60000 ORDER BY meter_timestamp_ms / 60000 LIMIT ?"
        )
        with self._lock:
            rows = self._conn.execute(sql, (meter_id, from_ms, before_ms, limit)).fetchall()
        return [_stored(row[:-1]) for row in rows]

    def count_minutes(self, meter_id: str, *, from_ms: int, before_ms: int) -> int:
        """How many UTC minutes :meth:`minute_readings` would return without a limit."""
        with self._lock:
            (count,) = self._conn.execute(
                "SELECT count(DISTINCT meter_timestamp_ms / 60000) FROM readings "
                "WHERE meter_id = ? AND meter_timestamp_ms >= ? AND meter_timestamp_ms < ?",
                (meter_id, from_ms, before_ms),
            ).fetchone()
        return int(count)

    # -- the local API's queries ------------------------------------------------------------

    def counter_at(self, meter_id: str, at_ms: int) -> StoredReading | None:
        """The reading of ``meter_id`` with the latest meter clock at or before ``at_ms``."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM readings WHERE meter_id = ? "
                "AND meter_timestamp_ms IS NOT NULL AND meter_timestamp_ms <= ? "
                "ORDER BY meter_timestamp_ms DESC LIMIT 1",
                (meter_id, at_ms),
            ).fetchone()
        return None if row is None else _stored(row)

    def readings_between(
        self, meter_id: str, *, from_ms: int, before_ms: int, limit: int
    ) -> list[StoredReading]:
        """Readings of ``meter_id`` with ``from_ms <= meter clock < before_ms``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM readings WHERE meter_id = ? "
                "AND meter_timestamp_ms >= ? AND meter_timestamp_ms < ? "
                "ORDER BY meter_timestamp_ms LIMIT ?",
                (meter_id, from_ms, before_ms, limit),
            ).fetchall()
        return [_stored(row) for row in rows]

    def watermark(self, target: str, meter_id: str) -> int | None:
        """The start of the last minute of ``meter_id`` uploaded to ``target`` [epoch ms]."""
        with self._lock:
            row = self._conn.execute(
                "SELECT minute_ms FROM uplink_watermarks WHERE target = ? AND meter_id = ?",
                (target, meter_id),
            ).fetchone()
        return None if row is None else int(row[0])

    def set_watermark(self, target: str, meter_id: str, minute_ms: int, now: datetime) -> None:
        """Record that the minutes of ``meter_id`` up to ``minute_ms`` reached ``target``.

        The watermark only moves forward: a late confirmation of an older minute keeps it.

        Raises:
            sqlite3.Error: the write failed; the watermark is as before.
        """
        with self._lock, self._transaction():
            self._conn.execute(
                "INSERT INTO uplink_watermarks (target, meter_id, minute_ms, updated_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (target, meter_id) DO UPDATE SET "
                "minute_ms = max(minute_ms, excluded.minute_ms), "
                "updated_at_ms = excluded.updated_at_ms",
                (target, meter_id, minute_ms, to_epoch_ms(now)),
            )

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ReadingStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def row_of(reading: Reading, received_at: datetime) -> tuple[object, ...]:
    """The row :data:`INSERT_SQL` stores for a reading (also used by the store benchmark)."""
    timestamp = reading.meter_timestamp
    return (
        reading.meter_id or "",
        None if timestamp is None else to_epoch_ms(timestamp),
        to_epoch_ms(received_at),
        reading.profile,
        reading.energy_import_wh,
        reading.energy_export_wh,
        reading.power_import_w,
        reading.power_export_w,
        json.dumps(reading.to_json(), separators=(",", ":")),
    )


def _stored(row: tuple[Any, ...]) -> StoredReading:
    timestamp_ms = row[2]
    return StoredReading(
        id=row[0],
        meter_id=row[1],
        meter_timestamp=None if timestamp_ms is None else from_epoch_ms(timestamp_ms),
        received_at=from_epoch_ms(row[3]),
        profile=row[4],
        energy_import_wh=row[5],
        energy_export_wh=row[6],
        power_import_w=row[7],
        power_export_w=row[8],
        reading_json=row[9],
    )
