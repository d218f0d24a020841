"""A meter for ``gateway.py``: real encrypted AMIS frames written into the master side of a pty.

The bench cannot import the test suite's fake meter (``tests/`` is not on the path of a script
run as ``python bench/gateway.py``), and it needs another one anyway: the tests' meter waits for
each acknowledgement as the TD-3511 does, which measures the round trip; this one streams frames
back to back (or one per ``interval_s``) and only collects the reader's acknowledgements, so
that the reader's own throughput is what limits the rate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ecommunity.meter import ACK, Profile, Reading, encode_amis, get_profile

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AMIS = get_profile("amis")
# Linux ptys have no parity (pyserial issue #196): the pty line is 9600 8N1, the bytes the same.
PTY_AMIS: Profile = dataclasses.replace(AMIS, line=dataclasses.replace(AMIS.line, parity="N"))
#: Bytes written per call at most: about what a Linux pty buffers.
CHUNK = 4096


def make_reading(i: int, start: datetime) -> Reading:
    """The ``i``-th push: meter clock ``start + i`` seconds, counters rising with ``i``."""
    return Reading(
        profile="amis",
        meter_id=None,
        meter_timestamp=start + timedelta(seconds=i),
        energy_import_wh=12_000_000 + 3 * i,
        energy_export_wh=4_000 + i,
        power_import_w=250 + i % 400,
        power_export_w=i % 7,
    )


def make_frame(i: int, start: datetime) -> bytes:
    return encode_amis(make_reading(i, start), KEY, access_number=i & 0xFF, fcb=bool(i & 1))


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
    # Raw at once, so nothing is echoed before the reader opens the port; the slave stays open
    # here so that the master does not read EIO while the reader has it closed.
    tty.setraw(slave)
    os.set_blocking(master, False)
    return Pty(master, slave, os.ttyname(slave))


class PtyMeter:
    """Writes ``count`` frames (``frame(i)``) into ``master`` in a thread; counts the E5s back.

    ``interval_s`` 0 writes as fast as the reader drains the pty; otherwise frame ``i`` is
    written at ``i * interval_s`` after :meth:`start`. ``count`` None writes until stopped.
    """

    def __init__(
        self,
        master: int,
        frame: Callable[[int], bytes],
        *,
        count: int | None,
        interval_s: float = 0.0,
    ) -> None:
        self.fd = master
        self.frame = frame
        self.count = count
        self.interval_s = interval_s
        self.frames_written = 0
        self.acks = 0
        self.stray = 0  # bytes back from the reader that were not E5
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-meter", daemon=True)

    def start(self) -> PtyMeter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait_acks(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.acks < count and time.monotonic() < deadline and self.error is None:
            time.sleep(0.005)
        return self.acks >= count

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.error = exc

    def _loop(self) -> None:
        pending = b""
        started = time.monotonic()
        while not self._stop.is_set():
            wait_s = 0.02
            # Whole frames up to a pty buffer's worth per write: few wake-ups, so this thread
            # takes little of the GIL from the reader it measures.
            while self._more() and len(pending) < CHUNK:
                due = started + self.frames_written * self.interval_s
                wait_s = min(wait_s, due - time.monotonic())
                if wait_s > 0:
                    break
                pending += self.frame(self.frames_written)
                self.frames_written += 1
                wait_s = 0.02
            if not pending and not self._more() and self.acks >= (self.count or 0):
                return
            writers = [self.fd] if pending else []
            readable, writable, _ = select.select([self.fd], writers, [], max(wait_s, 0.0))
            if readable:
                self._read_acks()
            if writable and pending:
                try:
                    written = os.write(self.fd, pending)
                except BlockingIOError:
                    continue
                pending = pending[written:]

    def _more(self) -> bool:
        return self.count is None or self.frames_written < self.count

    def _read_acks(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):  # EIO: the reader has the port closed
                return
            raise
        acks = data.count(ACK)
        self.acks += acks
        self.stray += len(data) - acks
