"""Read a meter on a serial port, acknowledge its frames and store every reading.

The loop behind ``ecommunity meter read``: bytes from the port go into a sans-IO
:class:`~ecommunity.meter.StreamDecoder`; what the decoder wants sent back (the E5
acknowledgements AMIS meters need within 0.5 s) goes out at once; each decoded reading is
committed to the :class:`~ecommunity.gateway.store.ReadingStore` and only then handed to the
caller. A port that is missing, fails to open or disappears is retried with exponential
back-off; only a stop request ends the loop.

A store that refuses writes (a full disk, an I/O error) does not end the loop either. From the
first failed write on, the reader stores before it acknowledges and keeps back the E5 of every
frame it could not store, so the meter is never told that a frame arrived which is not kept; it
says so once in the log, shows it in :class:`ReaderStats` (``store_error``, ``disk_full``), and
goes back to acknowledging first as soon as a write succeeds again. The one frame in flight when
the disk fills was acknowledged before its write failed: the price of answering within 0.5 s.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol

import serial

from ecommunity.gateway.store import ReadingStore
from ecommunity.meter import LineSettings, Profile, Reading, StreamDecoder

logger = logging.getLogger(__name__)

if sys.platform != "win32":
    import termios

    _LINE_SETUP_ERRORS: tuple[type[Exception], ...] = (termios.error,)
else:
    _LINE_SETUP_ERRORS = ()


class SerialPort(Protocol):
    """The part of :class:`serial.Serial` the reader uses: the seam for other transports."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, b: bytes, /) -> int | None: ...

    def close(self) -> None: ...


#: Opens a port: ``(path, line settings, read timeout [s])``. Raises OSError (which
#: :class:`serial.SerialException` is) when the port cannot be opened.
PortOpener = Callable[[str, LineSettings, float], SerialPort]


