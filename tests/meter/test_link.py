"""Link-layer and protocol details: acknowledgements, quirks, checksums, time stamps, tags."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ecommunity.meter import (
    ACK,
    SND_NKE_AMIS,
    AuthenticationError,
    Keys,
    MissingKeyError,
    ObisValue,
    Reading,
    StreamDecoder,
    TagCheck,
    WrongKeyError,
    _amis,
    _cosem,
    _dsmr,
    _hdlc,
    _mbus,
    decode_apdu,
    encode_amis,
    encode_dlms,
    get_profile,
)
from tests.meter.vectors import VECTORS

VIENNA = ZoneInfo("Europe/Vienna")
KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AUTH = bytes(range(0xC0, 0xD0))


def amis_reading(seconds: int = 0, energy_wh: int = 1000) -> Reading:
    return Reading.from_obis(
        "amis",
        {
            "1.0.1.8.0.255": ObisValue(energy_wh, "Wh"),
            "1.0.2.8.0.255": ObisValue(5, "Wh"),
            "1.0.1.7.0.255": ObisValue(230, "W"),
            "1.0.2.7.0.255": ObisValue(0, "W"),
        },
        meter_timestamp=datetime(2026, 11, 26, 9, 0, tzinfo=VIENNA) + timedelta(seconds=seconds),
    )


def kaifa_reading() -> Reading:
    return Reading.from_obis(
        "netznoe",
        {
            "1.0.1.8.0.255": ObisValue(12937, "Wh"),
            "1.0.2.8.0.255": ObisValue(0, "Wh"),
            "1.0.1.7.0.255": ObisValue(410, "W"),
            "1.0.2.7.0.255": ObisValue(0, "W"),
            "1.0.32.7.0.255": ObisValue(Decimal("233.7"), "V"),
            "0.0.96.1.0.255": ObisValue("181220000009", ""),
        },
        meter_timestamp=datetime(2026, 7, 1, 12, 0, 5, tzinfo=VIENNA),
    )


def test_amis_reader_acknowledges_search_frame_and_every_frame() -> None:
    decoder = StreamDecoder(get_profile("amis"), key=KEY)
    decoder.feed(SND_NKE_AMIS)
    assert decoder.data_to_send() == ACK
    decoder.feed(encode_amis(amis_reading(0), KEY, access_number=1))
    decoder.feed(encode_amis(amis_reading(1), KEY, access_number=2, fcb=True))
    assert decoder.data_to_send() == ACK * 2
    assert decoder.data_to_send() == b""
    assert len(list(decoder)) == 2


def test_corrupt_frame_is_not_acknowledged() -> None:
    frame = bytearray(encode_amis(amis_reading(), KEY, access_number=1))
    frame[50] ^= 0x01
    decoder = StreamDecoder(get_profile("amis"), key=KEY)
    decoder.feed(bytes(frame))
    assert decoder.data_to_send() == b""
    assert decoder.stats.errors["checksum"] == 1


def test_dlms_broadcast_push_needs_no_acknowledgement() -> None:
    decoder = StreamDecoder(get_profile("netznoe"), key=KEY)
    for frame in encode_dlms(kaifa_reading(), get_profile("netznoe"), key=KEY):
        decoder.feed(frame)
    assert decoder.data_to_send() == b""
    assert len(list(decoder)) == 1


def test_amis_wrong_key_is_reported_as_such() -> None:
    frame = encode_amis(amis_reading(), KEY, access_number=7)
    with pytest.raises(WrongKeyError, match="2f2f"):
        _amis.decode_amis(_mbus.decode_frame(frame), bytes(16))
    with pytest.raises(MissingKeyError):
        _amis.decode_amis(_mbus.decode_frame(frame), None)


@pytest.mark.parametrize("auth_key", [None, AUTH])
def test_dlms_wrong_key_is_reported_as_such(auth_key: bytes | None) -> None:
    (frame,) = encode_dlms(
        kaifa_reading(), get_profile("energienetze-steiermark"), key=KEY, auth_key=auth_key
    )
    with pytest.raises(WrongKeyError, match="wrong key"):
        decode_apdu(frame, get_profile("energienetze-steiermark"), Keys(bytes(16), auth_key))


def test_tag_states_missing_failed_verified_and_required() -> None:
    profile = get_profile("dlms-hdlc")
    frames = encode_dlms(kaifa_reading(), profile, key=KEY, auth_key=AUTH)

    def decode(keys: Keys) -> Reading:
        decoder = StreamDecoder(
            profile, key=keys.key, auth_key=keys.auth_key, require_tag=keys.require_tag
        )
        decoder.feed(b"".join(frames))
        readings = list(decoder)
        if not readings:
            raise decoder.pop_errors()[0]
        return readings[0]

    assert decode(Keys(KEY, AUTH)).tag_check is TagCheck.VERIFIED
    assert decode(Keys(KEY, None)).tag_check is TagCheck.UNCHECKED
    # Right encryption key, wrong authentication key: values are good, the tag is not.
    assert decode(Keys(KEY, bytes(16))).tag_check is TagCheck.FAILED
    with pytest.raises(AuthenticationError):
        decode(Keys(KEY, bytes(16), require_tag=True))
    with pytest.raises(AuthenticationError):
        decode(Keys(KEY, None, require_tag=True))


def test_sagemcom_one_byte_length_quirk_is_framed() -> None:
    # Netz NÖ Sagemcom T210-D: a 257-byte body announced as "68 01 01 68".
    frame = _mbus.encode_long_frame(_mbus.SND_UD, 0xFF, 0x00, bytes(range(254)))
    assert frame[:4] == b"\x68\x01\x01\x68"
    assert _mbus.measure_frame(frame, 0) == len(frame) == 263
    decoded = _mbus.decode_frame(frame)
    assert decoded.ci == 0x00
    assert len(decoded.data) == 257 - 3


def test_unexpected_ci_is_reported_not_dropped_silently() -> None:
    frame = _mbus.encode_long_frame(_mbus.SND_UD, 0xFF, 0xFF, b"\x01\x67" + bytes(20))
    decoder = StreamDecoder(get_profile("netznoe"), key=KEY)
    decoder.feed(frame)
    (error,) = decoder.pop_errors()
    assert "CI 0xFF" in str(error)


def test_segment_out_of_order_drops_message_and_recovers() -> None:
    profile = get_profile("netznoe")
    tariffs = {
        f"1.0.{c}.8.{t}.255": ObisValue(c * 1000 + t, "Wh") for c in (1, 2) for t in range(8)
    }
    long_push = replace(kaifa_reading(), obis={**kaifa_reading().obis, **tariffs})
    first, second = encode_dlms(long_push, profile, key=KEY, frame_counter=1)
    decoder = StreamDecoder(profile, key=KEY)
    decoder.feed(second)  # the tail of a push whose head we missed
    decoder.feed(first + second)
    assert len(list(decoder)) == 1
    assert decoder.stats.errors["framing"] == 1


def test_crc_check_values() -> None:
    assert _hdlc.crc16_x25(b"123456789") == 0x906E
    assert _dsmr.crc16_arc(b"123456789") == 0xBB3D


def test_cosem_datetime_deviation_and_vienna_fallback() -> None:
    summer = bytes.fromhex("07E5091B010A2F0F00FF8880")  # deviation -120: UTC+2
    assert _cosem.decode_datetime(summer) == datetime(
        2021, 9, 27, 10, 47, 15, tzinfo=timezone(timedelta(hours=2))
    )
    unspecified = bytes.fromhex("07E50B0303043839FF800000")
    decoded = _cosem.decode_datetime(unspecified)
    assert decoded.utcoffset() == timedelta(hours=1)  # November in Vienna
    # The autumn hour that happens twice: the DST bit picks the first.
    first = _cosem.decode_datetime(bytes.fromhex("07EA0A190702300000800080"))
    assert first.utcoffset() == timedelta(hours=2)
    when = datetime(2026, 3, 29, 3, 30, tzinfo=VIENNA)
    assert _cosem.decode_datetime(_cosem.encode_datetime(when)) == when


def test_cp48_round_trip_over_the_autumn_change() -> None:
    for hour_utc in range(22, 26):
        when = datetime(2026, 10, 24, tzinfo=UTC) + timedelta(hours=hour_utc, minutes=30)
        decoded = _amis.decode_cp48(_amis.encode_cp48(when))
        # Ambiguous local times never compare equal across zones (PEP 495): compare instants.
        assert decoded.astimezone(UTC) == when
        assert decoded.utcoffset() == when.astimezone(VIENNA).utcoffset()


def test_dsmr_kilo_units_become_exact_watt_hours() -> None:
    lines = "/XYZ5\\test\r\n\r\n1-0:1.8.0(001234.567*kWh)\r\n1-0:1.7.0(00.250*kW)\r\n!"
    telegram = lines.encode() + f"{_dsmr.crc16_arc(lines.encode()):04X}\r\n".encode()
    values, header = _dsmr.decode_telegram(telegram)
    assert header == "XYZ5\\test"
    assert values["1.0.1.8.0.255"] == ObisValue(1234567, "Wh")
    assert values["1.0.1.7.0.255"] == ObisValue(250, "W")


def test_reading_is_frozen_and_json_ready() -> None:
    vector = next(v for v in VECTORS if v.id == "kaifa-netznoe-official-example")
    decoder = StreamDecoder(get_profile("netznoe"), key=vector.key)
    decoder.feed(vector.wire)
    (reading,) = list(decoder)
    with pytest.raises(AttributeError):
        reading.energy_import_wh = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        reading.obis["1.0.1.8.0.255"] = ObisValue(1, "Wh")  # type: ignore[index]
    data = reading.to_json()
    assert data["meter_timestamp"] == "2021-09-27T09:47:15+02:00"
    assert data["obis"]["1.0.32.7.0.255"] == {"value": 233.7, "unit": "V"}
    assert data["energy_import_wh"] == 12937
    assert replace(reading, power_import_w=5).power_import_w == 5


@pytest.mark.parametrize("auth_key", [None, AUTH])
def test_security_suite_1_as_tinetz_sends_it(auth_key: bytes | None) -> None:
    profile = get_profile("tinetz")
    frames = encode_dlms(kaifa_reading(), profile, key=KEY, auth_key=auth_key, security_suite=1)
    apdu = b"".join(_mbus.decode_frame(f).data[2:] for f in frames)
    assert apdu[10 + (2 if apdu[10] == 0x81 else 1)] in (0x21, 0x31)
    decoder = StreamDecoder(profile, key=KEY, auth_key=auth_key)
    decoder.feed(b"".join(frames))
    (reading,) = list(decoder)
    assert reading.energy_import_wh == 12937
    assert reading.tag_check is (TagCheck.VERIFIED if auth_key else TagCheck.NOT_PRESENT)


@pytest.mark.parametrize("name", ["dlms-mbus", "dlms-hdlc"])
def test_no_values_from_inside_a_frame_that_failed_its_checksum(name: str) -> None:
    # Without a profile the decoder also looks for bare APDUs (P1). The APDU inside a frame
    # whose checksum failed must not be taken: with SC 0x20 nothing else catches the damage.
    small = Reading.from_obis(
        "x",
        {"1.0.1.8.0.255": ObisValue(1000, "Wh"), "1.0.2.8.0.255": ObisValue(0, "Wh")},
        meter_timestamp=datetime(2026, 11, 26, 9, 0, tzinfo=VIENNA),
    )
    (frame,) = encode_dlms(small, get_profile(name), key=KEY)
    start = frame.index(b"\xdb\x08")
    for pos in range(start + 20, len(frame) - 3):  # the ciphertext
        corrupt = bytearray(frame)
        corrupt[pos] ^= 0x01
        decoder = StreamDecoder(None, key=KEY)
        decoder.feed(bytes(corrupt))
        decoder.close()
        assert list(decoder) == [], f"byte {pos}"
        assert decoder.stats.errors["checksum"] == 1
