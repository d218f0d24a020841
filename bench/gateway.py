"""Gateway benchmarks, side by side, in one run: the home gateway's paths against raw SQLite.

1. Full path, stored readings/s: real encrypted AMIS frames written by a meter into a real pty
   → our serial reader (pyserial, ``run_reader``) → ``StreamDecoder`` → ``ReadingStore.add``
   (one commit per reading, ``synchronous=FULL``), vs. raw ``sqlite3`` inserts of the same rows:
   one commit per row, and all rows in one transaction.
2. Backlog drain, minutes/s serialised for upload from the gateway's SQLite: the uplink's batch
   path (``Uplink._next_batch``: select the last reading of each minute; payloads; httpx's JSON
   body; the watermark commit) vs. a raw SELECT of the same rows (same query, tuples).
3. Bytes per reading on the wire, through a counting TCP proxy to a real ``ecommunity cloud
   serve``: the minute message over the uplink WebSocket (permessage-deflate as negotiated by
   default, and without), and the backfill POST per reading.
4. Peak RSS (``VmHWM``) of a running ``ecommunity gateway run`` reading a pty meter, paired with
   the cloud of 3, while its local API (if served) is polled. Target < 80 MB (a Raspberry Pi).

Run: ``python bench/gateway.py [--seconds S] [--json]``. Exit 1 if a result is wrong, 3 if a
target is missed, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import httpx
from pydantic import SecretStr

from _gateway_cloud import CloudError, CloudProcess, bench_wire, pair_device
from _gateway_rss import RSS_TARGET_MB, bench_rss
from _pty_meter import KEY, PTY_AMIS, PtyMeter, make_frame, make_reading, open_pty
from _turns import FreshFiles, Side, Tally, take_turns
from ecommunity.gateway.serial_reader import (
    ReaderSettings,
    ReaderStats,
    open_serial_port,
    run_reader,
)
from ecommunity.gateway.settings import DeviceCredentials
from ecommunity.gateway.store import INSERT_SQL, ReadingStore, row_of, to_epoch_ms
from ecommunity.gateway.uplink import BATCH_PATH, MAX_BATCH, Uplink, minute_start_ms, stored_payload
from ecommunity.meter import Reading, StreamDecoder

#: A meter pushes one reading per second; the AMIS line (9600 baud, 8E1: 11 bits a byte)
#: carries at most one 101-byte frame and its E5 acknowledgement per 102 * 11 / 9600 s.
LINE_MAX_PER_S: Final = 9600 / (11 * 102)
#: The full path keeps up with ten times the fastest line: a Pi a tenth as fast still does.
FULL_PATH_TARGET: Final = 10 * LINE_MAX_PER_S
#: A day of minutes (1,440) serialised for upload within a second.
DRAIN_TARGET: Final = 1440.0
MINUTE_MS: Final = 60_000


class WrongResultError(Exception):
    """A path gave a wrong result: the benchmark exits 1."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WrongResultError(message)


# --------------------------------------------------------------------------- timing


def measure(sides: Sequence[Side], seconds: float) -> list[Tally]:
    """Warm every side up once, then let them take turns until each has run for ``seconds``."""
    turn = max(0.2, min(1.0, seconds / 4))
    for side in sides:
        side.run(min(0.2, turn))
    return take_turns(sides, seconds, turn)


def _count_for(budget: float, per_unit: float, pool: int, first: int) -> int:
    if per_unit <= 0:
        return min(first, pool)
    return max(1, min(pool, int(budget / per_unit)))


# --------------------------------------------------------------------------- 1. full path


