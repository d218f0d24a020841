"""COSEM date-time (Blue Book, 12 octets) and value scaling."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from ecommunity.meter._errors import PayloadError

VIENNA: Final = ZoneInfo("Europe/Vienna")
DEVIATION_UNSPECIFIED: Final = -0x8000
STATUS_DST: Final = 0x80
_DATETIME: Final = struct.Struct(">HBBBBBBBhB")


def looks_like_datetime(raw: bytes) -> bool:
    """Whether 12 octets are plausibly a COSEM date-time (used for unlabelled elements)."""
    if len(raw) != 12:
        return False
    year, month, day, _dow, hour, minute, second, _hs, _dev, _st = _DATETIME.unpack(raw)
    return bool(
        (1990 <= year <= 2200 or year == 0xFFFF)
        and (1 <= month <= 12 or month >= 0xFD)
        and (1 <= day <= 31 or day >= 0xFD)
        and hour <= 23
        and minute <= 59
        and second <= 59
    )


def decode_datetime(raw: bytes) -> datetime:
    """Decode a COSEM date-time into an aware datetime.

    The deviation field is "local time minus UTC" with inverted sign as Austrian meters send
    it (``FF 88`` = -120 = UTC+2). Without a deviation, the time is taken as Europe/Vienna,
    with the DST status bit choosing between the two hours of the autumn change.

    Raises:
        PayloadError: not 12 bytes, or fields that are not a date.
    """
    if len(raw) != 12:
        raise PayloadError(f"COSEM date-time has 12 bytes, got {len(raw)}")
    year, month, day, _dow, hour, minute, second, hundredths, deviation, status = _DATETIME.unpack(
        raw
    )
    micro = hundredths * 10_000 if hundredths < 100 else 0
    try:
        local = datetime(year, month, day, hour, minute, second, micro)
    except ValueError as exc:
        raise PayloadError(f"COSEM date-time {raw.hex()} is not a date: {exc}") from exc
    if deviation == DEVIATION_UNSPECIFIED:
        return local.replace(tzinfo=VIENNA, fold=0 if status & STATUS_DST else 1)
    if not -900 <= deviation <= 900:
        raise PayloadError(f"COSEM date-time deviation {deviation} min out of range")
    return local.replace(tzinfo=timezone(timedelta(minutes=-deviation)))


def encode_datetime(when: datetime, *, with_deviation: bool = True) -> bytes:
    """Encode an aware datetime as Europe/Vienna local time (the meters' convention)."""
    local = when.astimezone(VIENNA) if when.tzinfo else when.replace(tzinfo=VIENNA)
    offset = local.utcoffset() or timedelta(0)
    deviation = -int(offset.total_seconds() // 60) if with_deviation else DEVIATION_UNSPECIFIED
    status = STATUS_DST if local.dst() else 0
    return _DATETIME.pack(
        local.year,
        local.month,
        local.day,
        local.isoweekday(),
        local.hour,
        local.minute,
        local.second,
        local.microsecond // 10_000,
        deviation,
        status,
    )


def scale(raw: int, scaler: int) -> int | Decimal:
    """``raw * 10**scaler``: exact, an int where the result is whole."""
    if scaler == 0:
        return raw
    if scaler > 0:
        return raw * 10**scaler  # type: ignore[no-any-return]
    return Decimal(raw).scaleb(scaler)
