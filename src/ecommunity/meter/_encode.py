"""Encode readings into real DLMS wire frames, as the meters of each profile send them.

Used by the round-trip tests and by the meter simulator (``ecommunity.sim``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ecommunity.meter import _axdr, _ciphering, _dsmr, _hdlc, _mbus
from ecommunity.meter import _obis as obis
from ecommunity.meter._cosem import VIENNA, encode_datetime
from ecommunity.meter._notification import encode_blocks, encode_notification
from ecommunity.meter._obis import DLMS_UNIT_CODES, parse_obis
from ecommunity.meter._profiles import Layout, Profile, Transport
from ecommunity.meter._reading import ObisValue, Reading, Value

#: Data bytes per M-Bus segment: L = 0xFA as Netz NÖ meters send (5 header bytes + 245).
MBUS_SEGMENT = 245
#: Information bytes per HDLC frame before the push is split.
HDLC_SEGMENT = 128


def encode_dlms(
    reading: Reading,
    profile: Profile,
    *,
    key: bytes | None,
    auth_key: bytes | None = None,
    system_title: bytes = b"ECO\x00\x00\x00\x00\x01",
    frame_counter: int = 1,
    invoke_id: int = 1,
    block_transfer: bool = False,
    security_suite: int = 0,
) -> list[bytes]:
    """Encode a reading as the wire frames of one push, in order.

    Without ``key`` the APDU is sent in the clear (as some AM550 pushes are). With
    ``auth_key`` it carries a 12-byte GCM tag (SC 0x30), else none (SC 0x20).
    HDLC pushes longer than one frame are split by HDLC segmentation or, with
    ``block_transfer``, by DLMS general block transfer (as the L+G E450 does).
    """
    if profile.layout is Layout.AMIS:
        raise ValueError("AMIS frames are encoded by encode_amis")
    if profile.layout is Layout.DSMR:
        plaintext = encode_dsmr(reading)
    else:
        plaintext = encode_notification(
            _encode_body(reading, profile), invoke_id=invoke_id, sent_at=reading.meter_timestamp
        )
    apdu = plaintext
    if key is not None:
        apdu = _ciphering.encrypt(
            plaintext,
            key=key,
            system_title=system_title,
            frame_counter=frame_counter,
            auth_key=auth_key,
            security_suite=security_suite,
        )
    if profile.transport is Transport.P1_GCM:
        return [apdu]
    if profile.transport is Transport.MBUS:
        return _mbus_segments(apdu)
    return _hdlc_frames(apdu, block_transfer=block_transfer)


def _mbus_segments(apdu: bytes) -> list[bytes]:
    chunks = [apdu[i : i + MBUS_SEGMENT] for i in range(0, len(apdu), MBUS_SEGMENT)]
    if len(chunks) > 16:
        raise ValueError("an M-Bus DLMS push has at most 16 segments")
    frames = []
    for number, chunk in enumerate(chunks):
        ci = number | (0x10 if number == len(chunks) - 1 else 0)
        frames.append(
            _mbus.encode_long_frame(_mbus.SND_UD, _mbus.BROADCAST, ci, b"\x01\x67" + chunk)
        )
    return frames


def _hdlc_frames(apdu: bytes, *, block_transfer: bool) -> list[bytes]:
    llc = _hdlc.LLC_HEADERS[0]
    if len(llc) + len(apdu) <= HDLC_SEGMENT:
        return [_hdlc.encode_frame(llc + apdu)]
    if block_transfer:
        blocks = encode_blocks(apdu, HDLC_SEGMENT - 10)
        return [_hdlc.encode_frame((llc if i == 0 else b"") + b) for i, b in enumerate(blocks)]
    information = llc + apdu
    parts = [information[i : i + HDLC_SEGMENT] for i in range(0, len(information), HDLC_SEGMENT)]
    return [
        _hdlc.encode_frame(
            part,
            segmented=i < len(parts) - 1,
            control=_hdlc.UI if i < len(parts) - 1 else _hdlc.UI_FINAL,
        )
        for i, part in enumerate(parts)
    ]


def _encode_body(reading: Reading, profile: Profile) -> bytes:
    if profile.layout is Layout.POSITIONAL:
        return _positional_body(reading, profile)
    values = dict(reading.obis)
    if reading.meter_timestamp is not None:
        values.setdefault(obis.CLOCK, ObisValue(reading.meter_timestamp, ""))
    if profile.trailing_meter_number:
        # Netz NÖ: one flat structure: clock, OBIS/value/scaler-unit triples, meter number.
        number = values.pop(obis.METER_NUMBER, None)
        clock = values.pop(obis.CLOCK, None)
        elements: list[bytes] = []
        if clock is not None:
            elements.append(_encode_value(clock.value)[0])
        for code, item in values.items():
            raw, scaler = _encode_value(item.value)
            elements += [_axdr.encode_octet_string(parse_obis(code)), raw]
            if scaler is not None:
                elements.append(_scaler_unit(scaler, item.unit))
        if number is not None:
            elements.append(_encode_value(number.value)[0])
        return _axdr.encode_structure(elements)
    # KSM West style: a structure of {OBIS, value[, {scaler, unit}]} structures.
    entries = []
    for code, item in values.items():
        raw, scaler = _encode_value(item.value)
        parts = [_axdr.encode_octet_string(parse_obis(code)), raw]
        if scaler is not None:
            parts.append(_scaler_unit(scaler, item.unit))
        entries.append(_axdr.encode_structure(parts))
    return _axdr.encode_structure(entries)


def _positional_body(reading: Reading, profile: Profile) -> bytes:
    front = [p for p in profile.positions if p.index >= 0]
    back = [p for p in profile.positions if p.index < 0]
    size = max([p.index + 1 for p in front], default=0) + len(back)
    slots: list[bytes | None] = [None] * size
    for position in profile.positions:
        item = reading.obis.get(position.obis)
        if item is None:
            raise ValueError(f"profile {profile.name} needs {position.obis} in the reading")
        value = item.value
        if position.unit:
            assert isinstance(value, int | Decimal)
            encoded = _axdr.encode_integer(int(Decimal(value).scaleb(-position.scaler)))
        else:
            encoded = _encode_value(value)[0]
        slots[position.index if position.index >= 0 else size + position.index] = encoded
    extra = list(reading.unmapped)
    elements = []
    for slot in slots:
        if slot is None:
            slot = _encode_value(extra.pop(0) if extra else 0)[0]
        elements.append(slot)
    if profile.clock_in_body and reading.meter_timestamp is not None:
        elements.insert(0, _axdr.encode_octet_string(encode_datetime(reading.meter_timestamp)))
        meter_id = reading.obis.get(obis.METER_NUMBER)
        if meter_id is not None and all(p.obis != obis.METER_NUMBER for p in profile.positions):
            elements.insert(0, _encode_value(meter_id.value)[0])  # as the IM350 does
    return _axdr.encode_structure(elements)


def _encode_value(value: Value) -> tuple[bytes, int | None]:
    """Encode a value; returns the A-XDR bytes and the scaler used (None: not a number)."""
    if isinstance(value, datetime):
        return _axdr.encode_octet_string(encode_datetime(value)), None
    if isinstance(value, str):
        return _axdr.encode_octet_string(value.encode("ascii")), None
    if isinstance(value, Decimal):
        exponent = value.normalize().as_tuple().exponent
        scaler = min(int(exponent), 0) if isinstance(exponent, int) else 0
        return _axdr.encode_integer(int(value.scaleb(-scaler))), scaler
    return _axdr.encode_integer(value), 0


def _scaler_unit(scaler: int, unit: str) -> bytes:
    return _axdr.encode_structure(
        [_axdr.encode_int8(scaler), _axdr.encode_enum(DLMS_UNIT_CODES.get(unit, 255))]
    )


def encode_dsmr(reading: Reading) -> bytes:
    """A DSMR 5 telegram of the reading's numeric registers, with its CRC."""
    lines = ["/ECO5\\eCommunity", ""]
    if reading.meter_timestamp is not None:
        local = reading.meter_timestamp.astimezone(VIENNA)
        lines.append(f"0-0:1.0.0({local:%y%m%d%H%M%S}{'S' if local.dst() else 'W'})")
    for code, item in reading.obis.items():
        if code == obis.CLOCK or isinstance(item.value, datetime | str):
            continue
        a, b, c, d, e, _f = parse_obis(code)
        lines.append(f"{a}-{b}:{c}.{d}.{e}({item.value:09}*{item.unit})")
    body = ("\r\n".join(lines) + "\r\n!").encode("ascii")
    return body + f"{_dsmr.crc16_arc(body):04X}\r\n".encode("ascii")
