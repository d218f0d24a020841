"""HDLC framing (IEC 62056-46) as DLMS meters push it: frame format type 3, CRC-16/X.25."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Final

from ecommunity.meter._errors import ChecksumError, FramingError

FLAG: Final = 0x7E
FORMAT_TYPE_3: Final = 0xA0
SEGMENTED: Final = 0x08
#: LLC headers in front of the first information field (command, response).
LLC_HEADERS: Final = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")
MAX_LENGTH: Final = 0x7FF  # 11-bit frame length
UI_FINAL: Final = 0x13
UI: Final = 0x03

NEED_MORE: Final = 0
NOT_A_FRAME: Final = -1

# CRC-16/X.25 is the bit-reflected CRC-CCITT. binascii.crc_hqx computes the unreflected
# one in C, so reflect the input bytes and the result instead of looping in Python.
_REFLECT: Final = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 (poly 0x1021 reflected, init 0xFFFF, xorout 0xFFFF)."""
    crc = binascii.crc_hqx(bytes(data).translate(_REFLECT), 0xFFFF)
    return (_REFLECT[crc & 0xFF] << 8 | _REFLECT[crc >> 8]) ^ 0xFFFF


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """A checked HDLC frame. ``segmented`` is the format's S bit: more frames follow."""

    segmented: bool
    destination: bytes
    source: bytes
    control: int
    information: bytes


def measure_frame(buf: bytes | bytearray, pos: int) -> int:
    """Length of the frame at ``buf[pos]`` including both flags, ``NEED_MORE`` or ``NOT_A_FRAME``.

    Checks the format type and the header check sequence as soon as the header is there, so
    that junk is rejected without waiting for the claimed length.
    """
    available = len(buf) - pos
    if buf[pos] != FLAG:
        return NOT_A_FRAME
    if available < 3:
        return NEED_MORE
    fmt = buf[pos + 1]
    if fmt & 0xF0 != FORMAT_TYPE_3:
        return NOT_A_FRAME
    length = (fmt & 0x07) << 8 | buf[pos + 2]
    if length < 7:
        return NOT_A_FRAME
    header_end = _header_end(buf, pos + 3, min(len(buf), pos + 1 + length))
    if header_end is None:
        return NEED_MORE if available < length + 2 and available < 13 else NOT_A_FRAME
    if header_end + 2 < pos + 1 + length - 2:  # an information field follows: HCS present
        if len(buf) < header_end + 2:
            return NEED_MORE
        hcs = buf[header_end] | buf[header_end + 1] << 8
        if crc16_x25(buf[pos + 1 : header_end]) != hcs:
            return NOT_A_FRAME
    if available < length + 2:
        return NEED_MORE
    return length + 2 if buf[pos + 1 + length] == FLAG else NOT_A_FRAME


def _header_end(buf: bytes | bytearray, pos: int, limit: int) -> int | None:
    """Index after the control byte: two addresses of 1-4 bytes (last byte has bit 0 set)."""
    for _ in range(2):
        for size in range(1, 5):
            if pos + size > limit:
                return None
            if buf[pos + size - 1] & 1:
                pos += size
                break
        else:
            return None
    return pos + 1 if pos < limit else None


def decode_frame(frame: bytes | bytearray | memoryview) -> HdlcFrame:
    """Check one complete frame (flags included) and split its fields.

    Raises:
        FramingError: bad flags, format or addresses.
        ChecksumError: the HCS or FCS does not match.
    """
    frame = bytes(frame)
    if len(frame) < 9 or frame[0] != FLAG or frame[-1] != FLAG:
        raise FramingError(f"not an HDLC frame ({len(frame)} bytes)")
    fmt = frame[1]
    length = (fmt & 0x07) << 8 | frame[2]
    if fmt & 0xF0 != FORMAT_TYPE_3 or length != len(frame) - 2:
        raise FramingError(f"HDLC format 0x{fmt:02X}{frame[2]:02X} does not fit {len(frame)} bytes")
    fcs = frame[-3] | frame[-2] << 8
    expected = crc16_x25(frame[1:-3])
    if fcs != expected:
        raise ChecksumError("HDLC FCS", expected, fcs)
    header_end = _header_end(frame, 3, len(frame) - 3)
    if header_end is None:
        raise FramingError("HDLC address field is not terminated")
    destination_end = 3
    while not frame[destination_end] & 1:
        destination_end += 1
    destination = frame[3 : destination_end + 1]
    source = frame[destination_end + 1 : header_end - 1]
    control = frame[header_end - 1]
    if header_end + 2 < len(frame) - 3:
        hcs = frame[header_end] | frame[header_end + 1] << 8
        expected = crc16_x25(frame[1:header_end])
        if hcs != expected:
            raise ChecksumError("HDLC HCS", expected, hcs)
        information = frame[header_end + 2 : -3]
    else:
        information = b""
    return HdlcFrame(
        segmented=bool(fmt & SEGMENTED),
        destination=destination,
        source=source,
        control=control,
        information=information,
    )


def encode_frame(
    information: bytes,
    *,
    segmented: bool = False,
    destination: bytes = b"\xff",
    source: bytes = b"\x03",
    control: int = UI_FINAL,
) -> bytes:
    """Build one HDLC frame with flags, HCS and FCS around ``information``."""
    header_len = 2 + len(destination) + len(source) + 1
    length = header_len + 2 + len(information) + 2
    if length > MAX_LENGTH:
        raise ValueError(f"HDLC information field too long: {len(information)} bytes")
    fmt = FORMAT_TYPE_3 | (SEGMENTED if segmented else 0) | length >> 8
    header = bytes((fmt, length & 0xFF)) + destination + source + bytes((control,))
    hcs = crc16_x25(header)
    body = header + bytes((hcs & 0xFF, hcs >> 8)) + information
    fcs = crc16_x25(body)
    return bytes((FLAG,)) + body + bytes((fcs & 0xFF, fcs >> 8, FLAG))


def strip_llc(information: bytes) -> bytes:
    """Remove the LLC header ``E6 E7 00`` (or ``E6 E6 00``) where present."""
    if information[:3] in LLC_HEADERS:
        return information[3:]
    return information
