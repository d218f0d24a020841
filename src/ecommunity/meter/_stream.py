"""The streaming decoder: feed it bytes in any chunks, iterate complete readings.

Sans-IO in the style of h11: the caller moves bytes, the decoder keeps state. It finds frames
of every transport the profile allows (all of them without a profile), checks them, puts
multi-frame messages together, decrypts and decodes. Bad frames are counted and skipped;
``feed`` never raises for bad input.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from ecommunity.meter import _amis, _ciphering, _hdlc, _mbus
from ecommunity.meter._dlms import Keys, decode_apdu
from ecommunity.meter._errors import ChecksumError, FramingError, MeterError
from ecommunity.meter._notification import GENERAL_BLOCK_TRANSFER, decode_block
from ecommunity.meter._profiles import Profile, Transport
from ecommunity.meter._reading import Reading

logger = logging.getLogger(__name__)

#: Longest assembled message (APDU) and the most errors kept for the caller to collect.
MAX_MESSAGE: Final = 4096
MAX_ERRORS: Final = 256

_Measure = Callable[[bytearray, int], int]
_MEASURES: Final[dict[Transport, dict[int, _Measure]]] = {
    Transport.MBUS: {_mbus.LONG_START: _mbus.measure_frame, _mbus.SHORT_START: _mbus.measure_frame},
    Transport.HDLC: {_hdlc.FLAG: _hdlc.measure_frame},
    Transport.P1_GCM: {_ciphering.GENERAL_GLO_CIPHERING: _ciphering.measure_apdu},
}


@dataclass(slots=True)
class DecoderStats:
    """Counters since the decoder was made."""

    frames: int = 0
    readings: int = 0
    bytes_skipped: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class StreamDecoder:
    """Decode a byte stream from a meter into :class:`Reading` objects.

    >>> decoder = StreamDecoder(get_profile("amis"), key=key)   # doctest: +SKIP
    >>> decoder.feed(chunk)                                      # doctest: +SKIP
    >>> for reading in decoder: ...                              # doctest: +SKIP
    >>> port.write(decoder.data_to_send())   # E5 acknowledgements (AMIS)  # doctest: +SKIP
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        key: bytes | None = None,
        auth_key: bytes | None = None,
        require_tag: bool = False,
        slave_address: int = 0xF0,
    ) -> None:
        for name, value in (("key", key), ("auth_key", auth_key)):
            if value is not None and len(value) != 16:
                raise ValueError(f"{name} must be 16 bytes (AES-128), got {len(value)}")
        self.profile = profile
        self.keys = Keys(key, auth_key, require_tag)
        self.slave_address = slave_address
        self.stats = DecoderStats()
        transports = (profile.transport,) if profile is not None else tuple(Transport)
        self._measures: dict[int, _Measure] = {}
        for transport in transports:
            self._measures.update(_MEASURES[transport])
        self._starts = re.compile(
            b"[" + b"".join(re.escape(bytes((b,))) for b in self._measures) + b"]"
        )
        self._buffer = bytearray()
        self._readings: deque[Reading] = deque()
        self._errors: deque[MeterError] = deque(maxlen=MAX_ERRORS)
        self._outgoing = bytearray()
        self._mbus_parts: list[bytes] = []
        self._mbus_next = 0
        self._hdlc_parts: list[bytes] = []
        self._blocks: list[bytes] = []
        self._block_next = 1
        self._flag_at = -1  # where the last HDLC frame's closing flag sits in the buffer
        self._bare_after = 0  # no bare APDU before here: it lay inside a corrupt frame

    # -- the caller's side ------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add bytes from the meter and decode every complete frame in them."""
        self._buffer += data
        self._scan(final=False)

    def close(self) -> None:
        """The stream ended: give up waiting on frames that cannot complete any more."""
        self._scan(final=True)
        self._buffer.clear()

    def __iter__(self) -> Iterator[Reading]:
        return self

    def __next__(self) -> Reading:
        if not self._readings:
            raise StopIteration
        return self._readings.popleft()

    def data_to_send(self) -> bytes:
        """Bytes the reader must write back to the meter now (E5 acknowledgements)."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def pop_errors(self) -> list[MeterError]:
        """The errors of bad frames since the last call (each frame was counted and skipped)."""
        errors = list(self._errors)
        self._errors.clear()
        return errors

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame (bounded by the longest frame)."""
        return len(self._buffer)

    # -- framing ----------------------------------------------------------------------
    def _scan(self, *, final: bool) -> None:
        buf = self._buffer
        pos = 0
        while pos < len(buf):
            measure = self._measures.get(buf[pos])
            if measure is None:
                match = self._starts.search(buf, pos)
                nxt = match.start() if match else len(buf)
                self.stats.bytes_skipped += nxt - pos
                pos = nxt
                continue
            length = measure(buf, pos)
            if length > 0:
                pos = self._frame(bytes(buf[pos : pos + length]), pos, length)
            elif length == 0 and not final:
                break
            else:
                if pos != self._flag_at:  # a shared HDLC flag is not junk
                    self.stats.bytes_skipped += 1
                pos += 1
        del buf[:pos]
        self._flag_at = -1 if self._flag_at < pos else self._flag_at - pos
        self._bare_after = max(0, self._bare_after - pos)

    def _frame(self, frame: bytes, pos: int, length: int) -> int:
        """Handle one measured frame; return where scanning goes on."""
        first = frame[0]
        if first == _ciphering.GENERAL_GLO_CIPHERING:
            if pos < self._bare_after:
                # Inside a frame that failed its checksum: this "APDU" is that frame's
                # corrupted payload, and with SC 0x20 nothing else would catch the damage.
                self.stats.bytes_skipped += 1
                return pos + 1
            self.stats.frames += 1
            try:
                self._message(frame)
            except MeterError as exc:
                self._error(exc)
                # A bare APDU has no checksum of its own: it may have been junk, so rescan.
                return pos + 1
            return pos + length
        link: _hdlc.HdlcFrame | _mbus.MbusFrame
        try:
            link = _hdlc.decode_frame(frame) if first == _hdlc.FLAG else _mbus.decode_frame(frame)
        except ChecksumError as exc:
            # A corrupt frame, or junk that looked like one: resynchronise on the next byte.
            self._error(exc)
            self.stats.bytes_skipped += 1
            self._bare_after = pos + length
            return pos + 1
        except FramingError as exc:
            self._error(exc)
            return pos + 1
        # The frame is sound on the wire: whatever its content, it is consumed whole.
        try:
            if isinstance(link, _hdlc.HdlcFrame):
                self._hdlc_frame(link)
            else:
                self._mbus_frame(link)
        except MeterError as exc:
            self._error(exc)
        if first == _hdlc.FLAG:
            # The closing flag may open the next frame as well.
            self._flag_at = pos + length - 1
            return pos + length - 1
        return pos + length

    def _mbus_frame(self, frame: _mbus.MbusFrame) -> None:
        self.stats.frames += 1
        if frame.address == self.slave_address and (
            self.profile is None or self.profile.acknowledge
        ):
            self._outgoing += _mbus.ACK
        if frame.is_short:
            return
        ci = frame.ci
        assert ci is not None
        if ci == _amis.CI_AMIS:
            self._reading(_amis.decode_amis(frame, self.keys.key, self._name("amis")))
            return
        if ci & 0xE0:
            raise FramingError(f"M-Bus frame with unexpected CI 0x{ci:02X} (not AMIS, not DLMS)")
        if len(frame.data) < 2:
            raise FramingError("M-Bus DLMS segment without STSAP/DTSAP")
        number, last = ci & 0x0F, bool(ci & 0x10)
        if number == 0:
            if self._mbus_parts:
                self._drop("M-Bus", "a new message started before the last segment")
            self._mbus_parts = []
        elif number != self._mbus_next or not self._mbus_parts:
            self._mbus_parts = []
            raise FramingError(f"M-Bus segment {number} out of order (expected {self._mbus_next})")
        self._mbus_parts.append(frame.data[2:])
        self._mbus_next = number + 1
        # At most 16 consecutive segments of 253 bytes: bounded without a check of its own.
        if last:
            message, self._mbus_parts = b"".join(self._mbus_parts), []
            self._message(message)

    def _hdlc_frame(self, frame: _hdlc.HdlcFrame) -> None:
        self.stats.frames += 1
        if self._hdlc_parts and frame.information[:3] in _hdlc.LLC_HEADERS:
            # HDLC UI frames carry no sequence number: a push opens with the LLC header, so
            # one arriving mid-message means the last segment of the previous push was lost.
            self._hdlc_parts = []
            self._drop("HDLC", "a new push started before the last segment")
        self._hdlc_parts.append(frame.information)
        if frame.segmented:
            if sum(map(len, self._hdlc_parts)) > MAX_MESSAGE:
                self._hdlc_parts = []
                raise FramingError(f"HDLC message longer than {MAX_MESSAGE} bytes")
            return
        information, self._hdlc_parts = b"".join(self._hdlc_parts), []
        apdu = _hdlc.strip_llc(information)
        if apdu[:1] != bytes((GENERAL_BLOCK_TRANSFER,)):
            self._message(apdu)
            return
        block = decode_block(apdu)
        if block.number == 1:
            if self._blocks:
                self._drop("block transfer", "block 1 arrived before the last block")
            self._blocks = []
        elif block.number != self._block_next or not self._blocks:
            self._blocks = []
            raise FramingError(
                f"DLMS block {block.number} out of order (expected {self._block_next})"
            )
        self._blocks.append(block.data)
        self._block_next = block.number + 1
        if block.last:
            message, self._blocks = b"".join(self._blocks), []
            self._message(message)
        elif sum(map(len, self._blocks)) > MAX_MESSAGE:
            self._blocks = []
            raise FramingError(f"DLMS block transfer longer than {MAX_MESSAGE} bytes")

    # -- content ----------------------------------------------------------------------
    def _message(self, apdu: bytes) -> None:
        self._reading(decode_apdu(apdu, self.profile, self.keys))

    def _reading(self, reading: Reading) -> None:
        self.stats.readings += 1
        self._readings.append(reading)

    def _name(self, default: str) -> str:
        return self.profile.name if self.profile is not None else default

    def _drop(self, layer: str, why: str) -> None:
        self._error(FramingError(f"incomplete {layer} message dropped: {why}"))

    def _error(self, exc: MeterError) -> None:
        self.stats.errors[exc.kind] += 1
        self._errors.append(exc)
        logger.debug("bad frame skipped: %s", exc)
