"""The serial reader against a fake AMIS meter (``fake_meter.py``) on a real pty pair."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import serial

from ecommunity.gateway.serial_reader import (
    Backoff,
    ReaderSettings,
    ReaderStats,
    SerialPort,
    open_serial_port,
    run_reader,
)
from ecommunity.gateway.store import ReadingStore, from_epoch_ms
from ecommunity.meter import ACK, LineSettings, Reading
from tests.gateway.fake_meter import (
    AMIS,
    KEY,
    PTY_AMIS,
    FakeAmisMeter,
    Pty,
    open_pty,
    wait_for,
)
from tests.gateway.small_filesystem import SmallFilesystem

SRC = Path(__file__).resolve().parents[2] / "src"

#: (meter timestamp, +A energy [Wh]): what identifies a reading in these tests.
Key = tuple[datetime, int]


def key_of(reading: Reading) -> Key:
    assert reading.meter_timestamp is not None
    assert reading.energy_import_wh is not None
    return (reading.meter_timestamp.astimezone(UTC), reading.energy_import_wh)


def stored_keys(db: Path) -> list[Key]:
    with ReadingStore(db) as store:
        rows = store.readings(limit=1_000_000)
    keys = []
    for row in rows:
        assert row.meter_timestamp is not None
        assert row.energy_import_wh is not None
        keys.append((row.meter_timestamp, row.energy_import_wh))
    return keys


@pytest.fixture
def pty_pair() -> Iterator[Pty]:
    pair = open_pty()
    yield pair
    pair.close()


def fast_settings(
    port: str, retry_initial_s: float = 0.05, retry_max_s: float = 0.2
) -> ReaderSettings:
    return ReaderSettings(
        port=port,
        profile=PTY_AMIS,
        key=KEY,
        retry_initial_s=retry_initial_s,
        retry_max_s=retry_max_s,
    )


class ReaderThread:
    """run_reader in a thread, with a store opened by the test thread."""

    def __init__(
        self,
        settings: ReaderSettings,
        db: Path,
        on_reading: Callable[[Reading], None] | None = None,
        open_port: Callable[[str, LineSettings, float], SerialPort] = open_serial_port,
        on_change: Callable[[ReaderStats], None] | None = None,
    ) -> None:
        self.store = ReadingStore(db)
        self.stop_event = threading.Event()
        self.reported: list[Reading] = []
        self.stats: ReaderStats | None = None
        #: The counters while the reader runs.
        self.live = ReaderStats()
        self._on_reading = on_reading

        def target() -> None:
            self.stats = run_reader(
                settings,
                self.store,
                self._report,
                self.stop_event,
                open_port=open_port,
                stats=self.live,
                on_change=on_change,
            )

        self._thread = threading.Thread(target=target, name="reader", daemon=True)
        self._thread.start()

    def _report(self, reading: Reading) -> None:
        if self._on_reading is not None:
            self._on_reading(reading)
        self.reported.append(reading)

    def stop(self) -> ReaderStats:
        self.stop_event.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the reader did not stop"
        self.store.close()
        assert self.stats is not None
        return self.stats


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_port_is_opened_exclusively_with_the_profile_line(pty_pair: Pty) -> None:
    port = open_serial_port(pty_pair.path, AMIS.line, 0.05)
    try:
        assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (9600, 8, "E", 1)
        assert port.fd is not None
        assert termios.tcgetattr(port.fd)[5] == termios.B9600
        with pytest.raises(serial.SerialException, match="lock"):
            open_serial_port(pty_pair.path, PTY_AMIS.line, 0.05)
    finally:
        port.close()


def test_line_settings_the_port_refuses_are_an_open_failure(pty_pair: Pty) -> None:
    open_serial_port(pty_pair.path, AMIS.line, 0.05).close()  # parity silently dropped
    attrs = termios.tcgetattr(pty_pair.slave)
    attrs[2] |= termios.PARENB
    try:
        termios.tcsetattr(pty_pair.slave, termios.TCSANOW, attrs)
    except termios.error:
        pass  # what Linux does: now that only PARENB changes, the pty refuses it
    else:
        pytest.skip("this kernel lets a pty set parity")
    # A SerialException (an OSError), not termios.error: the reader retries it.
    with pytest.raises(serial.SerialException, match="cannot set the line to 9600 8E1"):
        open_serial_port(pty_pair.path, AMIS.line, 0.05)


def test_reader_acknowledges_and_stores_every_frame(pty_pair: Pty, tmp_path: Path) -> None:
    db = tmp_path / "readings.sqlite3"
    not_visible: list[Key] = []

    def check_committed(reading: Reading) -> None:
        # "Committed before reported": another connection must already see the row.
        if key_of(reading) not in stored_keys(db):
            not_visible.append(key_of(reading))

    meter = FakeAmisMeter(pty_pair.master).start()
    reader = ReaderThread(fast_settings(pty_pair.path), db, on_reading=check_committed)
    try:
        wait_for(lambda: len(meter.acked) >= 20, what="20 acknowledged frames")
    finally:
        meter.stop()
    wait_for(lambda: len(reader.reported) >= len(meter.sent), what="the last reading")
    stats = reader.stop()

    sent = [key_of(frame.reading) for frame in meter.sent]
    assert len(sent) >= 20
    assert meter.acked == meter.sent  # every frame acknowledged at once
    assert set(meter.received) == {ACK[0]}  # the reader sends nothing but E5
    assert len(meter.received) == len(sent) + 1  # one SND_NKE answered, then every frame
    assert stored_keys(db) == sent
    assert [key_of(r) for r in reader.reported] == sent
    assert not_visible == []
    assert stats.readings_stored == len(sent)
    assert (stats.connects, stats.disconnects, stats.duplicates, stats.store_errors) == (1, 0, 0, 0)
    assert stats.frame_errors == {}
    assert stats.bytes_written == len(meter.received)


def test_bad_frames_are_skipped_and_logged_once(
    pty_pair: Pty, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ecommunity.gateway.serial_reader")
    db = tmp_path / "readings.sqlite3"
    meter = FakeAmisMeter(pty_pair.master, ack_timeout_s=0.2, corrupt=frozenset({3, 6, 9}))
    meter.start()
    reader = ReaderThread(fast_settings(pty_pair.path), db)
    try:
        wait_for(lambda: len(meter.acked) >= 12, what="12 acknowledged frames")
    finally:
        meter.stop()
    wait_for(lambda: len(reader.reported) >= len(meter.sent), what="the last reading")
    stats = reader.stop()

    # Corrupt frames get no E5 and store nothing; the rest goes on as before.
    assert [f.index for f in meter.acked] == [f.index for f in meter.sent]
    assert {3, 6, 9}.isdisjoint(f.index for f in meter.sent)
    assert stored_keys(db) == [key_of(f.reading) for f in meter.sent]
    assert stats.frame_errors == {"checksum": 3}
    bad = [r for r in caplog.records if r.name.endswith("serial_reader") and "bad frame" in r.msg]
    assert [r.levelno for r in bad] == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_reader_waits_for_a_missing_port_and_connects_when_it_appears(
    pty_pair: Pty, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ecommunity.gateway.serial_reader")
    db = tmp_path / "readings.sqlite3"
    link = tmp_path / "ttyAMIS"
    attempts: list[float] = []

    def counting_open(path: str, line: LineSettings, timeout_s: float) -> SerialPort:
        attempts.append(time.monotonic())
        return open_serial_port(path, line, timeout_s)

    reader = ReaderThread(fast_settings(str(link)), db, open_port=counting_open)
    meter: FakeAmisMeter | None = None
    try:
        wait_for(lambda: len(attempts) >= 4, what="4 attempts to open the missing port")
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[0] >= 0.045  # back-off, no busy loop
        assert gaps[2] >= 0.15  # doubled up to the 0.2 s cap
        link.symlink_to(pty_pair.path)
        meter = FakeAmisMeter(pty_pair.master).start()
        wait_for(lambda: len(reader.reported) >= 5, what="5 readings after the port appeared")
    finally:
        if meter is not None:
            meter.stop()
    wait_for(lambda: len(reader.reported) >= len(meter.sent), what="the last reading")
    stats = reader.stop()

    assert stats.connects == 1
    assert stats.open_failures == len(attempts) - 1
    assert stored_keys(db) == [key_of(f.reading) for f in meter.sent]
    warnings = [r for r in caplog.records if "cannot open" in r.msg]
    assert warnings[0].levelno == logging.WARNING
    assert {r.levelno for r in warnings[1:]} == {logging.DEBUG}


def test_reader_survives_the_pty_going_away(tmp_path: Path) -> None:
    db = tmp_path / "readings.sqlite3"
    link = tmp_path / "ttyAMIS"
    first = open_pty()
    second: Pty | None = None
    link.symlink_to(first.path)
    reader = ReaderThread(fast_settings(str(link)), db)
    try:
        meter1 = FakeAmisMeter(first.master).start()
        try:
            wait_for(lambda: len(reader.reported) >= 5, what="5 readings on the first pty")
        finally:
            meter1.stop()
        wait_for(lambda: len(reader.reported) >= len(meter1.sent), what="the first meter's last")
        first.close()  # the adapter is unplugged: the reader's port fails

        second = open_pty()
        temporary = tmp_path / "ttyAMIS.new"
        temporary.symlink_to(second.path)
        temporary.replace(link)  # udev points the name at the new device
        meter2 = FakeAmisMeter(second.master, first_index=meter1.next_index).start()
        try:
            wait_for(lambda: len(meter2.acked) >= 5, what="5 readings on the second pty")
        finally:
            meter2.stop()
        total = len(meter1.sent) + len(meter2.sent)
        wait_for(lambda: len(reader.reported) >= total, what="the second meter's last")
    finally:
        stats = reader.stop()
        first.close()
        if second is not None:
            second.close()

    assert stats.disconnects == 1
    assert stats.connects >= 2
    assert stored_keys(db) == [key_of(f.reading) for f in meter1.sent + meter2.sent]


def test_a_bad_key_fails_before_the_port_is_opened(tmp_path: Path) -> None:
    opened: list[str] = []

    def recording_open(path: str, line: LineSettings, timeout_s: float) -> SerialPort:
        opened.append(path)
        return open_serial_port(path, line, timeout_s)

    settings = dataclasses.replace(fast_settings(str(tmp_path / "missing")), key=b"short")
    with (
        ReadingStore(tmp_path / "readings.sqlite3") as store,
        pytest.raises(ValueError, match="16"),
    ):
        run_reader(settings, store, print, threading.Event(), open_port=recording_open)
    assert opened == []


def test_stop_interrupts_a_long_backoff(tmp_path: Path) -> None:
    settings = fast_settings(str(tmp_path / "missing"), retry_initial_s=30.0, retry_max_s=30.0)
    reader = ReaderThread(settings, tmp_path / "readings.sqlite3")
    time.sleep(0.1)  # inside the first 30 s back-off
    started = time.monotonic()
    stats = reader.stop()
    assert time.monotonic() - started < 0.5
    assert stats.open_failures == 1


# -- a full disk, a wrong key ----------------------------------------------------------------


def committed_keys(db: Path) -> list[Key]:
    """The stored readings' keys, through a read-only connection (it writes nothing)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        (check,) = conn.execute("PRAGMA integrity_check").fetchone()
        assert check == "ok"
        rows = conn.execute(
            "SELECT meter_timestamp_ms, energy_import_wh FROM readings ORDER BY id"
        ).fetchall()
    return [(from_epoch_ms(ms), wh) for ms, wh in rows]


