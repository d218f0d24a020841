"""Error paths and rare cases, layer by layer: what a caller gets for each kind of bad input.

Direct calls must raise the typed error with a message that says what is wrong; the stream
decoder must count the bad input by kind, skip it and still decode the next good push.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ecommunity.meter import (
    PROFILES,
    SND_NKE_AMIS,
    AuthenticationError,
    ChecksumError,
    FramingError,
    Keys,
    LineSettings,
    MeterError,
    MissingKeyError,
    ObisValue,
    PayloadError,
    Profile,
    Reading,
    StreamDecoder,
    TagCheck,
    UnsupportedLayoutError,
    WrongKeyError,
    _amis,
    _axdr,
    _ciphering,
    _cosem,
    _dsmr,
    _encode,
    _hdlc,
    _mbus,
    _notification,
    _obis,
    decode_apdu,
    encode_amis,
    encode_dlms,
    format_obis,
    get_profile,
    parse_obis,
)
from tests.meter.vectors import BARE_APDU, VECTORS

VIENNA: Final = ZoneInfo("Europe/Vienna")
KEY: Final = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AUTH: Final = bytes(range(0xC0, 0xD0))
TITLE: Final = b"ECO\x00\x00\x00\x00\x01"
WHEN: Final = datetime(2026, 7, 1, 12, 0, 5, tzinfo=VIENNA)
LLC: Final = _hdlc.LLC_HEADERS[0]


# -- inputs built with the library's own encoders ----------------------------------------------
def small_reading(profile: str = "x", *, energy_wh: int = 12937) -> Reading:
    return Reading.from_obis(
        profile,
        {
            "1.0.1.8.0.255": ObisValue(energy_wh, "Wh"),
            "1.0.2.8.0.255": ObisValue(0, "Wh"),
            "1.0.1.7.0.255": ObisValue(410, "W"),
            "1.0.2.7.0.255": ObisValue(0, "W"),
        },
        meter_timestamp=WHEN,
    )


def good_push(name: str) -> bytes:
    """The wire bytes of one valid encrypted push of a profile (+A = 12937 Wh)."""
    return b"".join(encode_dlms(small_reading(name), get_profile(name), key=KEY))


def entry(code: str, value: bytes, *extra: bytes) -> bytes:
    """A KSM West style ``{OBIS, value[, scaler-unit]}`` structure."""
    return _axdr.encode_structure([_axdr.encode_octet_string(parse_obis(code)), value, *extra])


def scaler_unit(scaler: int, unit: int = 30) -> bytes:
    return _axdr.encode_structure([_axdr.encode_int8(scaler), _axdr.encode_enum(unit)])


def notification(*elements: bytes, sent_at: datetime | None = None) -> bytes:
    """A plaintext DATA-NOTIFICATION whose body is a structure of ``elements``."""
    body = _axdr.encode_structure(list(elements))
    return _notification.encode_notification(body, invoke_id=1, sent_at=sent_at)


ENERGY: Final = entry("1.0.1.8.0.255", _axdr.encode_uint32(12937), scaler_unit(0))


def telegram(*lines: str) -> bytes:
    """A DSMR telegram with a correct CRC."""
    body = ("/ECO5\\edge\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!").encode()
    return body + f"{_dsmr.crc16_arc(body):04X}\r\n".encode()


def authenticated_only(
    plaintext: bytes, *, key: bytes, auth_key: bytes, frame_counter: int = 7
) -> bytes:
    """A general-glo-ciphering APDU with SC 0x10 (authentication only, DLMS Green Book):
    the APDU in the clear, and a GMAC tag over SC || AK || APDU."""
    security_control = _ciphering.SC_AUTHENTICATED
    iv = TITLE + frame_counter.to_bytes(4, "big")
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(bytes((security_control,)) + auth_key + plaintext)
    encryptor.finalize()
    body = (
        bytes((security_control,))
        + frame_counter.to_bytes(4, "big")
        + plaintext
        + encryptor.tag[: _ciphering.TAG_LENGTH]
    )
    return b"\xdb\x08" + TITLE + _axdr.encode_length(len(body)) + body


def amis_frame(plaintext: bytes, *, key: bytes = KEY) -> bytes:
    """An AMIS frame with a chosen plaintext, under the header that encode_amis writes."""
    template = _mbus.decode_frame(encode_amis(small_reading("amis"), key, access_number=3))
    header = _amis.decode_header(template.data)
    padded = plaintext + bytes((_amis.FILL,)) * (-len(plaintext) % 16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(header.iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    configuration = 0x0500 | (len(padded) // 16) << 4
    data = template.data[:10] + configuration.to_bytes(2, "little") + ciphertext
    return _mbus.encode_long_frame(_mbus.SND_UD, 0xF0, _amis.CI_AMIS, data)


def decode_stream(decoder: StreamDecoder, *chunks: bytes) -> list[Reading]:
    for chunk in chunks:
        decoder.feed(chunk)
    return list(decoder)


# -- AMIS -------------------------------------------------------------------------------------
def test_amis_frame_that_is_not_mode_5_or_is_short_is_a_framing_error() -> None:
    frame = _mbus.decode_frame(encode_amis(small_reading("amis"), KEY, access_number=1))
    dlms_segment = _mbus.decode_frame(good_push("netznoe"))
    with pytest.raises(FramingError, match="not an AMIS frame: CI 0x10, expected 0x5B"):
        _amis.decode_amis(dlms_segment, KEY)
    with pytest.raises(FramingError, match="too short for its header: 11 bytes"):
        _amis.decode_amis(replace(frame, data=frame.data[:11]), KEY)
    mode_7 = frame.data[:11] + b"\x07" + frame.data[12:]
    with pytest.raises(FramingError, match="security mode 7, expected 5"):
        _amis.decode_amis(replace(frame, data=mode_7), KEY)
    blocks = _amis.decode_header(frame.data).encrypted_blocks
    with pytest.raises(FramingError, match=f"holds {16 * blocks - 16} .* says {16 * blocks}"):
        _amis.decode_amis(replace(frame, data=frame.data[:-16]), KEY)


def test_amis_stream_counts_a_short_frame_and_decodes_the_next() -> None:
    short = _mbus.encode_long_frame(_mbus.SND_UD, 0xF0, _amis.CI_AMIS, bytes(11))
    decoder = StreamDecoder(get_profile("amis"), key=KEY)
    good = encode_amis(small_reading("amis"), KEY, access_number=2)
    (reading,) = decode_stream(decoder, SND_NKE_AMIS, short, good)
    assert reading.energy_import_wh == 12937
    assert decoder.stats.errors == {"framing": 1}
    assert decoder.stats.error_count == 1
    assert decoder.stats.frames == 3


def test_cp48_invalid_flag_and_impossible_dates_are_payload_errors() -> None:
    raw = bytearray(_amis.encode_cp48(WHEN))
    flagged = bytes((raw[0], raw[1] | 0x80, *raw[2:]))
    with pytest.raises(PayloadError, match="flagged invalid"):
        _amis.decode_cp48(flagged)
    raw[4] = raw[4] & 0xF0 | 13  # month 13
    with pytest.raises(PayloadError, match=f"CP48 time {raw.hex()} is not a date"):
        _amis.decode_cp48(bytes(raw))
    # The same in a frame: the meter's clock record is bad, the whole reading is refused.
    records = b"\x2f\x2f\x06\x6d" + flagged + b"\x04\x03" + (1000).to_bytes(4, "little")
    with pytest.raises(PayloadError, match="flagged invalid"):
        _amis.decode_amis(_mbus.decode_frame(amis_frame(records)), KEY)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (b"\x2f\x2f\x84", "offset 2 ends inside its DIFEs"),
        (b"\x2f\x04", "offset 1 has no VIF"),
        (b"\x04\xfb", "offset 0 ends inside its VIFEs"),
        (b"\x0c\x13\x01\x02\x03\x04", r"offset 0: data field 0xC not supported"),
        (b"\x04\x03\x01\x02", "offset 0 is truncated"),
    ],
)
def test_amis_record_errors_name_the_record(records: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        _amis.decode_records(records)


def test_amis_unknown_records_are_skipped_and_missing_energy_is_refused() -> None:
    error_flags = b"\x02\xfd\x17\x00\x00"  # DIF 02 VIF FD 17: a record AMIS does not map
    energy = b"\x04\x03" + (4711).to_bytes(4, "little")
    reading = _amis.decode_amis(
        _mbus.decode_frame(amis_frame(b"\x2f\x2f" + error_flags + energy)), KEY
    )
    assert reading.energy_import_wh == 4711
    assert dict(reading.obis) == {"1.0.1.8.0.255": ObisValue(4711, "Wh")}
    power_only = b"\x2f\x2f\x04\x2b" + (230).to_bytes(4, "little")
    with pytest.raises(PayloadError, match=r"carries no \+A energy record"):
        _amis.decode_amis(_mbus.decode_frame(amis_frame(power_only)), KEY)


def test_encode_amis_needs_the_meter_timestamp() -> None:
    with pytest.raises(ValueError, match="needs the meter timestamp"):
        encode_amis(replace(small_reading("amis"), meter_timestamp=None), KEY, access_number=1)


# -- A-XDR ------------------------------------------------------------------------------------
def test_empty_array_or_one_element_structure_at_the_end_is_not_truncated() -> None:
    # The scaler-unit look-ahead once read past these and called valid data truncated.
    assert _axdr.decode_leaves(b"\x01\x00") == ([], 2)
    assert _axdr.decode_leaves(b"\x02\x01\x0f\xfd") == ([-3], 4)
    apdu = notification(ENERGY, _axdr.encode_structure([]))
    assert decode_apdu(apdu, None, Keys()).energy_import_wh == 12937


def test_long_and_truncated_octet_strings() -> None:
    text = b"x" * 200  # a 0x81 length: not the one-byte fast path
    assert _axdr.decode_leaves(_axdr.encode_octet_string(text)) == ([text], 203)
    with pytest.raises(PayloadError, match="octet string at offset 3 is truncated"):
        _axdr.decode_leaves(_axdr.encode_octet_string(text)[:-1])
    # In a push: the last register's value is cut off.
    apdu = notification(ENERGY, entry("0.0.96.1.0.255", _axdr.encode_octet_string(b"KFM1")))
    with pytest.raises(PayloadError, match="truncated"):
        decode_apdu(apdu[:-1], None, Keys())


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        (0, _axdr.UINT32),
        ((1 << 32) - 1, _axdr.UINT32),
        (1 << 32, _axdr.UINT64),
        ((1 << 64) - 1, _axdr.UINT64),
        (-1, _axdr.INT32),
        (-(1 << 31), _axdr.INT32),
        (-(1 << 31) - 1, _axdr.INT64),
        (-(1 << 63), _axdr.INT64),
    ],
)
def test_integers_take_the_narrowest_type_and_decode_back(value: int, tag: int) -> None:
    encoded = _axdr.encode_integer(value)
    assert encoded[0] == tag
    assert _axdr.decode_leaves(encoded) == ([value], len(encoded))


def test_lengths_beyond_two_bytes_are_refused_by_the_encoder() -> None:
    assert _axdr.encode_length(0xFFFF) == b"\x82\xff\xff"
    with pytest.raises(ValueError, match="length 65536 too large"):
        _axdr.encode_length(0x10000)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"\x00", None),
        (b"\x03\x01", True),
        (b"\x03\x00", False),
        (b"\x04\x0c\xab\xc0", b"\xab\xc0"),  # 12 bits in two bytes
        (b"\x0a\x03KFM", "KFM"),
        (b"\x0c\x02\xc3\xa4", "ä"),
        (b"\x1a\x07\xea\x07\x01\x03", b"\x07\xea\x07\x01\x03"),  # date
        (b"\x1b\x0c\x00\x05\x00", b"\x0c\x00\x05\x00"),  # time
        (b"\x17\x3f\xc0\x00\x00", 1.5),
    ],
)
def test_leaf_types_decode(data: bytes, value: object) -> None:
    assert _axdr.decode_leaves(data) == ([value], len(data))
    assert _axdr.decode_data(data) == (value, len(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "element expected at offset 0, data ends"),
        (b"\x06\x00\x00", "tag 0x06 at offset 0 is truncated"),
        (b"\x0a", "length expected at offset 1, data ends"),
        (b"\x0a\x85\x00", "bad length encoding 0x85 at offset 1"),
        (b"\x09\x80", "bad length encoding 0x80 at offset 1"),
        (b"\x0a\x05KF", "string at offset 2 is truncated"),
        (b"\x0a\x01\xff", "string at offset 2 is not text"),
        (b"\x0c\x01\xff", "string at offset 2 is not text"),
        (b"\x03", "boolean is truncated"),
        (b"\x04\x10\xff", "bit string is truncated"),
        (b"\x19\x07\xea", "tag 0x19 is truncated"),
        (b"\x13\x00", "unknown A-XDR tag 0x13 at offset 0"),
    ],
)
def test_bad_elements_are_payload_errors(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        _axdr.decode_data(data)
    with pytest.raises(PayloadError):
        _axdr.decode_leaves(data)


def test_bad_text_in_a_push_is_a_payload_error_not_a_crash() -> None:
    apdu = notification(ENERGY, entry("0.0.42.0.0.255", b"\x0a\x02\xc3\xa4"))
    with pytest.raises(PayloadError, match="is not text"):
        decode_apdu(apdu, None, Keys())


def _flat(data: _axdr.Data) -> list[object]:
    if isinstance(data, tuple | list):
        return [leaf for item in data for leaf in _flat(item)]
    return [data]


def _plaintext_bodies() -> list[object]:
    """Notification bodies: the real plaintexts, and one of every layout the encoder writes."""
    apdus = {
        v.id: bytes.fromhex(v.raw["expected_plaintext_hex"])
        for v in VECTORS
        if not v.is_amis and "expected_plaintext_hex" in v.raw
    }
    apdus |= {v.id: v.wire for v in VECTORS if v.id in BARE_APDU}
    for name in ("netznoe", "tinetz", "wienernetze", "netzburgenland"):
        body = _encode_body(name)
        apdus[f"encoded-{name}"] = _notification.encode_notification(
            body, invoke_id=1, sent_at=None
        )
    return [pytest.param(a[18:] if a[5] == 12 else a[6:], id=name) for name, a in apdus.items()]


def _encode_body(name: str) -> bytes:
    reading = small_reading(name)
    profile = get_profile(name)
    values = {**reading.obis, "0.0.96.1.0.255": ObisValue("SMS1030788000020", "")}
    for position in profile.positions:
        values.setdefault(
            position.obis, ObisValue(7 if position.unit else "30137181", position.unit)
        )
    return _encode._encode_body(replace(reading, obis=values), profile)


@pytest.mark.parametrize("body", _plaintext_bodies())
def test_leaf_decoder_agrees_with_the_tree_decoder(body: bytes) -> None:
    # decode_leaves is the hand-optimised hot path; decode_data is the plain recursive
    # decoder. On real pushes both must see the same values in the same order.
    leaves, end = _axdr.decode_leaves(body)
    tree, tree_end = _axdr.decode_data(body)
    assert end == tree_end == len(body)
    assert isinstance(tree, _axdr.Structure | list)
    expanded = _flat([tuple(x) if isinstance(x, _axdr.ScalerUnit) else x for x in leaves])
    assert expanded == _flat(tree)


def test_tree_decoder_keeps_structures_and_arrays_apart_and_bounds_nesting() -> None:
    data = _axdr.encode_structure([b"\x01\x02" + _axdr.encode_int8(-1) + _axdr.encode_enum(30)])
    assert data == b"\x02\x01\x01\x02\x0f\xff\x16\x1e"
    tree, _ = _axdr.decode_data(data)
    assert type(tree) is _axdr.Structure
    assert tree == ([-1, 30],)
    assert type(tree[0]) is list
    deep = b"\x02\x01" * 17 + b"\x00"
    with pytest.raises(PayloadError, match="nested too deeply"):
        _axdr.decode_data(deep)
    assert _axdr.decode_data(b"\x02\x01" * 16 + b"\x00")[1] == len(deep) - 2


# -- general-glo-ciphering --------------------------------------------------------------------
def test_apdu_claims_that_cannot_be_true_are_skipped_on_p1() -> None:
    profile = get_profile("energienetze-steiermark")
    (good,) = encode_dlms(small_reading(profile.name), profile, key=KEY, auth_key=AUTH)
    claims = [
        b"\xdb\x08" + TITLE + b"\x84\x00\x00\x00\x20",  # a four-byte length
        b"\xdb\x08" + TITLE + b"\x82\x10\x00\x30",  # 4096 + header > MAX_APDU
        b"\xdb\x08" + TITLE + b"\x04\x20",  # shorter than SC + frame counter
        b"\xdb\x08" + TITLE + b"\x10\x00",  # no security: not what a P1 port pushes
        b"\xdb\x08" + TITLE + b"\x10\x60",  # reserved bits of the security control
    ]
    assert [_ciphering.measure_apdu(claim, 0) for claim in claims] == [-1] * len(claims)
    decoder = StreamDecoder(profile, key=KEY, auth_key=AUTH)
    (reading,) = decode_stream(decoder, b"".join(claims) + good)
    assert reading.energy_import_wh == 12937
    assert decoder.stats.bytes_skipped == sum(map(len, claims))
    assert decoder.stats.error_count == 0


def test_glo_ciphering_apdu_with_a_bad_length_is_a_framing_error() -> None:
    apdu = _ciphering.encrypt(notification(ENERGY), key=KEY, system_title=TITLE, frame_counter=1)
    with pytest.raises(FramingError, match=r"not a general-glo-ciphering APDU \(starts db08\)"):
        decode_apdu(apdu[:15], None, Keys(KEY))
    with pytest.raises(FramingError, match=f"length {apdu[10]} does not fit {apdu[10] - 1} bytes"):
        decode_apdu(apdu[:-1], None, Keys(KEY))


def test_verified_tag_makes_bad_content_a_content_error_not_a_wrong_key() -> None:
    bad = notification(ENERGY) + b"\x00\x00"  # trailing bytes after the body
    apdu = _ciphering.encrypt(bad, key=KEY, system_title=TITLE, frame_counter=1, auth_key=AUTH)
    with pytest.raises(PayloadError, match="2 bytes after the DATA-NOTIFICATION body") as raised:
        decode_apdu(apdu, None, Keys(KEY, AUTH))
    assert type(raised.value) is PayloadError
    # Without the authentication key nothing proves the key right: the same is a wrong key.
    with pytest.raises(WrongKeyError, match="2 bytes after"):
        decode_apdu(apdu, None, Keys(KEY))


def test_system_title_without_manufacturer_letters_is_shown_in_hex() -> None:
    apdu = _ciphering.encrypt(
        notification(ENERGY), key=KEY, system_title=bytes(range(8)), frame_counter=1
    )
    assert decode_apdu(apdu, None, Keys(KEY)).meter_id == "0001020304050607"


def test_authenticated_apdu_shorter_than_its_tag_is_a_framing_error() -> None:
    apdu = b"\xdb\x08" + TITLE + b"\x09\x30\x00\x00\x00\x01" + bytes(4)
    with pytest.raises(FramingError, match="shorter than its tag"):
        decode_apdu(apdu, None, Keys(KEY, AUTH))


def test_security_control_0_carries_the_apdu_in_the_clear() -> None:
    plain = notification(ENERGY)
    body = b"\x00" + (42).to_bytes(4, "big") + plain
    apdu = b"\xdb\x08" + TITLE + _axdr.encode_length(len(body)) + body
    reading = decode_apdu(apdu, None, Keys(KEY, AUTH))
    assert reading.energy_import_wh == 12937
    assert reading.tag_check is TagCheck.NOT_PRESENT
    assert reading.frame_counter == 42
    assert reading.meter_id == "ECO0000000001"


def test_authentication_only_frames_check_their_gmac() -> None:
    plain = notification(ENERGY)
    apdu = authenticated_only(plain, key=KEY, auth_key=AUTH)

    def check(keys: Keys, data: bytes = apdu) -> TagCheck:
        reading = decode_apdu(data, None, keys)
        assert reading.energy_import_wh == (12937 if data == apdu else 12936)  # in the clear
        return reading.tag_check

    assert check(Keys(KEY, AUTH)) is TagCheck.VERIFIED
    assert check(Keys(KEY, bytes(16))) is TagCheck.FAILED
    assert check(Keys(bytes(16), AUTH)) is TagCheck.FAILED
    assert check(Keys()) is TagCheck.UNCHECKED
    assert check(Keys(None, AUTH)) is TagCheck.UNCHECKED
    # A value changed on the way no longer matches the tag.
    at = apdu.index(b"\x06\x00\x00\x32\x89")  # uint32 12937
    forged = apdu[:at] + b"\x06\x00\x00\x32\x88" + apdu[at + 5 :]
    assert check(Keys(KEY, AUTH), forged) is TagCheck.FAILED
    with pytest.raises(AuthenticationError, match="GCM tag failed"):
        decode_apdu(forged, None, Keys(KEY, AUTH, require_tag=True))
    with pytest.raises(AuthenticationError, match="GCM tag unchecked"):
        decode_apdu(apdu, None, Keys(require_tag=True))


def test_authentication_only_frame_in_the_stream() -> None:
    frame = _hdlc.encode_frame(
        LLC + authenticated_only(notification(ENERGY), key=KEY, auth_key=AUTH)
    )
    decoder = StreamDecoder(get_profile("dlms-hdlc"), key=KEY, auth_key=AUTH, require_tag=True)
    (reading,) = decode_stream(decoder, frame)
    assert reading.tag_check is TagCheck.VERIFIED


def test_missing_key_on_a_dlms_push_is_counted_and_the_next_push_decodes() -> None:
    profile = get_profile("netznoe")
    plain = b"".join(encode_dlms(small_reading(profile.name, energy_wh=5), profile, key=None))
    decoder = StreamDecoder(profile)
    (reading,) = decode_stream(decoder, good_push(profile.name), plain)
    assert reading.energy_import_wh == 5
    (error,) = decoder.pop_errors()
    assert isinstance(error, MissingKeyError)
    assert error.kind == "missing-key"
    assert "a 16-byte key is needed" in str(error)


def test_bare_apdu_under_another_key_is_counted_and_the_next_one_decodes() -> None:
    profile = get_profile("energienetze-steiermark")
    reading = small_reading(profile.name)
    (foreign,) = encode_dlms(reading, profile, key=bytes(16), frame_counter=1)
    (own,) = encode_dlms(reading, profile, key=KEY, frame_counter=2)
    decoder = StreamDecoder(profile, key=KEY)
    (decoded,) = decode_stream(decoder, foreign + own)
    assert decoded.frame_counter == 2
    assert decoder.stats.errors == {"wrong-key": 1}


def test_encrypt_refuses_a_bad_system_title_or_suite() -> None:
    with pytest.raises(ValueError, match="system title has 8 bytes"):
        _ciphering.encrypt(b"x", key=KEY, system_title=TITLE[:7], frame_counter=1)
    with pytest.raises(ValueError, match=r"security suite is 0\.\.15"):
        _ciphering.encrypt(b"x", key=KEY, system_title=TITLE, frame_counter=1, security_suite=16)


# -- COSEM date-time and scaling --------------------------------------------------------------
def test_cosem_datetime_of_the_wrong_size_or_deviation() -> None:
    with pytest.raises(PayloadError, match="has 12 bytes, got 5"):
        _cosem.decode_datetime(bytes(5))
    out_of_range = _cosem.encode_datetime(WHEN)[:9] + (1024).to_bytes(2, "big") + b"\x00"
    with pytest.raises(PayloadError, match="deviation 1024 min out of range"):
        _cosem.decode_datetime(out_of_range)
    # The clock register holding a 5-byte octet string is bad content.
    apdu = notification(ENERGY, entry("0.0.1.0.0.255", _axdr.encode_octet_string(bytes(5))))
    with pytest.raises(PayloadError, match="has 12 bytes, got 5"):
        decode_apdu(apdu, None, Keys())
    # And a DATA-NOTIFICATION whose own time stamp is cut short.
    with pytest.raises(PayloadError, match="has 12 bytes, got 3"):
        decode_apdu(b"\x0f\x00\x00\x00\x01\x0c\x07\xea\x07", None, Keys())


def test_cosem_datetime_that_is_not_a_date() -> None:
    raw = bytearray(_cosem.encode_datetime(WHEN))
    raw[2] = 13  # month
    assert _cosem.looks_like_datetime(bytes(raw)) is False
    with pytest.raises(PayloadError, match=f"COSEM date-time {raw.hex()} is not a date"):
        _cosem.decode_datetime(bytes(raw))
    # Labelled as the clock, it is decoded (and refused) even though it does not look like one.
    apdu = notification(ENERGY, entry("0.0.1.0.0.255", _axdr.encode_octet_string(bytes(raw))))
    with pytest.raises(PayloadError, match="is not a date"):
        decode_apdu(apdu, None, Keys())


def test_positive_scaler_gives_exact_whole_numbers() -> None:
    apdu = notification(entry("1.0.1.8.0.255", _axdr.encode_uint32(12), scaler_unit(3)))
    reading = decode_apdu(apdu, None, Keys())
    assert reading.obis["1.0.1.8.0.255"] == ObisValue(12000, "Wh")
    assert type(reading.energy_import_wh) is int


# -- DSMR -------------------------------------------------------------------------------------
def test_dsmr_crc_mismatch_is_a_checksum_error() -> None:
    text = telegram("1-0:1.8.0(000001.000*kWh)")
    crc = int(text[-6:-2], 16)
    bad = text[:-6] + f"{crc ^ 1:04X}".encode() + b"\r\n"
    with pytest.raises(ChecksumError, match="DSMR CRC mismatch") as raised:
        decode_apdu(bad, None, Keys())
    assert (raised.value.expected, raised.value.actual) == (crc, crc ^ 1)
    assert raised.value.kind == "checksum"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"/ECO5\r\n\r\n1-0:1.8.0(1*kWh)\r\n!ZZZZ\r\n", "DSMR CRC b'ZZZZ' is not hex"),
        (b"/ECO5\r\n\r\n1-0:1.8.0(1*kWh)\r\n!12", "not a DSMR telegram"),
        (b"/ECO5\r\n\r\n1-0:1.8.0(1*kWh)\r\n", "not a DSMR telegram"),
    ],
)
def test_dsmr_telegram_without_a_readable_crc_is_a_payload_error(text: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_apdu(text, get_profile("energienetze-steiermark"), Keys())


def test_dsmr_bad_timestamp_is_a_payload_error() -> None:
    text = telegram("0-0:1.0.0(261332120000S)", "1-0:1.8.0(000001.000*kWh)")
    with pytest.raises(PayloadError, match="DSMR timestamp '261332120000S'"):
        decode_apdu(text, None, Keys())


def test_dsmr_hex_encoded_text_is_decoded_where_it_is_printable() -> None:
    text = telegram(
        "1-0:1.8.0(000001.000*kWh)",
        "0-0:96.1.1(4B464D31)",  # "KFM1"
        "0-0:96.13.0(0A0B)",  # hex, but not printable: kept as sent
        "0-0:96.13.1(ABC)",  # odd length: not hex-encoded
    )
    values, _ = _dsmr.decode_telegram(text)
    assert values["0.0.96.1.1.255"] == ObisValue("KFM1", "")
    assert values["0.0.96.13.0.255"] == ObisValue("0A0B", "")
    assert values["0.0.96.13.1.255"] == ObisValue("ABC", "")


def test_dsmr_hex_identifier_made_of_digits_stays_text() -> None:
    # "E0003" hex-encoded is all decimal digits: it passes the number check first, and a
    # 34-digit number is even rounded to Decimal's 28 digits.
    text = telegram("1-0:1.8.0(1*kWh)", "0-0:96.1.1(4530303336303030363637363132303136)")
    values, _ = _dsmr.decode_telegram(text)
    assert values["0.0.96.1.1.255"] == ObisValue("E0036000667612016", "")


# -- encoders ---------------------------------------------------------------------------------
def test_encode_dlms_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="encoded by encode_amis"):
        encode_dlms(small_reading(), get_profile("amis"), key=KEY)
    many = {f"1.0.1.8.{e}.{f}": ObisValue(e * 256 + f, "Wh") for e in range(4) for f in range(60)}
    too_long = replace(small_reading(), obis=many)
    with pytest.raises(ValueError, match="at most 16 segments"):
        encode_dlms(too_long, get_profile("netznoe"), key=None)
    missing = replace(small_reading(), obis={})
    with pytest.raises(ValueError, match=r"profile wienernetze needs 1\.0\.1\.8\.0\.255"):
        encode_dlms(missing, get_profile("wienernetze"), key=KEY)


def test_push_without_clock_and_with_text_registers_round_trips() -> None:
    profile = get_profile("netznoe")
    values = {
        **small_reading().obis,
        "0.0.42.0.0.255": ObisValue("KFM1200200000123", ""),
        "0.0.96.1.0.255": ObisValue("181220000009", ""),
    }
    reading = replace(small_reading(profile.name), obis=values, meter_timestamp=None)
    decoder = StreamDecoder(profile, key=KEY)
    (decoded,) = decode_stream(decoder, *encode_dlms(reading, profile, key=KEY))
    assert decoded.meter_timestamp is None
    assert dict(decoded.obis) == values
    assert decoded.meter_id == "181220000009"


def test_dsmr_push_without_clock_round_trips() -> None:
    profile = get_profile("energienetze-steiermark")
    reading = replace(small_reading(profile.name), meter_timestamp=None)
    (apdu,) = encode_dlms(reading, profile, key=KEY)
    decoded = decode_apdu(apdu, profile, Keys(KEY))
    assert decoded.meter_timestamp is None
    assert decoded.energy_import_wh == 12937
    assert "0.0.1.0.0.255" not in decoded.obis


# -- HDLC -------------------------------------------------------------------------------------
def test_hdlc_length_below_the_minimum_is_junk() -> None:
    junk = b"\x7e\xa0\x05\x00"
    assert _hdlc.measure_frame(junk, 0) == _hdlc.NOT_A_FRAME
    decoder = StreamDecoder(get_profile("dlms-hdlc"), key=KEY)
    (reading,) = decode_stream(decoder, junk + good_push("dlms-hdlc"))
    assert reading.energy_import_wh == 12937
    assert decoder.stats.bytes_skipped == len(junk)
    assert decoder.stats.error_count == 0


def _with_fcs(body: bytes) -> bytes:
    fcs = _hdlc.crc16_x25(body)
    return b"\x7e" + body + bytes((fcs & 0xFF, fcs >> 8)) + b"\x7e"


def test_hdlc_header_that_fails_its_check_is_junk_before_the_frame_is_complete() -> None:
    good = good_push("dlms-hdlc")
    bad_hcs = bytearray(_hdlc.encode_frame(LLC + bytes(300)))
    bad_hcs[7] ^= 0x01
    long_address = b"\x7e\xa0\x20\x00\x00\x00\x00\x00\x03\x13\x00\x00\x00\x00"
    # Rejected from the header alone: no waiting for the 300 bytes that never come.
    assert _hdlc.measure_frame(bytes(bad_hcs[:12]), 0) == _hdlc.NOT_A_FRAME
    assert _hdlc.measure_frame(long_address, 0) == _hdlc.NOT_A_FRAME
    decoder = StreamDecoder(get_profile("dlms-hdlc"), key=KEY)
    (reading,) = decode_stream(decoder, bytes(bad_hcs[:40]), long_address, good)
    assert reading.energy_import_wh == 12937
    assert decoder.stats.error_count == 0


def test_hdlc_decode_frame_errors() -> None:
    frame = _hdlc.encode_frame(LLC + b"\x0f\x00")
    with pytest.raises(FramingError, match=r"not an HDLC frame \(8 bytes\)"):
        _hdlc.decode_frame(frame[:4] + frame[-4:])
    with pytest.raises(FramingError, match="not an HDLC frame"):
        _hdlc.decode_frame(frame[:-1] + b"\x00")
    with pytest.raises(FramingError, match="does not fit"):
        _hdlc.decode_frame(frame[:1] + frame[1:2] + bytes((frame[2] + 1,)) + frame[3:])
    # A bad header check sequence under a good frame check sequence: only decode_frame sees
    # it when called on its own (the stream rejects the header before the frame is complete).
    body = bytearray(frame[1:-3])
    body[5] ^= 0xFF  # the HCS: after format (2), addresses (2) and control
    with pytest.raises(ChecksumError, match="HDLC HCS mismatch") as raised:
        _hdlc.decode_frame(_with_fcs(bytes(body)))
    assert raised.value.actual == body[5] | body[6] << 8
    assert raised.value.expected == _hdlc.crc16_x25(body[:5])


def test_hdlc_address_running_into_the_fcs_is_a_framing_error() -> None:
    # Length 7: a two-byte destination and a source leave no room for the control byte.
    bad = _with_fcs(b"\xa0\x07\x02\x03\x03")
    with pytest.raises(FramingError, match="address field is not terminated"):
        _hdlc.decode_frame(bad)
    decoder = StreamDecoder(get_profile("dlms-hdlc"), key=KEY)
    (reading,) = decode_stream(decoder, bad + good_push("dlms-hdlc"))
    assert reading.energy_import_wh == 12937
    assert decoder.stats.errors == {"framing": 1}


def test_hdlc_encoder_refuses_an_information_field_over_the_11_bit_length() -> None:
    assert len(_hdlc.encode_frame(bytes(2038))) == 2049
    with pytest.raises(ValueError, match="information field too long: 2039 bytes"):
        _hdlc.encode_frame(bytes(2039))


def test_hdlc_segments_beyond_the_message_bound_are_dropped() -> None:
    segments = [
        _hdlc.encode_frame((LLC if i == 0 else b"") + bytes(2000), segmented=True) for i in range(3)
    ]
    decoder = StreamDecoder(get_profile("dlms-hdlc"), key=KEY)
    (reading,) = decode_stream(decoder, *segments, good_push("dlms-hdlc"))
    assert reading.energy_import_wh == 12937
    (error,) = decoder.pop_errors()
    assert isinstance(error, FramingError)
    assert "HDLC message longer than 4096 bytes" in str(error)


# -- DLMS general block transfer --------------------------------------------------------------
def _gbt_frames(apdu: bytes, block_size: int) -> list[bytes]:
    blocks = _notification.encode_blocks(apdu, block_size)
    return [_hdlc.encode_frame((LLC if i == 0 else b"") + b) for i, b in enumerate(blocks)]


@pytest.mark.parametrize(
    ("apdu", "message"),
    [
        (b"\x0f\x00\x00\x00\x01\x00", "not a DATA-NOTIFICATION APDU"),
        (b"\x0f\x00\x00\x00\x01\x05" + bytes(5) + ENERGY, "date-time of 5 bytes"),
        (notification(ENERGY) + b"\x00", "1 bytes after the DATA-NOTIFICATION body"),
        (b"\xc2\x00\x00\x00\x01", "APDU tag 0xC2 is not a DATA-NOTIFICATION"),
    ],
)
def test_malformed_data_notifications_are_payload_errors(apdu: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_apdu(apdu, None, Keys())


def test_data_notification_without_a_body_is_a_payload_error() -> None:
    stamped = _notification.encode_notification(b"", invoke_id=1, sent_at=WHEN)
    assert len(stamped) == 18
    with pytest.raises(PayloadError, match="DATA-NOTIFICATION without a body"):
        decode_apdu(stamped, None, Keys())


def test_block_transfer_errors_are_framing_errors() -> None:
    (block,) = _notification.encode_blocks(b"abc", 16)
    with pytest.raises(FramingError, match="not a general-block-transfer APDU"):
        _notification.decode_block(block[:6])
    with pytest.raises(FramingError, match="GBT block 1 says 3 bytes, has 2"):
        _notification.decode_block(block[:-1])
    assert _notification.decode_block(block) == _notification.Block(True, 1, b"abc")


def test_block_transfer_out_of_order_or_too_long_is_dropped() -> None:
    profile = get_profile("dlms-hdlc")
    apdu = b"".join(
        _hdlc.strip_llc(_hdlc.decode_frame(f).information)
        for f in encode_dlms(small_reading(), profile, key=KEY)
    )
    first, second, *_ = _gbt_frames(apdu, 20)
    huge = _gbt_frames(bytes(8000), 2000)[:3]  # three blocks of 2000, none the last
    bad_length = _hdlc.encode_frame(LLC + b"\xe0\xc0\x00\x01\x00\x00\x05ab")
    decoder = StreamDecoder(profile, key=KEY)
    readings = decode_stream(decoder, second, *huge, bad_length, first, *_gbt_frames(apdu, 20)[1:])
    assert [r.energy_import_wh for r in readings] == [12937]
    assert [str(e) for e in decoder.pop_errors()] == [
        "DLMS block 2 out of order (expected 1)",
        "DLMS block transfer longer than 4096 bytes",
        "GBT block 1 says 5 bytes, has 2",
    ]


def _long_push(name: str, **options: bool) -> list[bytes]:
    values = {f"1.0.1.8.{e}.255": ObisValue(e, "Wh") for e in range(1, 41)}
    reading = replace(small_reading(name), obis={**small_reading().obis, **values})
    frames = encode_dlms(reading, get_profile(name), key=KEY, **options)
    assert len(frames) > 1
    return frames


@pytest.mark.parametrize(
    ("name", "options", "layer"),
    [
        ("netznoe", {}, "M-Bus"),
        ("dlms-hdlc", {}, "HDLC"),
        ("dlms-hdlc", {"block_transfer": True}, "block transfer"),
    ],
)
def test_push_cut_short_is_dropped_when_the_next_one_starts(
    name: str, options: dict[str, bool], layer: str
) -> None:
    frames = _long_push(name, **options)
    decoder = StreamDecoder(get_profile(name), key=KEY)
    readings = decode_stream(decoder, *frames[:-1], *frames)
    assert [r.energy_import_wh for r in readings] == [12937]
    (error,) = decoder.pop_errors()
    assert isinstance(error, FramingError)
    assert str(error).startswith(f"incomplete {layer} message dropped: ")


# -- layouts ----------------------------------------------------------------------------------
def test_push_whose_body_is_a_single_value_is_unsupported() -> None:
    apdu = _notification.encode_notification(_axdr.encode_uint32(1), invoke_id=1, sent_at=None)
    with pytest.raises(UnsupportedLayoutError, match="single value, not a structure") as raised:
        decode_apdu(apdu, None, Keys())
    assert raised.value.kind == "unsupported-layout"


def test_null_data_and_stray_scaler_units_carry_no_value() -> None:
    apdu = notification(b"\x00", ENERGY, scaler_unit(-1), b"\x00")
    reading = decode_apdu(apdu, None, Keys())
    assert dict(reading.obis) == {"1.0.1.8.0.255": ObisValue(12937, "Wh")}
    assert reading.unmapped == ()


def test_unlabelled_leftovers_keep_their_content() -> None:
    apdu = notification(ENERGY, _axdr.encode_octet_string(b"\x01\x02\xff"), b"\x03\x01")
    reading = decode_apdu(apdu, None, Keys())
    assert reading.unmapped == ("0102FF", "True")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x03\x01", "value of type bool not supported"),
        (b"\x00", "value of type NoneType not supported"),
        (scaler_unit(0), "value of type ScalerUnit not supported"),
        (b"\x17\x3f\xc0\x00\x00", "floating-point values are not supported"),
    ],
)
def test_register_values_of_unsupported_types(value: bytes, message: str) -> None:
    apdu = notification(ENERGY, _axdr.encode_octet_string(parse_obis("1.0.2.8.0.255")), value)
    with pytest.raises(PayloadError, match=r"1\.0\.2\.8\.0\.255: " + message):
        decode_apdu(apdu, None, Keys())


def _positional(*elements: bytes) -> bytes:
    clock = _axdr.encode_octet_string(_cosem.encode_datetime(WHEN))
    return notification(clock, *elements)


def test_positional_push_of_the_wrong_kind_asks_for_the_right_profile() -> None:
    wienernetze = get_profile("wienernetze")
    numbers = [_axdr.encode_uint32(n) for n in range(7)]
    apdu = _positional(*numbers, _axdr.encode_octet_string(b"KFM1"))
    with pytest.raises(UnsupportedLayoutError, match="holds bytes, expected a number: is this"):
        decode_apdu(apdu, wienernetze, Keys())


def test_positional_push_with_too_few_values_is_unsupported() -> None:
    numbers = [_axdr.encode_uint32(n) for n in range(3)]
    with pytest.raises(UnsupportedLayoutError, match="position -8, the telegram has 3 values"):
        decode_apdu(_positional(*numbers), get_profile("wienernetze"), Keys())


def test_positional_null_or_boolean_is_never_the_meter_number() -> None:
    wienernetze = get_profile("wienernetze")
    numbers = [_axdr.encode_uint32(n) for n in range(1, 9)]
    reading = decode_apdu(_positional(b"\x00", b"\x03\x01", *numbers), wienernetze, Keys())
    assert reading.meter_id is None
    assert "0.0.96.1.0.255" not in reading.obis
    assert reading.unmapped == ("True",)
    assert reading.energy_import_wh == 1
    serial = _axdr.encode_octet_string(b"SMS1030788000020")
    reading = decode_apdu(_positional(b"\x00", serial, *numbers), wienernetze, Keys())
    assert reading.meter_id == "SMS1030788000020"


# -- M-Bus ------------------------------------------------------------------------------------
def test_mbus_frame_with_an_unknown_control_field_is_junk() -> None:
    junk = _mbus.encode_long_frame(0x99, _mbus.BROADCAST, 0x00, b"\x01\x67")
    assert _mbus.measure_frame(junk, 0) == _mbus.NOT_A_FRAME
    decoder = StreamDecoder(get_profile("netznoe"), key=KEY)
    (reading,) = decode_stream(decoder, junk + good_push("netznoe"))
    assert reading.energy_import_wh == 12937
    assert decoder.stats.bytes_skipped == len(junk)
    assert decoder.stats.error_count == 0


def test_mbus_decode_frame_errors() -> None:
    frame = _mbus.encode_long_frame(_mbus.SND_UD, 0xFF, 0x10, b"\x01\x67abc")
    with pytest.raises(FramingError, match=r"not an M-Bus frame \(8 bytes, starts 68080868\)"):
        _mbus.decode_frame(frame[:8])
    with pytest.raises(FramingError, match="length field 0x09 does not fit 8 bytes"):
        _mbus.decode_frame(frame[:1] + b"\x09\x09" + frame[3:])
    with pytest.raises(ValueError, match="cannot hold 259 bytes"):
        _mbus.encode_long_frame(_mbus.SND_UD, 0xFF, 0x10, bytes(256))


def test_corrupt_search_frame_is_a_checksum_error_and_not_acknowledged() -> None:
    corrupt = SND_NKE_AMIS[:3] + b"\x31" + SND_NKE_AMIS[4:]
    with pytest.raises(ChecksumError, match="M-Bus short frame checksum"):
        _mbus.decode_frame(corrupt)
    decoder = StreamDecoder(get_profile("amis"), key=KEY)
    decoder.feed(corrupt)
    assert decoder.data_to_send() == b""
    assert decoder.stats.errors == {"checksum": 1}
    decoder.feed(SND_NKE_AMIS)
    assert decoder.data_to_send() == _mbus.ACK


def test_short_frame_encoder_writes_the_amis_search_frame() -> None:
    assert _mbus.encode_short_frame(_mbus.SND_NKE, 0xF0) == SND_NKE_AMIS
    frame = _mbus.decode_frame(SND_NKE_AMIS)
    assert frame.is_short
    assert (frame.control, frame.address) == (_mbus.SND_NKE, 0xF0)


def test_mbus_dlms_segment_without_saps_is_counted_and_skipped() -> None:
    bare = _mbus.encode_long_frame(_mbus.SND_UD, _mbus.BROADCAST, 0x10, b"\x01")
    decoder = StreamDecoder(get_profile("netznoe"), key=KEY)
    (reading,) = decode_stream(decoder, bare, good_push("netznoe"))
    assert reading.energy_import_wh == 12937
    assert [str(e) for e in decoder.pop_errors()] == ["M-Bus DLMS segment without STSAP/DTSAP"]


@pytest.mark.parametrize(
    "measure", [_mbus.measure_frame, _hdlc.measure_frame, _ciphering.measure_apdu]
)
def test_measure_functions_reject_a_buffer_that_does_not_start_a_frame(
    measure: Callable[[bytes, int], int],
) -> None:
    data = b"\x00" * 8 + good_push("dlms-hdlc")
    assert measure(data, 0) == -1


# -- OBIS, profiles, decoder set-up -----------------------------------------------------------
def test_obis_codes_are_checked_both_ways() -> None:
    assert parse_obis("1-0:1.8.0*255") == bytes((1, 0, 1, 8, 0, 255))
    assert format_obis(bytes((1, 0, 1, 8, 0, 255))) == "1.0.1.8.0.255"
    with pytest.raises(ValueError, match="an OBIS code has 6 bytes, got 5"):
        format_obis(bytes(5))
    with pytest.raises(ValueError, match=r"not an OBIS code: '1\.8\.0'"):
        parse_obis("1.8.0")
    with pytest.raises(ValueError, match="range"):  # bytes() refuses a group above 255
        parse_obis("1.0.1.8.0.256")


def test_obis_format_cache_stays_bounded() -> None:
    # Junk that passes for OBIS codes must not grow memory without bound.
    for n in range(5000):
        code = bytes((9, 9)) + n.to_bytes(4, "big")
        assert format_obis(code) == "9.9." + ".".join(map(str, n.to_bytes(4, "big")))
    assert len(_obis._FORMATTED) <= 4096


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown meter profile 'netzooe'; known profiles: amis, "):
        get_profile("netzooe")
    assert all(isinstance(p, Profile) for p in PROFILES.values())
    assert str(get_profile("amis").line) == "9600 8E1"
    assert str(LineSettings(115200)) == "115200 8N1"


@pytest.mark.parametrize(
    ("key", "auth_key", "name"), [(bytes(15), None, "key"), (KEY, bytes(32), "auth_key")]
)
def test_decoder_refuses_keys_that_are_not_aes_128(
    key: bytes, auth_key: bytes | None, name: str
) -> None:
    with pytest.raises(
        ValueError, match=f"^{name} must be 16 bytes \\(AES-128\\), got {len(auth_key or key)}$"
    ):
        StreamDecoder(get_profile("netznoe"), key=key, auth_key=auth_key)


def test_errors_are_meter_errors_with_their_kind() -> None:
    kinds = {
        FramingError: "framing",
        ChecksumError: "checksum",
        PayloadError: "payload",
        MissingKeyError: "missing-key",
        AuthenticationError: "authentication",
        UnsupportedLayoutError: "unsupported-layout",
    }
    for cls, kind in kinds.items():
        assert issubclass(cls, MeterError)
        assert cls.kind == kind
    assert issubclass(ChecksumError, FramingError)


def test_dsmr_bytes_after_the_crc_line_are_refused() -> None:
    text = telegram("1-0:1.8.0(1*kWh)")
    assert _dsmr.decode_telegram(text)[0]["1.0.1.8.0.255"] == ObisValue(1000, "Wh")
    with pytest.raises(PayloadError, match="after the DSMR CRC"):
        _dsmr.decode_telegram(text + b"\x68\xfa")
