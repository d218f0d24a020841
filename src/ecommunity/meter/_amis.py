"""AMIS (Netz OÖ, Siemens TD-3511): CI 0x5B long frames, AES-128-CBC, EN 13757-3 records.

Source: Netz OÖ "Technische Spezifikation AMIS-Zähler Kundenschnittstelle" (2021-11-05), as
summarised in docs/meter-protocols.md.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ecommunity.meter import _mbus
from ecommunity.meter import _obis as obis
from ecommunity.meter._cosem import VIENNA
from ecommunity.meter._errors import (
    FramingError,
    MissingKeyError,
    PayloadError,
    WrongKeyError,
)
from ecommunity.meter._reading import ObisValue, Reading

CI_AMIS: Final = 0x5B
HEADER_LEN: Final = 12
MANUFACTURER_SAM: Final = b"\x2d\x4c"  # "SAM" in the M-Bus 3-letter code, little endian
FILL: Final = 0x2F
INKASSO: Final = "1.0.1.128.0.255"
REACTIVE_ENERGY_IMPORT_T1: Final = "1.0.3.8.1.255"
REACTIVE_ENERGY_EXPORT_T1: Final = "1.0.4.8.1.255"

# Records by their full DIF/VIF byte string (Netz OÖ spec, table 2): (OBIS, unit, signed).
_RECORDS: Final[dict[bytes, tuple[str, str, bool]]] = {
    bytes.fromhex("0403"): (obis.ENERGY_IMPORT, "Wh", False),
    bytes.fromhex("04833C"): (obis.ENERGY_EXPORT, "Wh", False),
    bytes.fromhex("8410FB8273"): (REACTIVE_ENERGY_IMPORT_T1, "varh", False),
    bytes.fromhex("8410FB82F33C"): (REACTIVE_ENERGY_EXPORT_T1, "varh", False),
    bytes.fromhex("042B"): (obis.POWER_IMPORT, "W", False),
    bytes.fromhex("04AB3C"): (obis.POWER_EXPORT, "W", False),
    bytes.fromhex("04FB14"): (obis.REACTIVE_POWER_IMPORT, "var", False),
    bytes.fromhex("04FB943C"): (obis.REACTIVE_POWER_EXPORT, "var", False),
    bytes.fromhex("0483FF04"): (INKASSO, "Wh", True),
}
_CLOCK_RECORD: Final = bytes.fromhex("066D")
# Data field lengths by the DIF's low nibble (EN 13757-3 table 4); BCD and variable length
# fields do not occur in AMIS frames and are rejected.
_DATA_LENGTHS: Final = {0x0: 0, 0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x5: 4, 0x6: 6, 0x7: 8}


@dataclass(frozen=True, slots=True)
class AmisHeader:
    """The 12-byte long header of a CI 0x5B frame."""

    identification: bytes
    manufacturer: bytes
    version: int
    medium: int
    access_number: int
    status: int
    configuration: int

    @property
    def encrypted_blocks(self) -> int:
        return (self.configuration >> 4) & 0x0F

    @property
    def security_mode(self) -> int:
        return (self.configuration >> 8) & 0x1F

    @property
    def iv(self) -> bytes:
        """AES-CBC IV: manufacturer, identification, version, medium, access number x 8."""
        return (
            self.manufacturer
            + self.identification
            + bytes((self.version, self.medium))
            + bytes((self.access_number,)) * 8
        )


def decode_header(data: bytes) -> AmisHeader:
    if len(data) < HEADER_LEN:
        raise FramingError(f"AMIS frame too short for its header: {len(data)} bytes")
    return AmisHeader(
        identification=data[0:4],
        manufacturer=data[4:6],
        version=data[6],
        medium=data[7],
        access_number=data[8],
        status=data[9],
        configuration=data[10] | data[11] << 8,
    )


def decrypt(frame: _mbus.MbusFrame, key: bytes | None) -> tuple[AmisHeader, bytes]:
    """Decrypt the records of an AMIS frame.

    Raises:
        FramingError: not CI 0x5B, not security mode 5, or fewer bytes than the header says.
        MissingKeyError: no key given.
        WrongKeyError: the plaintext does not start with the 2F 2F fill (the only key check
            AMIS offers: there is no MAC).
    """
    if frame.ci != CI_AMIS:
        raise FramingError(f"not an AMIS frame: CI 0x{frame.ci or 0:02X}, expected 0x5B")
    header = decode_header(frame.data)
    if header.security_mode != 5:
        raise FramingError(f"AMIS frame with security mode {header.security_mode}, expected 5")
    if header.encrypted_blocks == 0:
        raise FramingError("AMIS frame with no encrypted blocks (configuration word)")
    length = 16 * header.encrypted_blocks
    ciphertext = frame.data[HEADER_LEN : HEADER_LEN + length]
    if len(ciphertext) != length:
        raise FramingError(
            f"AMIS frame holds {len(ciphertext)} encrypted bytes, header says {length}"
        )
    if key is None:
        raise MissingKeyError("AMIS frames are encrypted: a 16-byte key is needed")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(header.iv)).decryptor()
    plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    if plaintext[:2] != b"\x2f\x2f":
        raise WrongKeyError(
            f"wrong key: AMIS plaintext starts {plaintext[:2].hex()} instead of 2f2f "
            f"(access number {header.access_number})"
        )
    return header, plaintext


def decode_cp48(raw: bytes) -> datetime:
    """M-Bus type I (CP48) date and time, interpreted as local time in Europe/Vienna.

    Raises:
        PayloadError: the fields are not a valid date or the "invalid" flag is set.
    """
    b0, b1, b2, b3, b4, _b5 = raw
    if b1 & 0x80:
        raise PayloadError("CP48 time is flagged invalid by the meter")
    year = 2000 + ((b4 & 0xF0) >> 1 | (b3 & 0xE0) >> 5)
    try:
        local = datetime(year, b4 & 0x0F, b3 & 0x1F, b2 & 0x1F, b1 & 0x3F, b0 & 0x3F)
    except ValueError as exc:
        raise PayloadError(f"CP48 time {raw.hex()} is not a date: {exc}") from exc
    # Bit 6 of the seconds byte is set in every summer capture and clear in winter: the
    # summer-time flag. It picks the right one of the two 02:xx hours in October.
    return local.replace(tzinfo=VIENNA, fold=0 if b0 & 0x40 else 1)


def encode_cp48(when: datetime) -> bytes:
    """Encode an instant as CP48 local time in Europe/Vienna (the inverse of decode_cp48)."""
    local = when.astimezone(VIENNA) if when.tzinfo else when.replace(tzinfo=VIENNA)
    dst = bool(local.dst())
    year = local.year - 2000
    week = local.isocalendar()[1]
    return bytes(
        (
            local.second | (0x40 if dst else 0),
            local.minute,
            local.hour | (local.isoweekday() << 5),
            local.day | (year & 0x07) << 5,
            local.month | (year & 0x78) << 1,
            week & 0x3F,
        )
    )


def decode_records(plaintext: bytes) -> tuple[dict[str, ObisValue], datetime | None]:
    """Parse the EN 13757-3 data records of an AMIS plaintext.

    Raises:
        PayloadError: a record is truncated or uses a data field AMIS never sends.
    """
    values: dict[str, ObisValue] = {}
    clock: datetime | None = None
    pos = 0
    end = len(plaintext)
    while pos < end:
        start = pos
        dif = plaintext[pos]
        pos += 1
        if dif == FILL:
            continue
        ext = dif
        while ext & 0x80:  # DIFE chain
            if pos >= end:
                raise PayloadError(f"record at offset {start} ends inside its DIFEs")
            ext = plaintext[pos]
            pos += 1
        if pos >= end:
            raise PayloadError(f"record at offset {start} has no VIF")
        ext = plaintext[pos]
        pos += 1
        while ext & 0x80:  # VIFE chain (also after the 0xFB/0xFF extension VIFs)
            if pos >= end:
                raise PayloadError(f"record at offset {start} ends inside its VIFEs")
            ext = plaintext[pos]
            pos += 1
        size = _DATA_LENGTHS.get(dif & 0x0F)
        if size is None:
            raise PayloadError(
                f"record at offset {start}: data field 0x{dif & 0x0F:X} not supported"
            )
        key = plaintext[start:pos]
        raw = plaintext[pos : pos + size]
        pos += size
        if len(raw) != size:
            raise PayloadError(f"record at offset {start} is truncated")
        if key == _CLOCK_RECORD:
            clock = decode_cp48(raw)
            values[obis.CLOCK] = ObisValue(clock, "")
            continue
        spec = _RECORDS.get(key)
        if spec is not None:
            code, unit, signed = spec
            values[code] = ObisValue(int.from_bytes(raw, "little", signed=signed), unit)
    return values, clock


def decode_amis(frame: _mbus.MbusFrame, key: bytes | None, profile: str = "amis") -> Reading:
    """Decrypt and decode one AMIS SND_UD frame into a :class:`Reading`.

    Raises:
        FramingError, MissingKeyError, WrongKeyError, PayloadError: see :func:`decrypt`
            and :func:`decode_records`.
    """
    header, plaintext = decrypt(frame, key)
    values, clock = decode_records(plaintext)
    if obis.ENERGY_IMPORT not in values:
        raise PayloadError("AMIS plaintext decrypted but carries no +A energy record")
    identification = int.from_bytes(header.identification, "little")
    # AMIS meters send identification 0; only a real number identifies the meter.
    meter_id = f"{identification:08d}" if identification else None
    reading = Reading.from_obis(
        profile,
        values,
        meter_id=meter_id,
        meter_timestamp=clock,
        frame_counter=header.access_number,
    )
    # AMIS has one reactive register per direction, tariff 1 (x.8.1): the meter's total.
    return replace(
        reading,
        reactive_energy_import_varh=_counter(values, REACTIVE_ENERGY_IMPORT_T1),
        reactive_energy_export_varh=_counter(values, REACTIVE_ENERGY_EXPORT_T1),
    )


def _counter(values: Mapping[str, ObisValue], code: str) -> int | None:
    item = values.get(code)
    return item.value if item is not None and isinstance(item.value, int) else None


def encode_amis(
    reading: Reading,
    key: bytes,
    *,
    access_number: int,
    fcb: bool = False,
    address: int = 0xF0,
) -> bytes:
    """Encrypt a reading into a real AMIS wire frame (101 bytes), as the TD-3511 sends it.

    ``reading`` needs ``meter_timestamp`` and the energy/power fields; reactive values and the
    Inkasso counter (``1.0.1.128.0.255`` in ``reading.obis``) default to 0.
    """
    if reading.meter_timestamp is None:
        raise ValueError("an AMIS frame needs the meter timestamp")
    inkasso = reading.obis.get(INKASSO)
    inkasso_wh = int(inkasso.value) if inkasso and isinstance(inkasso.value, int) else 0
    fields = (
        (b"\x04\x03", reading.energy_import_wh),
        (b"\x04\x83\x3c", reading.energy_export_wh),
        (b"\x84\x10\xfb\x82\x73", reading.reactive_energy_import_varh),
        (b"\x84\x10\xfb\x82\xf3\x3c", reading.reactive_energy_export_varh),
        (b"\x04\x2b", reading.power_import_w),
        (b"\x04\xab\x3c", reading.power_export_w),
        (b"\x04\xfb\x14", reading.reactive_power_import_var),
        (b"\x04\xfb\x94\x3c", reading.reactive_power_export_var),
    )
    plaintext = bytearray(b"\x2f\x2f" + _CLOCK_RECORD + encode_cp48(reading.meter_timestamp))
    for dif_vif, value in fields:
        plaintext += dif_vif + struct.pack("<I", value or 0)
    plaintext += b"\x04\x83\xff\x04" + struct.pack("<i", inkasso_wh)
    blocks = (len(plaintext) + 15) // 16
    plaintext += bytes((FILL,)) * (16 * blocks - len(plaintext))
    header = AmisHeader(
        identification=b"\x00\x00\x00\x00",
        manufacturer=MANUFACTURER_SAM,
        version=0x01,
        medium=0x0E,
        access_number=access_number & 0xFF,
        status=0x00,
        configuration=0x0500 | blocks << 4,
    )
    encryptor = Cipher(algorithms.AES(key), modes.CBC(header.iv)).encryptor()
    ciphertext = encryptor.update(bytes(plaintext)) + encryptor.finalize()
    data = (
        header.identification
        + header.manufacturer
        + bytes((header.version, header.medium, header.access_number, header.status))
        + struct.pack("<H", header.configuration)
        + ciphertext
    )
    control = _mbus.SND_UD_FCB if fcb else _mbus.SND_UD
    return _mbus.encode_long_frame(control, address, CI_AMIS, data)
