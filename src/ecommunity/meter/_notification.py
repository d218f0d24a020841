"""DLMS DATA-NOTIFICATION (APDU tag 0x0F) and general block transfer (0xE0)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ecommunity.meter import _axdr
from ecommunity.meter._cosem import decode_datetime, encode_datetime
from ecommunity.meter._errors import FramingError, PayloadError

DATA_NOTIFICATION: Final = 0x0F
GENERAL_BLOCK_TRANSFER: Final = 0xE0
GBT_LAST_BLOCK: Final = 0x80


@dataclass(frozen=True, slots=True)
class DataNotification:
    invoke_id: int
    #: The push's own time stamp, when the meter sends one.
    sent_at: datetime | None
    #: The body's leaves in order (see :func:`_axdr.decode_leaves`).
    leaves: list[_axdr.Leaf]
    #: Whether the body is a structure or array (a push always is).
    compound: bool


def decode_notification(apdu: bytes) -> DataNotification:
    """Decode a DATA-NOTIFICATION APDU.

    Raises:
        PayloadError: not tag 0x0F, truncated, or trailing bytes after the body.
    """
    if len(apdu) < 7 or apdu[0] != DATA_NOTIFICATION:
        raise PayloadError(f"not a DATA-NOTIFICATION APDU (starts {apdu[:1].hex()})")
    invoke_id = int.from_bytes(apdu[1:5], "big")
    pos = 5
    size = apdu[pos]
    sent_at = None
    if size == 12:
        sent_at = decode_datetime(apdu[pos + 1 : pos + 13])
        pos += 13
    elif size == 0:
        pos += 1
    else:
        raise PayloadError(f"DATA-NOTIFICATION date-time of {size} bytes (0 or 12 expected)")
    if pos >= len(apdu):
        raise PayloadError("DATA-NOTIFICATION without a body")
    compound = apdu[pos] in (_axdr.STRUCTURE, _axdr.ARRAY)
    leaves, end = _axdr.decode_leaves(apdu, pos)
    if end != len(apdu):
        raise PayloadError(f"{len(apdu) - end} bytes after the DATA-NOTIFICATION body")
    return DataNotification(invoke_id, sent_at, leaves, compound)


def encode_notification(body: bytes, *, invoke_id: int, sent_at: datetime | None) -> bytes:
    """A DATA-NOTIFICATION around an already encoded body."""
    stamp = b"\x0c" + encode_datetime(sent_at) if sent_at is not None else b"\x00"
    return bytes((DATA_NOTIFICATION,)) + invoke_id.to_bytes(4, "big") + stamp + body


@dataclass(frozen=True, slots=True)
class Block:
    """One general-block-transfer block."""

    last: bool
    number: int
    data: bytes


def decode_block(apdu: bytes) -> Block:
    """``E0 | control (bit 7: last) | block number (2) | acked number (2) | length | data``.

    Raises:
        FramingError: truncated, or the length does not fit.
    """
    if len(apdu) < 7 or apdu[0] != GENERAL_BLOCK_TRANSFER:
        raise FramingError("not a general-block-transfer APDU")
    control = apdu[1]
    number = int.from_bytes(apdu[2:4], "big")
    length, pos = _axdr.decode_length(apdu, 6)
    if pos + length != len(apdu):
        raise FramingError(f"GBT block {number} says {length} bytes, has {len(apdu) - pos}")
    return Block(bool(control & GBT_LAST_BLOCK), number, apdu[pos:])


def encode_blocks(apdu: bytes, block_size: int) -> list[bytes]:
    """Split an APDU into general-block-transfer blocks of at most ``block_size`` bytes."""
    chunks = [apdu[i : i + block_size] for i in range(0, len(apdu), block_size)] or [b""]
    blocks = []
    for number, chunk in enumerate(chunks, start=1):
        control = 0x40 | (GBT_LAST_BLOCK if number == len(chunks) else 0)  # 0x40: streaming
        blocks.append(
            bytes((GENERAL_BLOCK_TRANSFER, control))
            + number.to_bytes(2, "big")
            + b"\x00\x00"
            + _axdr.encode_length(len(chunk))
            + chunk
        )
    return blocks
