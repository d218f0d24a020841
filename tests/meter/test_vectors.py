"""Every real captured frame decodes to every value its source states.

Also fed split at every byte boundary and one byte at a time: the same readings come out.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from ecommunity.meter import (
    Keys,
    Reading,
    StreamDecoder,
    TagCheck,
    _amis,
    _ciphering,
    _cosem,
    _encode,
    _hdlc,
    _mbus,
    decode_apdu,
)
from tests.meter.vectors import BARE_APDU, VECTORS, Vector

_UNITS = {"Wh", "W", "varh", "var", "V", "A", ""}
_TAG = {"tag-ok": TagCheck.VERIFIED, "no-tag": TagCheck.NOT_PRESENT}


def decode_vector(vector: Vector) -> list[Reading]:
    """Decode a vector's wire bytes in one go; no frame may be rejected."""
    keys = Keys(vector.key, vector.auth_key)
    if vector.id in BARE_APDU:
        return [decode_apdu(vector.wire, vector.profile, keys)]
    decoder = StreamDecoder(vector.profile, key=vector.key, auth_key=vector.auth_key)
    decoder.feed(vector.wire)
    readings = list(decoder)
    assert decoder.pop_errors() == []
    assert decoder.stats.frames == len(vector.frames)
    assert decoder.buffered <= 1  # an HDLC closing flag is kept: it may open the next frame
    return readings


def full_code(name: str) -> str:
    """The vectors name AMIS registers by short codes (``1.8.0``): make them full OBIS codes."""
    if name == "0.9.1+0.9.2":
        return "0.0.1.0.0.255"
    return name if name.count(".") == 5 else f"1.0.{name}.255"


def check_value(reading: Reading, name: str, spec: dict[str, Any]) -> None:
    code = full_code(name)
    assert code in reading.obis, f"{code} missing; decoded {sorted(reading.obis)}"
    item = reading.obis[code]
    expected = spec["value"]
    if isinstance(item.value, datetime):
        assert item.value.tzinfo is not None
        # The sources state the meter's local wall time.
        assert item.value.replace(tzinfo=None).isoformat() == expected
        assert reading.meter_timestamp == item.value
        return
    if isinstance(expected, str):
        assert item.value == expected
    else:
        assert isinstance(item.value, int | Decimal)
        assert Decimal(item.value) == Decimal(str(expected)), code
    unit = spec["unit"].split(" ")[0] if spec["unit"] else ""
    if unit in _UNITS:
        assert item.unit == unit, code


def check_positional(vector: Vector, reading: Reading, values: list[Any]) -> None:
    """Netz Burgenland: the source lists raw values by position (no OBIS in the telegram)."""
    profile = vector.profile
    mapped = set()
    for position in profile.positions:
        mapped.add(position.index)
        raw = values[position.index]
        item = reading.obis[position.obis]
        if isinstance(raw, str):
            assert item.value == raw
        else:
            assert item.value == _cosem.scale(raw, position.scaler)
            assert item.unit == position.unit
    assert list(reading.unmapped) == [v for i, v in enumerate(values) if i not in mapped]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.id)
def test_vector_decodes_to_expected_values(vector: Vector) -> None:
    readings = decode_vector(vector)
    per_reading = vector.expected_per_reading()
    assert len(readings) == len(per_reading)
    for reading, expected in zip(readings, per_reading, strict=True):
        for name, spec in expected.items():
            if name == "positional_values":
                check_positional(vector, reading, spec["value"])
            else:
                check_value(reading, name, spec)
        # The typed fields agree with the registers they come from.
        energy = reading.obis["1.0.1.8.0.255"].value
        assert reading.energy_import_wh == energy
        assert reading.meter_timestamp is not None


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.id)
def test_vector_tag_check_is_reported(vector: Vector) -> None:
    (reading, *_) = decode_vector(vector)
    stated = vector.raw.get("dlms", {}).get("gcm_tag")
    if stated is None:
        assert reading.tag_check is TagCheck.NOT_PRESENT
    elif stated in _TAG:
        assert reading.tag_check is _TAG[stated]
    else:  # Energienetze Steiermark: the published authentication key does not verify.
        assert "NOT VERIFY" in stated
        assert reading.tag_check is TagCheck.FAILED


