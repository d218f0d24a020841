"""M-Bus link layer (EN 13757-2): long frames, the SND_NKE short frame and the E5 acknowledgement.

Sans-IO: functions take and return bytes. Framing (finding where a frame ends in a stream)
is :func:`measure_frame`; :func:`decode_frame` checks and splits one complete frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ecommunity.meter._errors import ChecksumError, FramingError

LONG_START: Final = 0x68
SHORT_START: Final = 0x10
STOP: Final = 0x16
#: The single-character acknowledgement a slave sends after every frame addressed to it.
ACK: Final = b"\xe5"
#: SND_NKE with the AMIS reader's primary address 240: the meter's search frame.
SND_NKE_AMIS: Final = bytes((0x10, 0x40, 0xF0, 0x30, 0x16))
#: Control field values of SND_UD, without and with the frame count bit (FCB).
SND_UD: Final = 0x53
SND_UD_FCB: Final = 0x73
SND_NKE: Final = 0x40
BROADCAST: Final = 0xFF
#: The longest body: L is one byte (255), or 256..258 written as its low byte (Sagemcom quirk).
MAX_BODY: Final = 258
MAX_FRAME: Final = MAX_BODY + 6

#: Control fields a long frame from a meter carries: SND_UD (master) or RSP_UD (slave).
_LONG_CONTROLS: Final = frozenset((0x53, 0x73, 0x08, 0x18, 0x28, 0x38))

NEED_MORE: Final = 0
NOT_A_FRAME: Final = -1


@dataclass(frozen=True, slots=True)
class MbusFrame:
    """A checked M-Bus frame: short (``ci`` and ``data`` empty) or long."""

    control: int
    address: int
    ci: int | None
    data: bytes

    @property
    def is_short(self) -> bool:
        return self.ci is None


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The M-Bus checksum: arithmetic sum of the bytes, modulo 256."""
    return sum(data) & 0xFF


def measure_frame(buf: bytes | bytearray, pos: int) -> int:
    """Length of the frame starting at ``buf[pos]``, ``NEED_MORE`` or ``NOT_A_FRAME``.

    Only the structure is checked here (start, repeated length, stop byte); the checksum is
    left to :func:`decode_frame`, so that a corrupt frame is reported rather than skipped.
    """
    available = len(buf) - pos
    first = buf[pos]
    if first == SHORT_START:
        if available < 5:
            return NEED_MORE
        return 5 if buf[pos + 4] == STOP else NOT_A_FRAME
    if first != LONG_START:
        return NOT_A_FRAME
    if available < 4:
        return NEED_MORE
    length = buf[pos + 1]
    if buf[pos + 2] != length or buf[pos + 3] != LONG_START:
        return NOT_A_FRAME
    if available >= 5 and buf[pos + 4] not in _LONG_CONTROLS:
        return NOT_A_FRAME
    if length < 3:
        # Sagemcom T210-D (Netz NÖ) sends "68 01 01 68" for a 257-byte body: only the low
        # byte of L fits. No real long frame has L < 3 (C, A and CI), so read it as L + 256.
        length += 256
    total = length + 6
    if available < total:
        return NEED_MORE
    return total if buf[pos + total - 1] == STOP else NOT_A_FRAME


def decode_frame(frame: bytes | bytearray | memoryview) -> MbusFrame:
    """Check one complete frame (as measured by :func:`measure_frame`) and split its fields.

    Raises:
        FramingError: not an M-Bus short or long frame.
        ChecksumError: the checksum byte does not match.
    """
    frame = bytes(frame)
    if len(frame) == 5 and frame[0] == SHORT_START and frame[4] == STOP:
        expected = checksum(frame[1:3])
        if frame[3] != expected:
            raise ChecksumError("M-Bus short frame checksum", expected, frame[3])
        return MbusFrame(control=frame[1], address=frame[2], ci=None, data=b"")
    if len(frame) < 9 or frame[0] != LONG_START or frame[3] != LONG_START or frame[-1] != STOP:
        raise FramingError(f"not an M-Bus frame ({len(frame)} bytes, starts {frame[:4].hex()})")
    body = frame[4:-2]
    if len(body) & 0xFF != frame[1]:
        raise FramingError(f"M-Bus length field 0x{frame[1]:02X} does not fit {len(body)} bytes")
    expected = checksum(body)
    if frame[-2] != expected:
        raise ChecksumError("M-Bus long frame checksum", expected, frame[-2])
    return MbusFrame(control=body[0], address=body[1], ci=body[2], data=body[3:])


def encode_long_frame(control: int, address: int, ci: int, data: bytes) -> bytes:
    """Wrap ``data`` in a long frame ``68 L L 68 C A CI data CS 16``.

    A body longer than 255 bytes is written with the low byte of its length, as the
    Sagemcom T210-D does; :func:`measure_frame` reads such frames back.
    """
    body = bytes((control, address, ci)) + data
    if len(body) > MAX_BODY:
        raise ValueError(f"an M-Bus long frame body cannot hold {len(body)} bytes")
    length = len(body) & 0xFF
    return bytes((LONG_START, length, length, LONG_START)) + body + bytes((checksum(body), STOP))


def encode_short_frame(control: int, address: int) -> bytes:
    """A short frame ``10 C A CS 16`` (e.g. SND_NKE)."""
    return bytes((SHORT_START, control, address, (control + address) & 0xFF, STOP))