def test_a_full_disk_withholds_acks_until_space_returns(
    pty_pair: Pty, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real tmpfs filled up: the reader keeps running, says "disk full" once, acknowledges
    no frame it could not store (but the one in flight when the disk filled), and stores
    again once the space is back."""
    caplog.set_level(logging.DEBUG, logger="ecommunity.gateway.serial_reader")
    changes: list[tuple[str | None, bool]] = []
    with SmallFilesystem(tmp_path / "small", 4 << 20) as small:
        db = small.path / "readings.sqlite3"
        meter = FakeAmisMeter(pty_pair.master, push_interval_s=0.005, max_missed_acks=3)
        reader = ReaderThread(
            fast_settings(pty_pair.path),
            db,
            on_change=lambda stats: changes.append((stats.store_error, stats.disk_full)),
        )
        try:
            meter.start()
            wait_for(lambda: len(reader.reported) >= 20, what="20 readings")
            small.fill()
            wait_for(lambda: reader.live.acks_withheld >= 5, what="5 frames left unacknowledged")
            assert reader.live.disk_full
            assert reader.live.store_error == "disk full: database or disk is full"
            while_full = committed_keys(db)
            assert [key_of(r) for r in reader.reported] == while_full
            acked = {key_of(f.reading) for f in meter.acked}
            assert len(acked - set(while_full)) <= 1  # in flight when the disk filled

            small.free()
            reported = len(reader.reported)
            wait_for(lambda: len(reader.reported) >= reported + 20, what="20 more readings")
            assert not reader.live.disk_full
            assert reader.live.store_error is None
        finally:
            meter.stop()
        wait_for(lambda: reader.live.store_error is None, what="the last write")
        stats = reader.stop()
        stored = committed_keys(db)

    assert changes == [("disk full: database or disk is full", True), (None, False)]
    assert len(set(stored)) == len(stored)
    assert [key_of(r) for r in reader.reported] == stored
    acked = {key_of(f.reading) for f in meter.acked}
    assert len(acked - set(stored)) <= 1
    assert set(stored) <= {key_of(f.reading) for f in meter.sent}
    # Every failed write but the first kept its frame's E5 back.
    assert stats.store_errors == stats.acks_withheld + 1
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "disk full" in r.getMessage()]
    assert [level for level, _ in said].count(logging.ERROR) == 1
    assert said[0][0] == logging.ERROR
    assert "free space on its file system" in said[0][1]
    again = [r for r in caplog.records if "storing readings again" in r.getMessage()]
    assert [r.levelno for r in again] == [logging.INFO]


def test_a_wrong_key_is_said_once_and_shown_until_frames_decrypt(
    pty_pair: Pty, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ecommunity.gateway.serial_reader")
    db = tmp_path / "readings.sqlite3"
    changes: list[bool] = []
    other_key = bytes(range(16))
    wrong = FakeAmisMeter(pty_pair.master, key=other_key).start()
    reader = ReaderThread(
        fast_settings(pty_pair.path), db, on_change=lambda stats: changes.append(stats.wrong_key)
    )
    right: FakeAmisMeter | None = None
    try:
        wait_for(lambda: reader.live.frame_errors.get("wrong-key", 0) >= 10, what="10 frames")
        assert reader.live.wrong_key
        assert reader.reported == []
        wrong.stop()
        right = FakeAmisMeter(pty_pair.master, first_index=wrong.next_index).start()
        wait_for(lambda: len(reader.reported) >= 5, what="5 readings with the right key")
        assert not reader.live.wrong_key
    finally:
        wrong.stop()
        if right is not None:
            right.stop()
    stats = reader.stop()

    assert changes == [True, False]
    assert stats.frame_errors["wrong-key"] >= 10
    assert len(wrong.acked) >= 10  # sound frames on the wire: acknowledged all the same
    said = [r for r in caplog.records if "wrong key" in r.getMessage()]
    assert said[0].levelno == logging.WARNING
    assert "do not decrypt with the configured meter key" in said[0].getMessage()
    assert {r.levelno for r in said[1:]} <= {logging.DEBUG}
    assert [r.levelno for r in caplog.records if "decrypt again" in r.getMessage()] == [
        logging.INFO
    ]


# -- crash test: the reader in its own process, killed mid-stream ---------------------------


class ReaderProcess:
    """``ecommunity meter read`` as a user runs it, with its JSON lines collected."""

    def __init__(self, db: Path, port: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "ecommunity", "meter", "read",
                "--port", port, "--profile", "amis", "--line", "9600-8N1",  # pty: no parity
                "--key", KEY.hex(), "--db", str(db), "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.reported: list[Key] = []
        self._pump = threading.Thread(target=self._read_stdout, daemon=True)
        self._pump.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            data = json.loads(line)
            stamp = datetime.fromisoformat(data["meter_timestamp"]).astimezone(UTC)
            self.reported.append((stamp, data["energy_import_wh"]))

    def finish(self, sig: signal.Signals) -> int:
        """Send ``sig`` unless it has ended; wait; return its exit code (idempotent)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=5)
        self._pump.join(timeout=5)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdout.close()
        if not self.proc.stderr.closed:
            self.stderr = self.proc.stderr.read()
            self.proc.stderr.close()
        return code