def open_serial_port(path: str, line: LineSettings, read_timeout_s: float) -> serial.Serial:
    """Open ``path`` with pyserial in the profile's line settings (e.g. 9600 8E1).

    The port is opened exclusively, so a second reader on the same port fails instead of
    stealing half the bytes.

    Raises:
        serial.SerialException: the port does not exist, is in use, or refuses the line
            settings (the Raspberry Pi's mini UART and ptys have no parity).
    """
    try:
        return serial.Serial(
            port=path,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
            timeout=read_timeout_s,
            # A port that stops draining (a hung USB adapter) must not block the loop forever.
            write_timeout=1.0,
            exclusive=True,
        )
    except _LINE_SETUP_ERRORS as exc:
        # pyserial lets termios.error, which is no OSError, escape when the driver rejects
        # the settings (pyserial issue #196); callers retry OSErrors only.
        raise serial.SerialException(f"{path}: cannot set the line to {line}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """What to read and how to retry."""

    port: str
    profile: Profile
    #: Decryption key (AMIS: AES-128-CBC; DLMS: GCM encryption key). Never logged.
    key: bytes | None = field(default=None, repr=False)
    #: DLMS GCM authentication key, if the operator gives one. Never logged.
    auth_key: bytes | None = field(default=None, repr=False)
    #: DLMS: drop frames whose GCM tag does not verify (needs ``auth_key``).
    require_tag: bool = False
    #: How long one read waits for the first byte; bounds how late a stop request is seen. [s]
    read_timeout_s: float = 0.05
    #: First retry delay after a failure, doubled per failure up to ``retry_max_s``. [s]
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0


@dataclass(slots=True)
class ReaderStats:
    """Counters of one :func:`run_reader` run."""

    #: Successful port opens.
    connects: int = 0
    #: Failed port opens (port missing, busy, not a tty).
    open_failures: int = 0
    #: Open ports that failed while reading or writing (unplugged adapter, closed pty).
    disconnects: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    #: Readings committed to the store (and handed to ``on_reading``).
    readings_stored: int = 0
    #: Readings the store already held; not handed to ``on_reading`` again.
    duplicates: int = 0
    #: Readings that could not be stored (database error); not handed on either.
    store_errors: int = 0
    #: Frames whose E5 was kept back because their readings could not be stored.
    acks_withheld: int = 0
    #: Why the store refuses writes now (``"disk full: …"``); None once a write succeeds.
    store_error: str | None = None
    #: The store refuses writes because the disk is full (SQLITE_FULL, ENOSPC).
    disk_full: bool = False
    #: The meter's frames fail the key check: the configured key is not the meter's. Cleared
    #: by the next frame that decrypts.
    wrong_key: bool = False
    #: Bad frames by :attr:`MeterError.kind`.
    frame_errors: dict[str, int] = field(default_factory=dict)


class Backoff:
    """Exponential retry delays: ``initial_s``, doubled per call, capped at ``max_s``."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._next_s = initial_s

    def next_delay(self) -> float:
        """The delay to wait now [s]; the following call returns twice as much."""
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self.initial_s


class RepeatLimiter:
    """Logs the first occurrence of each kind of problem at WARNING, repeats at DEBUG."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._seen: set[str] = set()

    def log(self, kind: str, msg: str, *args: object) -> None:
        level = logging.DEBUG if kind in self._seen else logging.WARNING
        self._seen.add(kind)
        self._log.log(level, msg, *args)

    def forget(self, *kinds: str) -> None:
        """Warn again on the next occurrence (the problem went away in between)."""
        self._seen.difference_update(kinds)


class _PortLostError(Exception):
    """The open port failed; carries the pyserial/OS error as ``__cause__``."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: A store failure is logged at ERROR at most this often; repeats go to DEBUG. [s]
STORE_ERROR_REPEAT_S = 600.0


def is_disk_full(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because the disk (or the file system's quota) is full."""
    code = getattr(exc, "sqlite_errorcode", None)
    # Extended result codes carry the primary code in their low byte.
    return code is not None and code & 0xFF == sqlite3.SQLITE_FULL


def run_reader(
    settings: ReaderSettings,
    store: ReadingStore,
    on_reading: Callable[[Reading], None],
    stop: threading.Event,
    *,
    open_port: PortOpener = open_serial_port,
    clock: Callable[[], datetime] = _utc_now,
    stats: ReaderStats | None = None,
    on_change: Callable[[ReaderStats], None] | None = None,
) -> ReaderStats:
    """Read ``settings.port`` until ``stop`` is set or KeyboardInterrupt, then return counters.

    ``stats``, if given, is the object the reader counts in while it runs (for a live status).
    ``on_change``, if given, is called in the reader's thread whenever ``store_error``,
    ``disk_full`` or ``wrong_key`` change (for a status file written on changes).

    Each reading is committed to ``store`` before ``on_reading`` sees it, so everything that
    was reported survives a crash. Port failures never end the loop; they are retried after
    ``retry_initial_s``, doubling to ``retry_max_s``, back to ``retry_initial_s`` once a
    connection has delivered data. Store failures do not end it either (see the module
    docstring). Exceptions raised by ``on_reading`` and ``on_change`` propagate.

    Raises:
        ValueError: a key is not 16 bytes (checked before the port is opened).
    """
    _make_decoder(settings)  # fail fast on bad keys, not at the first connection
    reader = _Reader(settings, store, on_reading, stop, open_port, clock)
    if stats is not None:
        reader.stats = stats
    if on_change is not None:
        reader.on_change = on_change
    return reader.run()


class _Reader:
    def __init__(
        self,
        settings: ReaderSettings,
        store: ReadingStore,
        on_reading: Callable[[Reading], None],
        stop: threading.Event,
        open_port: PortOpener,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_reading = on_reading
        self.stop = stop
        self.open_port = open_port
        self.clock = clock
        self.stats = ReaderStats()
        self.on_change: Callable[[ReaderStats], None] = lambda stats: None
        self.backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        self.warn = RepeatLimiter(logger)
        #: When a store failure was last logged at ERROR (time.monotonic()), and whether the
        #: current one was: its end is then said at INFO.
        self._store_error_logged_at: float | None = None
        self._store_error_said = False

    def run(self) -> ReaderStats:
        settings = self.settings
        try:
            while not self.stop.is_set():
                try:
                    port = self.open_port(
                        settings.port, settings.profile.line, settings.read_timeout_s
                    )
                except OSError as exc:  # serial.SerialException is an OSError
                    self.stats.open_failures += 1
                    delay = self.backoff.next_delay()
                    self.warn.log(
                        "open", "cannot open %s: %s; retrying in %.1f s", settings.port, exc, delay
                    )
                    self._sleep(delay)
                    continue
                self.stats.connects += 1
                logger.info(
                    "reading %s meter on %s (%s)",
                    settings.profile.name,
                    settings.port,
                    settings.profile.line,
                )
                delay = 0.0
                try:
                    self._pump(port)
                except _PortLostError as exc:
                    self.stats.disconnects += 1
                    delay = self.backoff.next_delay()
                    self.warn.log(
                        "lost",
                        "lost %s: %s; reopening in %.1f s",
                        settings.port,
                        exc.__cause__,
                        delay,
                    )
                finally:
                    _close_quietly(port)
                self._sleep(delay)
        except KeyboardInterrupt:
            logger.info("interrupted: stopping the reader of %s", settings.port)
        logger.info("stopped reading %s: %s", settings.port, self.stats)
        return self.stats

    def _sleep(self, delay_s: float) -> None:
        # Polls instead of stop.wait(): a signal handler that calls stop.set() while this
        # thread is inside Event.wait() could deadlock on the event's internal lock.
        deadline = time.monotonic() + delay_s
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.05))

    def _pump(self, port: SerialPort) -> None:
        """Move bytes until stop is set. Raises _PortLostError when the port fails."""
        settings = self.settings
        # A fresh decoder per connection: a frame cut off by the disconnect is junk.
        decoder = _make_decoder(settings)
        delivered = False
        while not self.stop.is_set():
            try:
                data = port.read(1)  # waits up to read_timeout_s for the first byte
                if data:
                    waiting = port.in_waiting
                    if waiting:
                        data += port.read(waiting)
            except OSError as exc:
                raise _PortLostError from exc
            if not data:
                continue
            if not delivered:
                # Only data proves the link: a port that opens and then fails at once must
                # keep backing off rather than be reopened every retry_initial_s.
                delivered = True
                self.backoff.reset()
                self.warn.forget("open", "lost")
            self.stats.bytes_read += len(data)
            decoder.feed(data)
            reply = decoder.data_to_send()
            readings = list(decoder)
            if self.stats.store_error is None:
                # Acknowledge before storing: the meter wants E5 within 0.5 s, and a commit
                # with synchronous=FULL on an SD card can take longer than that.
                self._send(port, reply)
                received_at = self.clock()
                self._count_errors(decoder)
                for reading in readings:
                    self._store(reading, received_at)
            else:
                # The last write failed: acknowledge only what is stored. A chunk without a
                # reading (the meter's SND_NKE) is answered, so that the meter comes back to
                # push mode and each of its frames tries the store again.
                received_at = self.clock()
                self._count_errors(decoder)
                unstored = sum(not self._store(reading, received_at) for reading in readings)
                if unstored:
                    self.stats.acks_withheld += unstored
                else:
                    self._send(port, reply)

    def _send(self, port: SerialPort, reply: bytes) -> None:
        if not reply:
            return
        try:
            port.write(reply)
        except OSError as exc:
            raise _PortLostError from exc
        self.stats.bytes_written += len(reply)

    def _count_errors(self, decoder: StreamDecoder) -> None:
        for error in decoder.pop_errors():
            kind = error.kind
            self.stats.frame_errors[kind] = self.stats.frame_errors.get(kind, 0) + 1
            if kind != "wrong-key":
                self.warn.log(
                    f"frame:{kind}", "bad frame on %s (%s): %s", self.settings.port, kind, error
                )
            elif not self.stats.wrong_key:
                self.stats.wrong_key = True
                self.warn.log(
                    "frame:wrong-key",
                    "wrong key: the frames on %s do not decrypt with the configured meter key "
                    "(%s); check the key the grid operator gave for this meter",
                    self.settings.port,
                    error,
                )
                self.on_change(self.stats)

    def _store(self, reading: Reading, received_at: datetime) -> bool:
        """Commit ``reading``; True if it is stored now (new, or stored before)."""
        if self.stats.wrong_key:
            self.stats.wrong_key = False
            self.warn.forget("frame:wrong-key")
            logger.info("the frames on %s decrypt again", self.settings.port)
            self.on_change(self.stats)
        try:
            new = self.store.add(reading, received_at)
        except sqlite3.Error as exc:
            self.stats.store_errors += 1
            self._store_failed(exc)
            return False
        except ValueError as exc:
            # The reading's fault (a clock without a zone), not the store's: it can never be
            # stored, and the store is not suspect.
            self.stats.store_errors += 1
            self.warn.log("reading", "cannot store a reading from %s: %s", self.settings.port, exc)
            return False
        if self.stats.store_error is not None:
            self._store_recovered()
        if not new:
            self.stats.duplicates += 1
            logger.debug(
                "duplicate reading of meter %r at %s", reading.meter_id, reading.meter_timestamp
            )
            return True
        self.stats.readings_stored += 1
        self.on_reading(reading)
        return True

    def _store_failed(self, exc: sqlite3.Error) -> None:
        disk_full = is_disk_full(exc)
        problem = f"disk full: {exc}" if disk_full else f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        logged_at = self._store_error_logged_at
        level = logging.DEBUG
        if self.stats.store_error is None:
            # A new failure: said at ERROR unless one was said a short while ago, so that a
            # store that keeps failing and recovering does not flood the log.
            self._store_error_said = logged_at is None or now - logged_at >= STORE_ERROR_REPEAT_S
            if self._store_error_said:
                self._store_error_logged_at = now
                level = logging.ERROR
        logger.log(
            level,
            "%s: cannot store readings from %s in %s; their frames are not acknowledged until "
            "the database takes writes again%s",
            problem,
            self.settings.port,
            self.store.path,
            " (free space on its file system)" if disk_full else "",
        )
        if (problem, disk_full) != (self.stats.store_error, self.stats.disk_full):
            self.stats.store_error, self.stats.disk_full = problem, disk_full
            self.on_change(self.stats)

    def _store_recovered(self) -> None:
        logger.log(
            logging.INFO if self._store_error_said else logging.DEBUG,
            "storing readings again in %s (%d writes failed so far)",
            self.store.path,
            self.stats.store_errors,
        )
        self.stats.store_error, self.stats.disk_full = None, False
        self.on_change(self.stats)


def _make_decoder(settings: ReaderSettings) -> StreamDecoder:
    return StreamDecoder(
        settings.profile,
        key=settings.key,
        auth_key=settings.auth_key,
        require_tag=settings.require_tag,
    )


def _close_quietly(port: SerialPort) -> None:
    try:
        port.close()
    except OSError as exc:  # the device may already be gone
        logger.debug("closing the port failed: %s", exc)


@contextmanager
def stop_on_signals(
    stop: threading.Event,
    signals: Collection[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[None]:
    """Set ``stop`` on the given signals while the block runs (main thread only)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