def _stored_energies(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT energy_import_wh FROM readings ORDER BY id").fetchall()
    finally:
        conn.close()
    return [int(row[0]) for row in rows]


class FullPathSide:
    """Meter → pty → ``run_reader`` (pyserial, decoder, ``ReadingStore.add``), fresh each round.

    The clock runs from the meter's first write to the commit of the last reading; opening the
    pty, the store and the port are outside it.
    """

    def __init__(self, frames: Sequence[bytes], energies: Sequence[int], files: FreshFiles):
        self.frames = frames
        self.energies = energies
        self.files = files
        self._per_reading = 0.0

    def run(self, budget: float) -> tuple[int, float]:
        count = _count_for(budget, self._per_reading, len(self.frames), 20)
        pty = open_pty()
        path = self.files.next()
        store = ReadingStore(path)
        stop = threading.Event()
        opened = threading.Event()
        stats = ReaderStats()
        stored = 0
        done_at = 0.0

        def on_reading(reading: Reading) -> None:
            nonlocal stored, done_at
            stored += 1
            if stored == count:
                done_at = perf_counter()
                stop.set()

        def open_port(port: str, line: Any, timeout_s: float) -> Any:
            serial_port = open_serial_port(port, line, timeout_s)
            opened.set()
            return serial_port

        settings = ReaderSettings(port=pty.path, profile=PTY_AMIS, key=KEY)
        reader = threading.Thread(
            target=run_reader,
            args=(settings, store, on_reading, stop),
            kwargs={"open_port": open_port, "stats": stats},
            name="bench-reader",
        )
        meter = PtyMeter(pty.master, self.frames.__getitem__, count=count)
        try:
            reader.start()
            _check(opened.wait(5), f"the reader did not open {pty.path}")
            start = perf_counter()
            meter.start()
            finished = stop.wait(max(10.0, count / 20))
            stop.set()
            reader.join(10)
            _check(finished, f"full path: {stored} of {count} readings stored in time")
            _check(meter.wait_acks(count, 5), f"full path: {meter.acks} E5 of {count} frames")
        finally:
            stop.set()
            meter.stop()
            reader.join(10)
            store.close()
            pty.close()
        _check(meter.error is None, f"the pty meter failed: {meter.error!r}")
        _check(not stats.frame_errors, f"full path: bad frames {stats.frame_errors}")
        _check(
            stats.readings_stored == count and stats.duplicates == stats.store_errors == 0,
            f"full path: {stats}",
        )
        _check(
            _stored_energies(path) == list(self.energies[:count]),
            "full path: the stored energies differ from the encoded ones",
        )
        self.files.remove(path)
        elapsed = done_at - start
        self._per_reading = elapsed / count
        return count, elapsed


class RawCommitSide:
    """Raw ``sqlite3``: the same rows, prebuilt, one ``BEGIN IMMEDIATE``…``COMMIT`` per row."""

    def __init__(self, rows: Sequence[tuple[object, ...]], files: FreshFiles) -> None:
        self.rows = rows
        self.files = files
        self._per_row = 0.0

    def run(self, budget: float) -> tuple[int, float]:
        count = _count_for(budget, self._per_row, len(self.rows), 20)
        path = self.files.next()
        ReadingStore(path).close()  # the same schema, WAL mode
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            execute = conn.execute
            start = perf_counter()
            for row in self.rows[:count]:
                execute("BEGIN IMMEDIATE")
                execute(INSERT_SQL, row)
                execute("COMMIT")
            elapsed = perf_counter() - start
        finally:
            conn.close()
        _check(len(_stored_energies(path)) == count, "raw commits: rows missing")
        self.files.remove(path)
        self._per_row = elapsed / count
        return count, elapsed


class RawTransactionSide:
    """Raw ``sqlite3``: the same rows, prebuilt, ``executemany`` in one transaction."""

    def __init__(self, rows: Sequence[tuple[object, ...]], files: FreshFiles) -> None:
        self.rows = rows
        self.files = files

    def run(self, budget: float) -> tuple[int, float]:
        path = self.files.next()
        ReadingStore(path).close()
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            start = perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL, self.rows)
            conn.execute("COMMIT")
            elapsed = perf_counter() - start
        finally:
            conn.close()
        _check(len(_stored_energies(path)) == len(self.rows), "raw transaction: rows missing")
        self.files.remove(path)
        return len(self.rows), elapsed


def _decode_all(frames: Sequence[bytes]) -> list[Reading]:
    decoder = StreamDecoder(PTY_AMIS, key=KEY)
    decoder.feed(b"".join(frames))
    readings = list(decoder)
    _check(len(readings) == len(frames), f"{len(readings)} readings from {len(frames)} frames")
    return readings