def test_reader_killed_mid_stream_loses_nothing_it_reported(pty_pair: Pty, tmp_path: Path) -> None:
    db = tmp_path / "readings.sqlite3"
    meter = FakeAmisMeter(pty_pair.master, ack_timeout_s=0.3, max_missed_acks=2).start()
    first = second = None
    try:
        first = ReaderProcess(db, pty_pair.path)
        wait_for(lambda: len(first.reported) >= 10, timeout_s=10, what="10 readings (first)")
        assert first.finish(signal.SIGKILL) == -signal.SIGKILL
        killed_at = time.monotonic()
        searches_before_restart = meter.searches

        after_kill = stored_keys(db)
        assert set(first.reported) <= set(after_kill)  # reported means committed
        assert len(set(after_kill)) == len(after_kill)
        sent = {key_of(f.reading) for f in meter.sent}
        assert set(after_kill) <= sent

        # Restart once the meter, missing its acknowledgements, is back in search mode: the
        # new reader has to answer SND_NKE before any frame comes.
        wait_for(lambda: meter.searches > searches_before_restart, what="search mode")
        second = ReaderProcess(db, pty_pair.path)
        wait_for(lambda: len(second.reported) >= 5, timeout_s=10, what="5 readings (second)")
    finally:
        meter.stop()
        if first is not None:
            first.finish(signal.SIGKILL)
        if second is not None:
            assert second.finish(signal.SIGTERM) == 0  # a clean stop

    final = stored_keys(db)
    assert len(set(final)) == len(final)
    assert set(after_kill) <= set(final)
    assert set(first.reported) | set(second.reported) <= set(final)
    assert set(first.reported).isdisjoint(second.reported)  # nothing reported twice
    # Frames sent after the kill can only have been acknowledged by the second reader, which
    # stopped cleanly: each of them is stored.
    acked_after = {key_of(f.reading) for f in meter.acked if f.sent_at > killed_at}
    assert acked_after
    assert acked_after <= set(final)
    assert set(final) <= {key_of(f.reading) for f in meter.sent}
    assert f"stopped: {len(second.reported)} readings stored" in second.stderr
