"""DSMR 5 text telegrams (P1), as Energienetze Steiermark's T210-D-R sends them inside GCM."""

from __future__ import annotations

import binascii
import re
from datetime import datetime
from decimal import Decimal
from typing import Final

from ecommunity.meter import _obis as obis
from ecommunity.meter._cosem import VIENNA
from ecommunity.meter._errors import ChecksumError, PayloadError
from ecommunity.meter._reading import ObisValue

_LINE: Final = re.compile(rb"^(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)((?:\([^)]*\))+)\r?$", re.M)
#: A DSMR value: fixed-point digits. Decimal() would also take "Infinity", "NaN" and
#: exponents such as "1E+999999999", whose conversion to int does not finish.
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_IDENTIFIER: Final = re.compile(r"^\d+\.\d+\.96\.(1|13)\.")
_UNIT_FACTORS: Final = {
    "kWh": ("Wh", 1000),
    "kW": ("W", 1000),
    "kvarh": ("varh", 1000),
    "kvar": ("var", 1000),
}


def _arc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_ARC_TABLE: Final = _arc_table()


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0), the DSMR telegram checksum."""
    crc = 0
    table = _ARC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def check_telegram(text: bytes) -> bytes:
    """Return the telegram from ``/`` to ``!`` after checking its CRC.

    Raises:
        PayloadError: no ``/ ... !XXXX`` telegram.
        ChecksumError: the CRC does not match.
    """
    start = text.find(b"/")
    end = text.find(b"!", start)
    if start != 0 or end < 0 or len(text) < end + 5:
        raise PayloadError("not a DSMR telegram (expected '/' ... '!CRC')")
    try:
        stated = int(text[end + 1 : end + 5], 16)
    except ValueError:
        raise PayloadError(f"DSMR CRC {text[end + 1 : end + 5]!r} is not hex") from None
    if text[end + 5 :] not in (b"", b"\r\n"):
        # A telegram ends with its CRC line: bytes after it mean the payload is not one
        # telegram (the CRC alone would pass a telegram with junk appended).
        raise PayloadError(f"{len(text) - end - 5} unexpected bytes after the DSMR CRC")
    computed = crc16_arc(text[: end + 1])
    if computed != stated:
        raise ChecksumError("DSMR CRC", computed, stated)
    return text[: end + 1]


def decode_telegram(text: bytes) -> tuple[dict[str, ObisValue], str]:
    """Parse a checked telegram into OBIS values and the identification line.

    Energies and powers in k-units are converted to Wh/W exactly.
    """
    telegram = check_telegram(text)
    header = telegram.split(b"\r\n", 1)[0][1:].decode("ascii", "replace")
    values: dict[str, ObisValue] = {}
    for match in _LINE.finditer(telegram):
        code = ".".join(g.decode() for g in match.groups()[:5]) + ".255"
        fields = match.group(6)[1:-1].decode("ascii", "replace").split(")(")
        raw = fields[-1]
        if code == obis.CLOCK or code.startswith("0.0.1.0.0"):
            values[obis.CLOCK] = ObisValue(decode_timestamp(raw), "")
            continue
        number, _, unit = raw.partition("*")
        if _IDENTIFIER.match(code) or not _NUMBER.fullmatch(number):
            # Equipment identifiers (96.1.x) and text messages (96.13.x) are hex-encoded
            # text, even when every hex digit happens to be a decimal digit.
            values[code] = ObisValue(_text(raw), "")
            continue
        value = Decimal(number)
        target_unit, factor = _UNIT_FACTORS.get(unit, (unit, 1))
        value *= factor
        values[code] = ObisValue(
            int(value) if value == value.to_integral_value() else value, target_unit
        )
    return values, header


def decode_timestamp(raw: str) -> datetime:
    """``YYMMDDhhmmssX`` with X = S (summer) or W (winter), local time in Austria."""
    try:
        # YY is 20YY: strptime's %y would put 69..99 in the 1900s.
        local = datetime.strptime("20" + raw[:12], "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise PayloadError(f"DSMR timestamp {raw!r}: {exc}") from exc
    return local.replace(tzinfo=VIENNA, fold=0 if raw[12:13] == "S" else 1)


def _text(raw: str) -> str:
    """Equipment identifiers are sent hex-encoded in DSMR; keep plain text as it is."""
    if raw and len(raw) % 2 == 0 and all(c in "0123456789ABCDEFabcdef" for c in raw):
        decoded = binascii.unhexlify(raw)
        if decoded.isascii() and decoded.decode().isprintable():
            return decoded.decode()
    return raw