def bench_full_path(
    frames: Sequence[bytes], seconds: float, store_dir: str | None
) -> dict[str, Any]:
    readings = _decode_all(frames)
    energies = [r.energy_import_wh or 0 for r in readings]
    received = datetime.now(UTC)
    rows = [row_of(r, received + timedelta(seconds=i)) for i, r in enumerate(readings)]
    with tempfile.TemporaryDirectory(prefix="ecommunity-bench-", dir=store_dir) as tmp:
        where = Path(tmp)
        full, commits, transaction = measure(
            [
                FullPathSide(frames, energies, FreshFiles(where, "full")),
                RawCommitSide(rows, FreshFiles(where, "commit")),
                RawTransactionSide(rows, FreshFiles(where, "tx")),
            ],
            seconds,
        )
        filesystem = _filesystem(where)
    return {
        "full_path_per_s": full.rate,
        "raw_commit_per_row_per_s": commits.rate,
        "raw_one_transaction_per_s": transaction.rate,
        "ratio_raw_commit_over_full": commits.rate / full.rate if full.rate else None,
        "ratio_raw_transaction_over_full": transaction.rate / full.rate if full.rate else None,
        "rows_per_raw_transaction": len(rows),
        "line_max_per_s": LINE_MAX_PER_S,
        "headroom_over_line": full.rate / LINE_MAX_PER_S,
        "target_per_s": FULL_PATH_TARGET,
        "target_met": full.rate >= FULL_PATH_TARGET,
        "directory": str(Path(store_dir or tempfile.gettempdir())),
        "filesystem": filesystem,
    }