def _single_apdu(vector: Vector) -> bytes:
    if vector.frames[0][0] == _hdlc.FLAG:
        return _hdlc.strip_llc(_hdlc.decode_frame(vector.frames[0]).information)
    return vector.frames[0]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if "expected_plaintext_hex" in v.raw or "expected_plaintext_dsmr" in v.raw],
    ids=lambda v: v.id,
)
def test_vector_decrypts_to_stated_plaintext(vector: Vector) -> None:
    assert vector.key is not None
    if vector.is_amis:
        frame = _mbus.decode_frame(vector.frames[0])
        header, plaintext = _amis.decrypt(frame, vector.key)
        if "iv_hex" in vector.raw:
            assert header.iv.hex().upper() == vector.raw["iv_hex"]
    else:
        ciphered = _ciphering.parse(_single_apdu(vector))
        plaintext, _ = _ciphering.decrypt(ciphered, vector.key, None)
        dlms = vector.raw["dlms"]
        assert ciphered.system_title.hex().upper() == dlms["system_title_hex"]
        assert ciphered.frame_counter == dlms["frame_counter"]
        assert ciphered.security_control == int(dlms["security_control"], 16)
    if "expected_plaintext_dsmr" in vector.raw:
        assert plaintext.decode("ascii") == vector.raw["expected_plaintext_dsmr"]
    else:
        assert plaintext.hex().upper() == vector.raw["expected_plaintext_hex"]


def _wire_and_profile(vector: Vector) -> bytes:
    if vector.id in BARE_APDU:
        # No framing in the source: carry the APDU as the KSM West meters do, in M-Bus segments.
        return b"".join(_encode._mbus_segments(vector.wire))
    return vector.wire


def _stream(vector: Vector, chunks: list[bytes]) -> list[Reading]:
    decoder = StreamDecoder(vector.profile, key=vector.key, auth_key=vector.auth_key)
    readings: list[Reading] = []
    for chunk in chunks:
        decoder.feed(chunk)
        readings.extend(decoder)
    assert decoder.pop_errors() == []
    return readings


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.id)
def test_vector_split_at_every_byte_boundary(vector: Vector) -> None:
    wire = _wire_and_profile(vector)
    reference = decode_vector(vector)
    assert _stream(vector, [wire]) == reference
    for cut in range(1, len(wire)):
        assert _stream(vector, [wire[:cut], wire[cut:]]) == reference, f"split at {cut}"
    assert _stream(vector, [wire[i : i + 1] for i in range(len(wire))]) == reference


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.id)
def test_vector_twice_in_one_chunk(vector: Vector) -> None:
    wire = _wire_and_profile(vector)
    assert _stream(vector, [wire + wire]) == decode_vector(vector) * 2


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v.profile.layout.value in ("obis", "amis") and v.id not in BARE_APDU],
    ids=lambda v: v.id,
)
def test_vector_framing_is_detected_without_profile(vector: Vector) -> None:
    decoder = StreamDecoder(None, key=vector.key, auth_key=vector.auth_key)
    decoder.feed(vector.wire)
    auto = list(decoder)
    assert decoder.pop_errors() == []
    reference = decode_vector(vector)
    if vector.profile.trailing_meter_number:
        # Only the operator's profile knows that the last, unlabelled element is the meter
        # number: without it, the number is kept as an unmapped value.
        for a, r in zip(auto, reference, strict=True):
            number = r.obis["0.0.96.1.0.255"].value
            assert dict(a.obis) == {k: v for k, v in r.obis.items() if k != "0.0.96.1.0.255"}
            assert a.unmapped == (number,)
        return
    assert [r.obis for r in auto] == [r.obis for r in reference]
    assert [r.meter_id for r in auto] == [r.meter_id for r in reference]


def test_positional_layout_without_profile_asks_for_one() -> None:
    vector = next(v for v in VECTORS if v.id == "siemens-im350-wienernetze")
    decoder = StreamDecoder(None, key=vector.key)
    decoder.feed(vector.wire)
    assert list(decoder) == []
    (error,) = decoder.pop_errors()
    assert error.kind == "unsupported-layout"
    assert "--profile" in str(error)
