"""A-XDR encoding of DLMS ``Data`` (IEC 61334-6), the subset that meters push.

Structures decode to :class:`Structure` (a tuple), arrays to ``list``, octet strings to
``bytes``, integers and enums to ``int``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, NamedTuple, TypeAlias

from ecommunity.meter._errors import PayloadError

NULL: Final = 0x00
ARRAY: Final = 0x01
STRUCTURE: Final = 0x02
BOOLEAN: Final = 0x03
BIT_STRING: Final = 0x04
INT32: Final = 0x05
UINT32: Final = 0x06
OCTET_STRING: Final = 0x09
VISIBLE_STRING: Final = 0x0A
UTF8_STRING: Final = 0x0C
BCD: Final = 0x0D
INT8: Final = 0x0F
INT16: Final = 0x10
UINT8: Final = 0x11
UINT16: Final = 0x12
INT64: Final = 0x14
UINT64: Final = 0x15
ENUM: Final = 0x16
FLOAT32: Final = 0x17
FLOAT64: Final = 0x18
DATE_TIME: Final = 0x19
DATE: Final = 0x1A
TIME: Final = 0x1B


class Structure(tuple["Data", ...]):
    """A DLMS structure: ordered elements of mixed types (distinct from an array)."""

    __slots__ = ()


Data: TypeAlias = "bool | int | float | bytes | str | Structure | list[Data] | None"


class ScalerUnit(NamedTuple):
    """A ``{int8 scaler, enum unit}`` structure, kept whole by :func:`decode_leaves`."""

    scaler: int
    unit: int


Leaf: TypeAlias = "bool | int | float | bytes | str | ScalerUnit | None"

# Fixed-size types: tag -> struct format.
_FIXED: Final[dict[int, struct.Struct]] = {
    INT32: struct.Struct(">i"),
    UINT32: struct.Struct(">I"),
    INT8: struct.Struct(">b"),
    INT16: struct.Struct(">h"),
    UINT8: struct.Struct(">B"),
    UINT16: struct.Struct(">H"),
    INT64: struct.Struct(">q"),
    UINT64: struct.Struct(">Q"),
    ENUM: struct.Struct(">B"),
    FLOAT32: struct.Struct(">f"),
    FLOAT64: struct.Struct(">d"),
    BCD: struct.Struct(">B"),
}
_OCTETS_FIXED: Final = {DATE_TIME: 12, DATE: 5, TIME: 4}
_MAX_DEPTH: Final = 16


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """A BER-style length: one byte below 0x80, else 0x81/0x82/0x83/0x84 and that many bytes."""
    try:
        first = buf[pos]
    except IndexError:
        raise PayloadError(f"length expected at offset {pos}, data ends") from None
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4 or pos + 1 + size > len(buf):
        raise PayloadError(f"bad length encoding 0x{first:02X} at offset {pos}")
    return int.from_bytes(buf[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    if length < 0x100:
        return bytes((0x81, length))
    if length < 0x10000:
        return bytes((0x82, length >> 8, length & 0xFF))
    raise ValueError(f"length {length} too large")


def decode_data(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[Data, int]:
    """Decode one ``Data`` element at ``buf[pos]``; returns it and the offset after it.

    Raises:
        PayloadError: unknown tag, truncated element or nesting deeper than 16.
    """
    try:
        tag = buf[pos]
    except IndexError:
        raise PayloadError(f"A-XDR element expected at offset {pos}, data ends") from None
    pos += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        end = pos + fixed.size
        if end > len(buf):
            raise PayloadError(f"A-XDR tag 0x{tag:02X} at offset {pos - 1} is truncated")
        return fixed.unpack_from(buf, pos)[0], end
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        length, pos = decode_length(buf, pos)
        end = pos + length
        if end > len(buf):
            raise PayloadError(f"A-XDR string at offset {pos} is truncated")
        raw = buf[pos:end]
        if tag == OCTET_STRING:
            return raw, end
        try:
            return raw.decode("ascii" if tag == VISIBLE_STRING else "utf-8"), end
        except UnicodeDecodeError as exc:
            raise PayloadError(f"A-XDR string at offset {pos} is not text: {exc}") from exc
    if tag in (STRUCTURE, ARRAY):
        if depth >= _MAX_DEPTH:
            raise PayloadError("A-XDR data nested too deeply")
        count, pos = decode_length(buf, pos)
        items: list[Data] = []
        for _ in range(count):
            item, pos = decode_data(buf, pos, depth + 1)
            items.append(item)
        return (Structure(items) if tag == STRUCTURE else items), pos
    if tag == NULL:
        return None, pos
    if tag == BOOLEAN:
        if pos >= len(buf):
            raise PayloadError("A-XDR boolean is truncated")
        return buf[pos] != 0, pos + 1
    if tag == BIT_STRING:
        bits, pos = decode_length(buf, pos)
        end = pos + (bits + 7) // 8
        if end > len(buf):
            raise PayloadError("A-XDR bit string is truncated")
        return buf[pos:end], end
    size = _OCTETS_FIXED.get(tag)
    if size is not None:
        end = pos + size
        if end > len(buf):
            raise PayloadError(f"A-XDR tag 0x{tag:02X} is truncated")
        return buf[pos:end], end
    raise PayloadError(f"unknown A-XDR tag 0x{tag:02X} at offset {pos - 1}")


def encode_uint32(value: int) -> bytes:
    return b"\x06" + value.to_bytes(4, "big")


def encode_int32(value: int) -> bytes:
    return b"\x05" + value.to_bytes(4, "big", signed=True)


def encode_int8(value: int) -> bytes:
    return b"\x0f" + value.to_bytes(1, "big", signed=True)


def encode_enum(value: int) -> bytes:
    return bytes((ENUM, value))


def encode_octet_string(value: bytes) -> bytes:
    return b"\x09" + encode_length(len(value)) + value


def encode_structure(elements: Sequence[bytes]) -> bytes:
    """A structure from already-encoded elements."""
    return b"\x02" + encode_length(len(elements)) + b"".join(elements)


def encode_integer(value: int) -> bytes:
    """The narrowest of uint32/int32/uint64/int64 that holds ``value``."""
    if 0 <= value < 1 << 32:
        return encode_uint32(value)
    if -(1 << 31) <= value < 0:
        return encode_int32(value)
    if 0 <= value < 1 << 64:
        return bytes((UINT64,)) + value.to_bytes(8, "big")
    return bytes((INT64,)) + value.to_bytes(8, "big", signed=True)


def decode_leaves(buf: bytes, pos: int = 0) -> tuple[list[Leaf], int]:
    """Decode one ``Data`` element as its leaves in order, structure and array nesting removed.

    ``{int8, enum}`` structures (COSEM scaler-unit) come out whole as :class:`ScalerUnit`.
    This is what labelling a push needs, without building a tree: the hot path of decoding.

    Raises:
        PayloadError: unknown tag or truncated data.
    """
    leaves: list[Leaf] = []
    append = leaves.append
    fixed_types = _FIXED
    size = len(buf)
    remaining = 1
    try:
        while remaining:
            remaining -= 1
            tag = buf[pos]
            fixed = fixed_types.get(tag)
            if fixed is not None:
                append(fixed.unpack_from(buf, pos + 1)[0])
                pos += 1 + fixed.size
                continue
            if tag == OCTET_STRING:
                length = buf[pos + 1]
                if length < 0x80:
                    pos += 2
                else:
                    length, pos = decode_length(buf, pos + 1)
                end = pos + length
                if end > size:
                    raise PayloadError(f"A-XDR octet string at offset {pos} is truncated")
                append(buf[pos:end])
                pos = end
                continue
            if tag in (STRUCTURE, ARRAY):
                count = buf[pos + 1]
                if count >= 0x80:
                    count, pos = decode_length(buf, pos + 1)
                    remaining += count
                    continue
                # Look ahead only where a scaler-unit can be: an empty array or a one-element
                # structure may end the data, and reading past it is not a truncation.
                if (
                    count == 2
                    and tag == STRUCTURE
                    and buf[pos + 2] == INT8
                    and buf[pos + 4] == ENUM
                ):
                    scaler = buf[pos + 3]
                    append(ScalerUnit(scaler - 256 if scaler > 127 else scaler, buf[pos + 5]))
                    pos += 6
                    continue
                remaining += count
                pos += 2
                continue
            value, pos = decode_data(buf, pos)
            append(value)  # type: ignore[arg-type]  # not a compound: decode_data gives a leaf
    except (IndexError, struct.error):
        raise PayloadError(f"A-XDR data truncated at offset {pos}") from None
    return leaves, pos
