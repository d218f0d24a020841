"""The meter side of the customer interface: writes a meter's pushes to a serial line.

AMIS (``acknowledge``): like the Siemens TD-3511, SND_NKE in search mode until the reader
answers E5, then one frame at a time, each only after the previous one was acknowledged or
timed out, and back to search mode after ``max_missed_acks`` missing acknowledgements. DLMS
meters push their frames every interval whether anyone listens or not.

The line is a file descriptor (a pty master, or a tty opened raw). Bytes nobody reads are lost
on a real line; on a pty they queue in the kernel, so with the other end at hand the link drops
what the reader left unread instead of letting it pile up.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

from ecommunity.meter import ACK, SND_NKE_AMIS

logger = logging.getLogger(__name__)

#: Bytes a reader may leave unread before the link drops them. [bytes]
MAX_UNREAD: Final = 4096


class Pushed(Protocol):
    """What the link sends: the wire frames of one push, in order."""

    @property
    def frames(self) -> Sequence[bytes]: ...


P = TypeVar("P", bound=Pushed)


class FdLine:
    """A serial line on a file descriptor: non-blocking writes, reads with a timeout.

    ``peer_fd`` is the reader's end of a pty pair, when this process holds it: then
    :meth:`drop_unread` can throw away what the reader has not read.
    """

    def __init__(self, fd: int, *, peer_fd: int | None = None, write_timeout_s: float = 1.0):
        self.fd = fd
        self.peer_fd = peer_fd
        self.write_timeout_s = write_timeout_s
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> bool:
        """Write ``data``; False if the line took none of it within the write timeout."""
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout_s
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: no one has the other end open
                    raise
                return False
            view = view[written:]
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([], [self.fd], [], remaining)[1]:
                    logger.debug("line full: %d bytes dropped", len(view))
                    return False
        return True

    def read(self, timeout_s: float) -> bytes:
        """Bytes the reader sent, waiting up to ``timeout_s``; b"" if none came."""
        if not select.select([self.fd], [], [], max(timeout_s, 0.0))[0]:
            return b""
        try:
            return os.read(self.fd, 1024)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            time.sleep(max(timeout_s, 0.0))  # the other end is closed: nothing to read
            return b""

    def drop_unread(self, *, at_most: int = 0) -> int:
        """Drop what the reader left unread if it is more than ``at_most`` bytes; returns
        how many were dropped (0 without the reader's end at hand)."""
        if self.peer_fd is None:
            return 0
        import fcntl

        unread = int.from_bytes(
            fcntl.ioctl(self.peer_fd, termios.FIONREAD, b"\0\0\0\0"), "little", signed=True
        )
        if unread <= at_most:
            return 0
        termios.tcflush(self.peer_fd, termios.TCIFLUSH)
        return unread


@dataclass
class LinkStats:
    searches: int = 0  # SND_NKE frames written
    pushes_sent: int = 0
    pushes_acked: int = 0
    missed_acks: int = 0
    bytes_received: int = 0


class MeterLink(Generic[P]):
    """Runs a meter's link layer on a line until a stop event is set.

    ``next_push`` builds the next push when it is due. ``align_to_clock`` sends pushes on
    whole multiples of ``interval_s`` of the wall clock (a simulated meter at real time);
    otherwise ``interval_s`` after the previous push. ``on_sent``, ``on_acked`` and
    ``on_received`` report to the caller, from the thread that runs the link.
    """

    def __init__(
        self,
        line: FdLine,
        next_push: Callable[[], P],
        *,
        acknowledge: bool,
        interval_s: float,
        ack_timeout_s: float = 0.5,
        search_interval_s: float = 60.0,
        max_missed_acks: int = 10,
        align_to_clock: bool = False,
        on_sent: Callable[[P], None] | None = None,
        on_acked: Callable[[P], None] | None = None,
        on_received: Callable[[bytes], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"push interval must be positive, got {interval_s} s")
        self.line = line
        self.next_push = next_push
        self.acknowledge = acknowledge
        self.interval_s = interval_s
        self.ack_timeout_s = ack_timeout_s
        self.search_interval_s = search_interval_s
        self.max_missed_acks = max_missed_acks
        self.align_to_clock = align_to_clock
        self.on_sent = on_sent
        self.on_acked = on_acked
        self.on_received = on_received
        self.stats = LinkStats()
        self._last_push_at: float | None = None  # time.monotonic()

    def run(self, stop: threading.Event) -> LinkStats:
        searching = self.acknowledge
        missed = 0
        while not stop.is_set():
            if searching:
                self.line.drop_unread()  # nobody answered: nobody reads
                self._drain()
                self.line.write(SND_NKE_AMIS)
                self.stats.searches += 1
                if self._wait_for_ack(stop):
                    searching, missed = False, 0
                    self._last_push_at = None
                else:
                    stop.wait(self.search_interval_s)
                continue
            if stop.wait(self._delay()):
                break
            push = self.next_push()
            self._drain()
            self.line.drop_unread(at_most=MAX_UNREAD)
            self._last_push_at = time.monotonic()
            for frame in push.frames:
                self.line.write(frame)
            self.stats.pushes_sent += 1
            if self.on_sent is not None:
                self.on_sent(push)
            if not self.acknowledge:
                continue
            if self._wait_for_ack(stop):
                self.stats.pushes_acked += 1
                missed = 0
                if self.on_acked is not None:
                    self.on_acked(push)
            else:
                self.stats.missed_acks += 1
                missed += 1
                searching = missed >= self.max_missed_acks
        return self.stats

    def _delay(self) -> float:
        if self.align_to_clock:
            return self.interval_s - time.time() % self.interval_s
        if self._last_push_at is None:
            return 0.0
        return max(0.0, self._last_push_at + self.interval_s - time.monotonic())

    def _drain(self) -> None:
        # An acknowledgement that comes after its timeout belongs to no frame: drop it.
        while data := self.line.read(0):
            self._received(data)

    def _received(self, data: bytes) -> None:
        self.stats.bytes_received += len(data)
        if self.on_received is not None:
            self.on_received(data)

    def _wait_for_ack(self, stop: threading.Event) -> bool:
        deadline = time.monotonic() + self.ack_timeout_s
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            data = self.line.read(min(remaining, 0.05))
            if data:
                self._received(data)
                if ACK in data:
                    return True
        return False
