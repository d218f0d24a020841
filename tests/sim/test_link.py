"""The meter link on a real pty pair: the AMIS handshake, acknowledgements and lost bytes."""

from __future__ import annotations

import fcntl
import os
import select
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ecommunity.meter import SND_NKE_AMIS, Reading, StreamDecoder, get_profile
from ecommunity.sim import (
    DEMO_KEY,
    FdLine,
    MeterLink,
    PtyPair,
    Push,
    SimulatedHousehold,
    SimulatedMeter,
    open_pty,
)

START = datetime(2025, 6, 1, 10, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    pair = open_pty()
    yield pair
    pair.close()


class Source:
    """Pushes of a simulated meter with a meter clock one second further each time."""

    def __init__(self, profile: str = "amis") -> None:
        self.meter = SimulatedMeter(
            SimulatedHousehold(seed=5, pv_kwp=4.0), get_profile(profile), key=DEMO_KEY
        )
        self.pushes: list[Push] = []

    def __call__(self) -> Push:
        push = self.meter.push(START + timedelta(seconds=len(self.pushes)))
        self.pushes.append(push)
        return push


@dataclass
class Reader:
    """A reader on the slave end: decodes, and answers E5 as the decoder asks (or not)."""

    fd: int
    profile: str = "amis"
    answer: Callable[[bytes], bool] = lambda data: True

    def __post_init__(self) -> None:
        self.decoder = StreamDecoder(get_profile(self.profile), key=DEMO_KEY)
        self.readings: list[Reading] = []
        self.searches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not select.select([self.fd], [], [], 0.02)[0]:
                continue
            data = os.read(self.fd, 4096)
            self.searches += data.count(SND_NKE_AMIS)
            self.decoder.feed(data)
            self.readings += list(self.decoder)
            reply = self.decoder.data_to_send()
            if reply and self.answer(data):
                os.write(self.fd, reply)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def run_link(link: MeterLink[Push]) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=link.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_amis_searches_then_pushes_one_frame_per_acknowledgement(pty_pair: PtyPair) -> None:
    source = Source()
    acked: list[Push] = []
    link = MeterLink(
        FdLine(pty_pair.master, peer_fd=pty_pair.slave),
        source,
        acknowledge=True,
        interval_s=0.01,
        search_interval_s=0.05,
        on_acked=acked.append,
    )
    reader = Reader(pty_pair.slave)
    stop, thread = run_link(link)
    try:
        wait_for(lambda: len(acked) >= 20, what="20 acknowledged pushes")
    finally:
        stop.set()
        thread.join(5)
        reader.stop()
    assert link.stats.searches == 1
    assert reader.searches == 1
    assert acked == source.pushes[: len(acked)]
    assert link.stats.pushes_acked == len(acked) >= link.stats.pushes_sent - 1
    assert reader.readings[: len(acked)] == [p.reading for p in acked]
    assert reader.decoder.pop_errors() == []


def test_without_a_reader_the_meter_keeps_searching(pty_pair: PtyPair) -> None:
    source = Source()
    link = MeterLink(
        FdLine(pty_pair.master, peer_fd=pty_pair.slave),
        source,
        acknowledge=True,
        interval_s=0.01,
        ack_timeout_s=0.02,
        search_interval_s=0.01,
    )
    stop, thread = run_link(link)
    try:
        wait_for(lambda: link.stats.searches >= 30, what="30 searches")
    finally:
        stop.set()
        thread.join(5)
    assert source.pushes == []
    # What nobody read was dropped, as on a real line: at most the last SND_NKE is queued.
    assert _unread(pty_pair.slave) <= len(SND_NKE_AMIS)


def test_missing_acknowledgements_send_the_meter_back_to_search(pty_pair: PtyPair) -> None:
    source = Source()
    link = MeterLink(
        FdLine(pty_pair.master, peer_fd=pty_pair.slave),
        source,
        acknowledge=True,
        interval_s=0.01,
        ack_timeout_s=0.05,
        search_interval_s=0.02,
        max_missed_acks=3,
    )
    # A reader that answers the search only: every frame goes unacknowledged.
    reader = Reader(pty_pair.slave, answer=lambda data: SND_NKE_AMIS in data)
    stop, thread = run_link(link)
    try:
        wait_for(lambda: link.stats.searches >= 3, what="three searches")
    finally:
        stop.set()
        thread.join(5)
        reader.stop()
    assert link.stats.pushes_acked == 0
    assert link.stats.missed_acks >= 6  # 3 frames after each of the first two searches
    assert reader.readings == [p.reading for p in source.pushes][: len(reader.readings)]


def test_dlms_pushes_whether_anyone_listens_or_not(pty_pair: PtyPair) -> None:
    source = Source("netznoe")
    link = MeterLink(
        FdLine(pty_pair.master, peer_fd=pty_pair.slave),
        source,
        acknowledge=False,
        interval_s=0.02,
    )
    stop, thread = run_link(link)
    try:
        wait_for(lambda: len(source.pushes) >= 5, what="5 pushes to nobody")
        reader = Reader(pty_pair.slave, profile="netznoe")
        wait_for(lambda: len(reader.readings) >= 5, what="5 readings")
    finally:
        stop.set()
        thread.join(5)
    reader.stop()
    assert link.stats.searches == 0
    pushed = {p.reading.meter_timestamp: p.reading for p in source.pushes}
    for reading in reader.readings:
        assert reading.meter_timestamp in pushed
        assert reading.energy_import_wh == pushed[reading.meter_timestamp].energy_import_wh


def test_the_link_refuses_a_zero_interval(pty_pair: PtyPair) -> None:
    with pytest.raises(ValueError, match="positive"):
        MeterLink(FdLine(pty_pair.master), Source(), acknowledge=True, interval_s=0)


def _unread(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")