def _filesystem(path: Path) -> str:
    """The filesystem type of ``path`` (fsync cost depends on it), or "?"."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(
            mount
        ) >= len(best):
            best, kind = mount, parts[2]
    return kind


# --------------------------------------------------------------------------- 2. backlog drain


@dataclasses.dataclass(frozen=True)
class Backlog:
    """A gateway database holding ``hours`` of readings at one per second, meter ``""``."""

    path: Path
    start: datetime  # meter clock of the first reading
    readings: int
    minutes: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.readings)


def build_backlog(path: Path, end: datetime, hours: float) -> Backlog:
    """The readings the pty meter would have sent in the ``hours`` before ``end``.

    Each is the decoded reading of a real frame with new clock and counters (so its stored JSON
    is as long as a real one's), stored in one transaction.
    """
    count = int(hours * 3600)
    start = end - timedelta(seconds=count)
    (template,) = _decode_all([make_frame(0, start)])
    pairs = []
    for i in range(count):
        plain = make_reading(i, start)
        reading = dataclasses.replace(
            template,
            meter_timestamp=plain.meter_timestamp,
            energy_import_wh=plain.energy_import_wh,
            energy_export_wh=plain.energy_export_wh,
            power_import_w=plain.power_import_w,
            power_export_w=plain.power_export_w,
        )
        assert plain.meter_timestamp is not None
        pairs.append((reading, plain.meter_timestamp + timedelta(milliseconds=300)))
    with ReadingStore(path, synchronous="NORMAL") as store:
        _check(store.add_many(pairs) == count, "backlog: rows missing")
    return Backlog(path, start, count, (count + 59) // 60)


#: The query ``ReadingStore.minute_readings`` runs, for the raw side.
MINUTE_SQL: Final = (
    "SELECT id, meter_id, meter_timestamp_ms, received_at_ms, profile, energy_import_wh, "
    "energy_export_wh, power_import_w, power_export_w, reading_json, max(meter_timestamp_ms) "
    "FROM readings WHERE meter_id = ? AND meter_timestamp_ms >= ? AND meter_timestamp_ms < ? "
    "GROUP BY meter_timestamp_ms / 60000 ORDER BY meter_timestamp_ms / 60000 LIMIT ?"
)


class DrainSide:
    """One whole backlog per round, as the uplink drains it after an outage: ``_next_batch``
    (the minute query and its look-ups), the payloads, httpx's JSON body of each batch, and
    the watermark commit that follows the cloud's answer. A new upload target each round."""

    def __init__(self, backlog: Backlog, cloud_url: str) -> None:
        self.backlog = backlog
        self.cloud_url = cloud_url
        self.store = ReadingStore(backlog.path)
        self.http = httpx.AsyncClient()
        self.round = 0
        self.bytes = 0
        self.first_ids: list[int] = []

    def run(self, budget: float) -> tuple[int, float]:
        self.round += 1
        credentials = DeviceCredentials(self.cloud_url, self.round, SecretStr("bench-token"))
        now = self.backlog.end + timedelta(minutes=10)  # every minute is finished
        uplink = Uplink(self.store, credentials, self.http, clock=lambda: now)
        url = self.cloud_url + BATCH_PATH
        headers = {"Authorization": "Bearer bench-token"}
        counted: frozenset[str] = frozenset()
        minutes = size = 0
        ids: list[int] = []
        start = perf_counter()
        while True:
            batch, backlog = uplink._next_batch(counted)
            counted |= backlog.keys()
            if batch is None:
                break
            body = {"readings": [stored_payload(row) for row in batch.rows]}
            request = httpx.Request("POST", url, json=body, headers=headers)
            size += len(request.content)
            minutes += len(batch.rows)
            ids.append(batch.rows[0].id)
            last = batch.rows[-1].meter_timestamp
            assert last is not None
            minute_ms = minute_start_ms(to_epoch_ms(last))
            self.store.set_watermark(credentials.target, batch.meter_id, minute_ms, now)
        elapsed = perf_counter() - start
        _check(minutes == self.backlog.minutes, f"drain: {minutes} of {self.backlog.minutes}")
        self.bytes = size
        self.first_ids = ids
        return minutes, elapsed

    def close(self) -> None:
        self.store.close()
        asyncio.run(self.http.aclose())


class RawSelectSide:
    """The same minute rows by the same query, as tuples, batch after batch."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog
        self.conn = sqlite3.connect(backlog.path)
        self.first_ids: list[int] = []

    def run(self, budget: float) -> tuple[int, float]:
        execute = self.conn.execute
        end_ms = to_epoch_ms(self.backlog.end)
        from_ms = to_epoch_ms(self.backlog.start)
        minutes = 0
        ids: list[int] = []
        start = perf_counter()
        while True:
            rows = execute(MINUTE_SQL, ("", from_ms, end_ms, MAX_BATCH)).fetchall()
            if not rows:
                break
            minutes += len(rows)
            ids.append(rows[0][0])
            from_ms = rows[-1][2] - rows[-1][2] % MINUTE_MS + MINUTE_MS
        elapsed = perf_counter() - start
        self.first_ids = ids
        return minutes, elapsed

    def close(self) -> None:
        self.conn.close()


def bench_drain(backlog: Backlog, seconds: float) -> dict[str, Any]:
    drain = DrainSide(backlog, "http://cloud.invalid")
    raw = RawSelectSide(backlog)
    try:
        ours, base = measure([drain, raw], seconds)
        _check(drain.first_ids == raw.first_ids, "drain: the batches differ from the raw SELECT")
    finally:
        drain.close()
        raw.close()
    return {
        "backlog_readings": backlog.readings,
        "backlog_minutes": backlog.minutes,
        "batch_size": MAX_BATCH,
        "uplink_minutes_per_s": ours.rate,
        "raw_select_minutes_per_s": base.rate,
        "ratio_raw_over_uplink": base.rate / ours.rate if ours.rate else None,
        "body_bytes_per_minute": drain.bytes / backlog.minutes,
        "target_minutes_per_s": DRAIN_TARGET,
        "target_met": ours.rate >= DRAIN_TARGET,
    }


# --------------------------------------------------------------------------- output


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_full_path(result: dict[str, Any], seconds: float) -> None:
    print(f"1. Full path, stored readings/s ({seconds:g} s per side, interleaved)")
    print(f"   in {result['directory']} ({result['filesystem']}), WAL, synchronous=FULL")
    lines = (
        ("pty meter → serial reader → decoder → ReadingStore.add", "full_path_per_s"),
        ("raw sqlite3, same rows, one commit per row", "raw_commit_per_row_per_s"),
        (
            f"raw sqlite3, same rows, one transaction ({result['rows_per_raw_transaction']:,})",
            "raw_one_transaction_per_s",
        ),
    )
    for label, key in lines:
        print(f"   {label:<62} {_rate(result[key]):>9}")
    print(
        f"   raw commit per row / full path: {result['ratio_raw_commit_over_full']:.1f}×;"
        f" raw one transaction / full path: {result['ratio_raw_transaction_over_full']:.1f}×"
    )
    print(
        f"   the AMIS line carries at most {LINE_MAX_PER_S:.1f} frames/s (a meter sends 1/s):"
        f" {result['headroom_over_line']:,.0f}× headroom;"
        f" target ≥ {FULL_PATH_TARGET:.0f}/s: {_met(result['target_met'])}"
    )


def print_drain(result: dict[str, Any], seconds: float) -> None:
    print(
        f"2. Backlog drain, minutes/s serialised for upload ({seconds:g} s per side;"
        f" {result['backlog_readings']:,} readings = {result['backlog_minutes']:,} minutes,"
        f" batches of {result['batch_size']:,})"
    )
    print(
        f"   {'uplink batch path (select, payloads, JSON body, watermark)':<62}"
        f" {_rate(result['uplink_minutes_per_s']):>9}"
    )
    print(
        f"   {'raw SELECT, same query and rows, tuples':<62}"
        f" {_rate(result['raw_select_minutes_per_s']):>9}"
    )
    print(
        f"   raw / uplink: {result['ratio_raw_over_uplink']:.1f}×;"
        f" target ≥ {DRAIN_TARGET:,.0f} minutes/s (a day in a second):"
        f" {_met(result['target_met'])}"
    )


def print_wire(result: dict[str, Any]) -> None:
    print(f"3. Bytes per reading on the wire (real cloud serve, {result['cloud']})")
    for name, label, up in (
        ("ws_deflate", "WebSocket minute message, as the uplink connects:", "deflated, framed"),
        ("ws_plain", "WebSocket minute message, compression off:", "framed"),
    ):
        ws = result[name]
        print(f"   {label} {ws['extensions'] or 'no extension negotiated'}")
        print(
            f"      JSON text {ws['json_bytes_per_minute']:.0f} B; on the wire"
            f" {ws['up_bytes_per_minute']:.1f} B up ({up}, masked),"
            f" {ws['down_bytes_per_minute']:.1f} B down (the ack);"
            f" handshake {ws['handshake_up_bytes']:,} B up once per connection"
        )
    post = result["post"]
    print(
        f"   backfill POST {BATCH_PATH} ({post['readings']:,} readings in"
        f" {post['requests']} requests, httpx: {post['compression']})"
    )
    print(
        f"      body {post['body_bytes_per_reading']:.1f} B, request with headers"
        f" {post['up_bytes_per_reading']:.1f} B up per reading"
        f" (gzip would give {post['gzip_body_bytes_per_reading']:.1f} B: not used);"
        f" answer {post['down_bytes_per_request']:.0f} B per request"
    )


def print_rss(result: dict[str, Any]) -> None:
    print(
        f"4. Peak RSS of `ecommunity gateway run` ({result['seconds']:g} s at"
        f" {result['rate_per_s']:g} readings/s, {result['uplink']})"
    )
    print(f"   local API: {result['local_api']}")
    print(
        f"   VmHWM {result['vm_hwm_mb']:.1f} MB; VmRSS {result['vm_rss_first_mb'] or 0:.1f} MB"
        f" at the first reading, {result['vm_rss_mb']:.1f} MB at the end"
        f" ({result['readings_stored']:,} readings stored)"
    )
    print(f"   target < {RSS_TARGET_MB:g} MB: {_met(result['target_met'])}")


def print_summary(report: dict[str, Any]) -> None:
    print("Summary")
    full = report["full_path"]
    if full is not None:
        print(
            f"   full path {_rate(full['full_path_per_s'])} readings/s vs raw"
            f" {_rate(full['raw_commit_per_row_per_s'])} (commit per row),"
            f" {_rate(full['raw_one_transaction_per_s'])} (one transaction)"
        )
    drain = report["drain"]
    if drain is not None:
        print(
            f"   drain     {_rate(drain['uplink_minutes_per_s'])} minutes/s vs raw SELECT"
            f" {_rate(drain['raw_select_minutes_per_s'])}"
        )
    wire = report["wire"]
    if wire is not None:
        print(
            f"   wire      minute message {wire['ws_deflate']['up_bytes_per_minute']:.0f} B"
            f" (deflate) / {wire['ws_plain']['up_bytes_per_minute']:.0f} B (plain);"
            f" backfill {wire['post']['up_bytes_per_reading']:.0f} B per reading"
        )
    rss = report["rss"]
    if rss is not None:
        print(f"   RSS       peak {rss['vm_hwm_mb']:.1f} MB")
    labels = {
        "full_path": f"full path ≥ {FULL_PATH_TARGET:.0f} readings/s",
        "drain": f"drain ≥ {DRAIN_TARGET:,.0f} minutes/s",
        "rss": f"peak RSS < {RSS_TARGET_MB:g} MB",
    }
    for name, ok in report["targets"].items():
        print(f"   target {labels[name]}: {_met(ok)}")
    for error in report["errors"]:
        print(f"   WRONG RESULT: {error}")
    verdict = "FAILED (wrong results)" if report["errors"] else "ok"
    if not report["errors"] and not all(report["targets"].values()):
        verdict = "targets missed"
    print(f"   result: {verdict}")


# --------------------------------------------------------------------------- main


def _section(
    name: str, errors: list[str], run: Callable[[], dict[str, Any]]
) -> dict[str, Any] | None:
    try:
        return run()
    except (WrongResultError, CloudError) as exc:
        errors.append(f"{name}: {exc}")
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per side (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument("--frames", type=int, default=3000, help="AMIS frames (default 3,000)")
    parser.add_argument("--store-dir", help="directory for the databases (default: temp dir)")
    parser.add_argument(
        "--backlog-hours", type=float, default=24.0, help="backlog to drain (default 24)"
    )
    parser.add_argument(
        "--ws-minutes", type=int, default=60, help="minute messages per socket (default 60)"
    )
    parser.add_argument(
        "--rss-seconds", type=float, default=15.0, help="gateway run time (default 15)"
    )
    parser.add_argument(
        "--rss-rate", type=float, default=10.0, help="meter readings/s there (default 10)"
    )
    parser.add_argument(
        "--no-cloud",
        dest="cloud",
        action="store_false",
        help="skip 3 and run the gateway of 4 local-only",
    )
    args = parser.parse_args(argv)
    if (
        args.seconds <= 0
        or args.frames < 20
        or not 1 <= args.backlog_hours <= 24 * 30
        or args.ws_minutes < 1
        or args.rss_seconds <= 0
        or not 0 < args.rss_rate <= 100
    ):
        parser.error(
            "--seconds, --ws-minutes, --rss-seconds must be positive; --frames ≥ 20;"
            " --backlog-hours 1…720; --rss-rate 0…100"
        )
    if args.cloud and args.backlog_hours * 60 < 2 * args.ws_minutes + 1:
        parser.error("the backlog must hold more minutes than 2 × --ws-minutes")
    show = not args.json
    errors: list[str] = []
    if show:
        print(
            f"eCommunity gateway benchmark — {os.cpu_count()} cores ({platform.machine()}),"
            f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}\n"
        )
    # Every meter clock is in the past and continues from the backlog to the live meter of 4,
    # so that the cloud sees one meter whose counters only rise.
    lead = timedelta(seconds=args.rss_seconds * args.rss_rate + 180)
    end = (datetime.now(UTC) - lead).replace(second=0, microsecond=0)
    frames = [make_frame(i, end) for i in range(args.frames)]
    full = wire = rss = None
    drain: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="ecommunity-bench-gateway-") as tmp:
        work = Path(tmp)
        full = _section(
            "full path", errors, lambda: bench_full_path(frames, args.seconds, args.store_dir)
        )
        if show and full is not None:
            print_full_path(full, args.seconds)
            print()
        backlog = build_backlog(work / "backlog.sqlite3", end, args.backlog_hours)
        drain = _section("drain", errors, lambda: bench_drain(backlog, args.seconds))
        if show and drain is not None:
            print_drain(drain, args.seconds)
            print()
        cloud: CloudProcess | None = None
        credentials: DeviceCredentials | None = None
        try:
            if args.cloud:
                cloud = CloudProcess(work / "cloud")
                try:
                    cloud.start()
                    credentials = pair_device(cloud)
                    wire = bench_wire(cloud, credentials, backlog, args.ws_minutes)
                except CloudError as exc:
                    errors.append(f"wire: {exc}\n{cloud.log_tail()}")
                    credentials = None
                if show and wire is not None:
                    print_wire(wire)
                    print()
            rss = _section(
                "rss",
                errors,
                lambda: bench_rss(
                    work / "gateway",
                    seconds=args.rss_seconds,
                    rate=args.rss_rate,
                    meter_start=backlog.start,
                    first_index=backlog.readings,
                    credentials=credentials,
                ),
            )
            if show and rss is not None:
                print_rss(rss)
                print()
        finally:
            if cloud is not None:
                cloud.stop()
    targets: dict[str, bool] = {}
    if full is not None:
        targets["full_path"] = full["target_met"]
    if drain is not None:
        targets["drain"] = drain["target_met"]
    if rss is not None:
        targets["rss"] = rss["target_met"]
        if rss.get("errors"):
            errors.extend(f"rss: {error}" for error in rss["errors"])
    report: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "seconds": args.seconds,
        "full_path": full,
        "drain": drain,
        "wire": wire,
        "rss": rss,
        "targets": targets,
        "errors": errors,
        "ok": not errors,
    }
    if show:
        print_summary(report)
    else:
        json.dump(report, sys.stdout, indent=2)
        print()
    if errors:
        return 1
    return 0 if all(targets.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
