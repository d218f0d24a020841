"""A fake AMIS meter (Siemens TD-3511) on the master side of a real pty pair, for the gateway
tests and the end-to-end tests.

On the link layer it behaves like the real meter: SND_NKE in search mode until it gets E5, then
one encrypted SND_UD frame at a time, each only after the previous one was acknowledged, and
back to search mode after too many missing acknowledgements.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ecommunity.meter import ACK, SND_NKE_AMIS, Reading, encode_amis, get_profile

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AMIS = get_profile("amis")
# A pty has no parity: Linux clears PARENB on ptys, and a later tcsetattr that sets it again
# fails with EINVAL (pyserial issue #196). The pty tests read AMIS frames at 9600 8N1.
PTY_AMIS = dataclasses.replace(AMIS, line=dataclasses.replace(AMIS.line, parity="N"))
START = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.01)


def make_reading(
    i: int, start: datetime = START, step: timedelta = timedelta(seconds=1)
) -> Reading:
    """The ``i``-th push: meter time ``start + i * step``, counters rising with ``i``."""
    return Reading(
        profile="amis",
        meter_id=None,
        meter_timestamp=start + i * step,
        energy_import_wh=12_000_000 + 3 * i,
        energy_export_wh=4_000 + i,
        power_import_w=250 + i,
        power_export_w=0,
    )


@dataclass(frozen=True)
class SentFrame:
    index: int
    reading: Reading
    sent_at: float  # time.monotonic()


class FakeAmisMeter:
    """A TD-3511 on the master side of a pty, in a thread.

    ``push_interval_s`` stands in for the real 1 s between frames and ``search_interval_s``
    for the real minute between SND_NKE frames, to keep the tests fast. ``start`` and ``step``
    set the meter clock of the pushes: a ``step`` longer than ``push_interval_s`` makes meter
    time pass faster than wall time. ``junk(index)``, if given, is written on the line before
    the push ``index`` (line noise, a misbehaving device on the bus).
    """

    def __init__(
        self,
        master_fd: int,
        *,
        first_index: int = 0,
        ack_timeout_s: float = 0.5,
        push_interval_s: float = 0.01,
        search_interval_s: float = 0.05,
        max_missed_acks: int = 10,
        corrupt: frozenset[int] = frozenset(),
        start: datetime = START,
        step: timedelta = timedelta(seconds=1),
        junk: Callable[[int], bytes] | None = None,
        key: bytes = KEY,
    ) -> None:
        self.fd = master_fd
        self.ack_timeout_s = ack_timeout_s
        self.push_interval_s = push_interval_s
        self.search_interval_s = search_interval_s
        self.max_missed_acks = max_missed_acks
        self.corrupt = corrupt
        self.start_at = start
        self.step = step
        self.junk = junk
        self.key = key
        self.junk_bytes = 0  # junk written
        self.next_index = first_index
        self.sent: list[SentFrame] = []  # every good long frame written
        self.acked: list[SentFrame] = []
        self.received = bytearray()  # everything the reader wrote
        self.searches = 0  # SND_NKE frames written
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-amis-meter", daemon=True)

    def start(self) -> FakeAmisMeter:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop pushing (idempotent; also for a meter never started); re-raise its error."""
        if self._thread.ident is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()
        if self._error is not None:
            raise self._error

    def acked_readings(self) -> list[Reading]:
        return [frame.reading for frame in self.acked]

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._error = exc

    def _loop(self) -> None:
        searching = True
        missed = 0
        while not self._stop.is_set():
            if searching:
                self._write(SND_NKE_AMIS)
                self.searches += 1
                if self._wait_for_ack():
                    searching, missed = False, 0
                else:
                    self._stop.wait(self.search_interval_s)
                continue
            index = self.next_index
            self.next_index += 1
            reading = make_reading(index, self.start_at, self.step)
            frame = encode_amis(reading, self.key, access_number=index & 0xFF, fcb=bool(index & 1))
            if index in self.corrupt:
                frame = frame[:50] + bytes((frame[50] ^ 0xFF,)) + frame[51:]
            if self.junk is not None:
                noise = self.junk(index)
                self._write(noise)
                self.junk_bytes += len(noise)
            sent = SentFrame(index, reading, time.monotonic())
            self._write(frame)
            if index not in self.corrupt:
                self.sent.append(sent)
            if self._wait_for_ack():
                self.acked.append(sent)
                missed = 0
            else:
                missed += 1
                searching = missed >= self.max_missed_acks
            self._stop.wait(self.push_interval_s)

    def _write(self, data: bytes) -> None:
        # An acknowledgement that comes after the timeout belongs to no frame: drop it.
        while select.select([self.fd], [], [], 0)[0]:
            self.received += os.read(self.fd, 1024)
        view = memoryview(data)
        while view:  # a write to a pty master may take only part of a large buffer
            view = view[os.write(self.fd, view) :]

    def _wait_for_ack(self) -> bool:
        deadline = time.monotonic() + self.ack_timeout_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if select.select([self.fd], [], [], min(remaining, 0.05))[0]:
                data = os.read(self.fd, 1024)
                self.received += data
                if ACK in data:
                    return True
        return False


@dataclass
class Pty:
    master: int
    slave: int
    path: str

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_pty() -> Pty:
    master, slave = os.openpty()
    # Raw at once: a cooked slave would echo the meter's bytes back before the reader
    # opens it (pyserial then sets its own raw mode). Keeping the slave open in the test
    # also keeps the master from reading EIO while no reader has the port open.
    tty.setraw(slave)
    return Pty(master, slave, os.ttyname(slave))
