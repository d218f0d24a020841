"""The stream decoder on a bad line: junk, corrupt bytes, wrong keys and fuzzed input.

``feed`` never raises; valid pushes between junk still come out once each, in order; the
buffer stays bounded; bad frames are counted by kind and skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommunity.meter import (
    PROFILES,
    SND_NKE_AMIS,
    Keys,
    MeterError,
    ObisValue,
    Profile,
    Reading,
    StreamDecoder,
    Transport,
    WrongKeyError,
    _ciphering,
    _dsmr,
    _hdlc,
    _mbus,
    decode_apdu,
    encode_amis,
    encode_dlms,
    get_profile,
)
from ecommunity.meter._notification import decode_block
from tests.meter.vectors import BARE_APDU, VECTORS, Vector

VIENNA: Final = ZoneInfo("Europe/Vienna")
#: A key that belongs to no vector: every vector frame is a wrong-key frame for it.
KEY: Final = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
AUTH: Final = bytes(range(0xC0, 0xD0))
assert all(KEY not in (v.key, v.auth_key) for v in VECTORS)

Push = tuple[bytes, ...]


# -- readings and pushes ----------------------------------------------------------------------
def _reading(profile: str, seconds: int, *, tariffs: bool = False) -> Reading:
    values = {
        "1.0.1.8.0.255": ObisValue(1_000_000 + seconds, "Wh"),
        "1.0.2.8.0.255": ObisValue(seconds, "Wh"),
        "1.0.3.8.0.255": ObisValue(7, "varh"),
        "1.0.4.8.0.255": ObisValue(8, "varh"),
        "1.0.1.7.0.255": ObisValue(230 + seconds, "W"),
        "1.0.2.7.0.255": ObisValue(0, "W"),
        "1.0.3.7.0.255": ObisValue(3, "var"),
        "1.0.4.7.0.255": ObisValue(4, "var"),
        "1.0.32.7.0.255": ObisValue(231, "V"),
        "1.0.52.7.0.255": ObisValue(232, "V"),
        "1.0.72.7.0.255": ObisValue(233, "V"),
        "1.0.31.7.0.255": ObisValue(Decimal("1.25"), "A"),
        "1.0.51.7.0.255": ObisValue(Decimal("0.5"), "A"),
        "1.0.71.7.0.255": ObisValue(Decimal("12.03"), "A"),
        "1.0.13.7.0.255": ObisValue(Decimal("0.987"), ""),
        "1.0.1.128.0.255": ObisValue(-5, "Wh"),
    }
    if tariffs:  # long enough for several M-Bus segments, HDLC segments or GBT blocks
        values |= {
            f"1.0.{c}.8.{t}.255": ObisValue(c * 10_000 + t, "Wh") for c in (1, 2) for t in range(9)
        }
    if profile != "energienetze-steiermark":
        values["0.0.96.1.0.255"] = ObisValue("1KFM0200000123", "")
    when = datetime(2026, 10, 25, 2, 30, tzinfo=VIENNA) + timedelta(seconds=seconds)
    return Reading.from_obis(profile, values, meter_timestamp=when)


def amis_pushes(key: bytes) -> list[Push]:
    return [
        (encode_amis(_reading("amis", n), key, access_number=n, fcb=bool(n % 2)),) for n in range(3)
    ]


def dlms_pushes(
    name: str, key: bytes | None, auth_key: bytes | None = None, *, first: int = 1
) -> list[Push]:
    """A short and a long push of one profile, each with its own frame counter."""
    profile = get_profile(name)
    pushes: list[Push] = []
    for n, tariffs in enumerate((False, True)):
        for block_transfer in (False, True) if profile.transport is Transport.HDLC else (False,):
            frames = encode_dlms(
                _reading(name, n, tariffs=tariffs),
                profile,
                key=key,
                auth_key=auth_key,
                frame_counter=first + len(pushes),
                block_transfer=block_transfer,
            )
            pushes.append(tuple(frames))
    return pushes


def apdu_of(push: Push) -> bytes:
    """The APDU of a push: M-Bus segments, HDLC segments or GBT blocks put back together."""
    first = push[0][0]
    if first == _ciphering.GENERAL_GLO_CIPHERING:
        return push[0]
    if first == _hdlc.FLAG:
        information = [_hdlc.strip_llc(_hdlc.decode_frame(frame).information) for frame in push]
        if information[0][:1] == b"\xe0":
            return b"".join(decode_block(block).data for block in information)
        return b"".join(information)
    return b"".join(_mbus.decode_frame(frame).data[2:] for frame in push)


def vector_pushes(vector: Vector) -> list[Push]:
    if vector.is_amis:  # one reading per frame (and the search frame)
        return [(frame,) for frame in vector.frames]
    return [tuple(vector.frames)]


@dataclass(frozen=True)
class Source:
    """One decoder configuration and valid pushes it must decode."""

    name: str
    profile: Profile | None
    key: bytes | None
    auth_key: bytes | None
    pushes: tuple[Push, ...]

    def decoder(self) -> StreamDecoder:
        return StreamDecoder(self.profile, key=self.key, auth_key=self.auth_key)

    @property
    def frames(self) -> list[bytes]:
        return [frame for push in self.pushes for frame in push]


def _vector(vector_id: str) -> Vector:
    return next(v for v in VECTORS if v.id == vector_id)


def _sources() -> dict[str, list[Source]]:
    sources: dict[str, list[Source]] = {"amis": [], "netznoe": [], "wienernetze": [], "auto": []}
    for vector in VECTORS:
        if vector.id in BARE_APDU or vector.key is None:
            continue
        name = vector.profile.name
        own = vector_pushes(vector)
        key, auth = vector.key, vector.auth_key
        if name == "amis":
            pushes = own + amis_pushes(key)
        elif name in ("netznoe", "wienernetze"):
            pushes = own + dlms_pushes(name, key)
        else:
            pushes = []
        if pushes:
            sources[name].append(Source(vector.id, vector.profile, key, auth, tuple(pushes)))
        if vector.profile.positions:
            continue  # positional layouts cannot be decoded without their profile
        # Auto-detection: every transport on one line, with the plaintext AM550 push too.
        mixed = (
            own
            + vector_pushes(_vector("iskra-am550-hdlc-plain"))
            + amis_pushes(key)
            + dlms_pushes("dlms-mbus", key, auth, first=10)
            + dlms_pushes("dlms-hdlc", key, auth, first=20)
            + dlms_pushes("energienetze-steiermark", key, auth, first=30)
        )
        sources["auto"].append(Source(vector.id, None, key, auth, tuple(mixed)))
    return sources


SOURCES: Final = _sources()


def decode_all(decoder: StreamDecoder, chunks: Iterable[bytes]) -> list[Reading]:
    readings: list[Reading] = []
    for chunk in chunks:
        decoder.feed(chunk)
        readings.extend(decoder)
    decoder.close()
    readings.extend(decoder)
    return readings


# -- junk ---------------------------------------------------------------------------------------
#: Start bytes of every transport (M-Bus long/short, HDLC flag, bare APDU) and bytes that
#: follow them in real frames, so that junk often looks like the start of a frame.
FRAME_BYTES: Final = (0x68, 0x10, 0x7E, 0xDB, 0x16, 0xA0, 0xA8, 0x08, 0x53, 0xFF, 0xE6, 0xE7, 0x00)
FRAME_BYTE_STRINGS: Final = [bytes((b,)) for b in FRAME_BYTES]

_MEASURES: Final[dict[int, Callable[[bytes, int], int]]] = {
    _mbus.LONG_START: _mbus.measure_frame,
    _mbus.SHORT_START: _mbus.measure_frame,
    _hdlc.FLAG: _hdlc.measure_frame,
    _ciphering.GENERAL_GLO_CIPHERING: _ciphering.measure_apdu,
}


def contains_frame(data: bytes, source: Source) -> bool:
    """Whether a complete frame with a good checksum (or a bare APDU that decodes) is in data."""
    keys = Keys(source.key, source.auth_key)
    for pos, first in enumerate(data):
        measure = _MEASURES.get(first)
        size = measure(data, pos) if measure else 0
        if size <= 0:
            continue
        frame = data[pos : pos + size]
        try:
            if first == _ciphering.GENERAL_GLO_CIPHERING:
                decode_apdu(frame, source.profile, keys)
            elif first == _hdlc.FLAG:
                _hdlc.decode_frame(frame)
            else:
                _mbus.decode_frame(frame)
        except MeterError:
            continue
        return True
    return False


@st.composite
def fragments(draw: st.DrawFn, frames: Sequence[bytes]) -> bytes:
    """A piece of a real frame, at least three bytes short of it (so that flags around it
    cannot complete it)."""
    frame = draw(st.sampled_from(frames))
    size = draw(st.integers(1, max(1, len(frame) - 3)))
    start = draw(st.integers(0, len(frame) - size))
    return frame[start : start + size]


def junk(source: Source) -> st.SearchStrategy[bytes]:
    """Random bytes, frame-like bytes and pieces of real frames: never a whole valid frame,
    also not with an HDLC flag of the neighbouring frames on either side."""
    atom = st.one_of(
        st.binary(max_size=48),
        st.lists(st.sampled_from(FRAME_BYTES) | st.integers(0, 255), max_size=24).map(bytes),
        fragments(source.frames),
    )
    return (
        st.lists(atom, max_size=4)
        .map(b"".join)
        .filter(lambda data: not contains_frame(b"\x7e" + data + b"\x7e", source))
    )


def chunked(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        chunks.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return chunks


CHUNK_SIZES: Final = st.lists(st.integers(1, 600), min_size=1, max_size=12)


# -- (a) junk between valid frames --------------------------------------------------------------
@pytest.mark.parametrize("profile", ["amis", "netznoe", "wienernetze", "auto"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_valid_pushes_survive_junk_between_frames(profile: str, data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(SOURCES[profile]), label="source")
    pushes = data.draw(st.lists(st.sampled_from(source.pushes), min_size=1, max_size=6))
    frames = [frame for push in pushes for frame in push]
    reference_decoder = source.decoder()
    reference = decode_all(reference_decoder, [b"".join(frames)])
    assert reference_decoder.pop_errors() == []
    assert len(reference) == sum(push != (SND_NKE_AMIS,) for push in pushes)

    pieces = [data.draw(junk(source), label="junk") for _ in range(len(frames) + 1)]
    stream = pieces[0] + b"".join(
        frame + piece for frame, piece in zip(frames, pieces[1:], strict=True)
    )
    decoder = source.decoder()
    readings = decode_all(decoder, chunked(stream, data.draw(CHUNK_SIZES, label="chunks")))
    assert readings == reference
    assert decoder.buffered == 0


# -- (b) a corrupt byte ---------------------------------------------------------------------------
def profile_source(vector_id: str, name: str) -> Source:
    """The vector's push, then pushes of the same profile encoded with the vector's keys."""
    vector = _vector(vector_id)
    assert vector.key is not None
    encoded = (
        amis_pushes(vector.key)
        if name == "amis"
        else dlms_pushes(name, vector.key, vector.auth_key, first=100)
    )
    pushes = (*vector_pushes(vector), *encoded)
    return Source(vector_id, get_profile(name), vector.key, vector.auth_key, pushes)


def checked_region(frame: bytes) -> range:
    """Positions a checksum covers and that framing does not look at: M-Bus from the address
    to the checksum byte, HDLC from the information field to the FCS."""
    if frame[0] == _hdlc.FLAG:
        information = _hdlc.decode_frame(frame).information
        return range(len(frame) - 3 - len(information), len(frame) - 1)
    return range(5, len(frame) - 1)


CORRUPTION_SOURCES: Final = [
    ("amis-netzooe-spec-example", "amis"),
    ("kaifa-netznoe-official-example", "netznoe"),  # two M-Bus segments
    ("iskra-am550-wienernetze", "wienernetze"),
    ("lg-e450-hdlc-gbt-1", "dlms-hdlc"),  # three HDLC frames of GBT blocks, with a GCM tag
    ("iskra-am550-hdlc-plain", "dlms-hdlc"),  # three HDLC segments, plaintext
]


@pytest.mark.parametrize(("vector_id", "name"), CORRUPTION_SOURCES)
def test_corrupt_byte_is_a_checksum_error_and_the_next_push_decodes(
    vector_id: str, name: str
) -> None:
    if vector_id == "iskra-am550-hdlc-plain":
        vector = _vector(vector_id)
        pushes = (*vector_pushes(vector), *dlms_pushes(name, None))
        source = Source(vector_id, get_profile(name), None, None, pushes)
    else:
        source = profile_source(vector_id, name)
    bad, good = source.pushes[0], source.pushes[-1]
    expected = decode_all(source.decoder(), [b"".join(good)])
    assert len(expected) == 1
    for index, frame in enumerate(bad):
        checked = checked_region(frame)
        for pos in range(len(frame)):
            for mask in (0x01, 0x80, 0xFF):
                corrupt = bytearray(frame)
                corrupt[pos] ^= mask
                wire = b"".join((*bad[:index], corrupt, *bad[index + 1 :], *good))
                decoder = source.decoder()
                where = f"frame {index}, byte {pos}, mask {mask:#04x}"
                assert decode_all(decoder, [wire]) == expected, where
                if pos in checked:
                    assert decoder.stats.errors["checksum"] == 1, where
                    if len(bad) == 1:
                        assert set(decoder.stats.errors) == {"checksum"}, where


def test_auto_detection_takes_no_values_from_a_frame_that_failed_its_checksum() -> None:
    reading = _reading("dlms-hdlc", 0)
    for name in ("dlms-hdlc", "dlms-mbus"):
        frames = encode_dlms(reading, get_profile(name), key=KEY)
        for index, frame in enumerate(frames):
            for pos in checked_region(frame):
                corrupt = bytearray(frame)
                corrupt[pos] ^= 0x01
                wire = b"".join((*frames[:index], corrupt, *frames[index + 1 :]))
                decoder = StreamDecoder(None, key=KEY)
                assert decode_all(decoder, [wire]) == [], f"{name}, frame {index}, byte {pos}"
            assert decoder.stats.errors["checksum"] == 1


# -- (c) a bounded buffer -------------------------------------------------------------------------
BOUND: Final = 5000
PROFILE_NAMES: Final = [None, *PROFILES]


def _feed_bounded(decoder: StreamDecoder, data: bytes, rng: random.Random) -> None:
    pos = 0
    while pos < len(data):
        size = rng.randint(1, 8192)
        decoder.feed(data[pos : pos + size])
        pos += size
        assert decoder.buffered <= BOUND
        list(decoder)
    decoder.close()
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    "name", [None, "amis", "netznoe", "wienernetze", "energienetze-steiermark"]
)
def test_buffer_stays_bounded_on_a_megabyte_of_random_bytes(name: str | None) -> None:
    rng = random.Random(f"bounded-{name}")
    decoder = StreamDecoder(get_profile(name) if name else None, key=KEY)
    _feed_bounded(decoder, rng.randbytes(1 << 20), rng)
    assert decoder.stats.bytes_skipped > (1 << 20) * 0.9


def _longest_claims() -> list[bytes]:
    """Frame starts that pass every check framing can make before the end: each claims the
    longest frame of its transport."""
    hdlc_header = bytes((0xA7, 0xFF, 0xFF, 0x03, 0x13))
    hcs = _hdlc.crc16_x25(hdlc_header)
    return [
        bytes((0x68, 0xFF, 0xFF, 0x68, 0x53)),  # M-Bus: 261 bytes
        bytes((0x68, 0x02, 0x02, 0x68, 0x53)),  # M-Bus, Sagemcom length quirk: 264 bytes
        b"\x7e" + hdlc_header + bytes((hcs & 0xFF, hcs >> 8)),  # HDLC: 2049 bytes
        b"\xdb\x08" + bytes(8) + b"\x82\x0f\xf0\x30",  # bare APDU: 4094 bytes
    ]


@pytest.mark.parametrize("name", [None, "netznoe", "wienernetze", "energienetze-steiermark"])
@settings(max_examples=25, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(_longest_claims()) | st.binary(min_size=1, max_size=3000), max_size=30
    ),
    seed=st.integers(0, 2**32),
)
def test_buffer_stays_bounded_on_frame_claims(
    name: str | None, pieces: list[bytes], seed: int
) -> None:
    decoder = StreamDecoder(get_profile(name) if name else None, key=KEY)
    _feed_bounded(decoder, b"".join(pieces), random.Random(seed))


# -- (d) wrong keys ---------------------------------------------------------------------------
WRONG_KEY_SOURCES: Final = [
    ("amis-netzooe-spec-example", "amis"),
    ("kaifa-netznoe-official-example", "netznoe"),  # M-Bus, SC 0x20
    ("siemens-im350-wienernetze", "wienernetze"),  # HDLC, SC 0x20
    ("lg-e450-hdlc-gbt-1", "dlms-hdlc"),  # GBT, SC 0x30 with the right authentication key
    ("sagemcom-t210dr-energiesteiermark-p1", "energienetze-steiermark"),  # DSMR in GCM
]


@pytest.mark.parametrize("profile_known", [True, False], ids=["profile", "auto"])
@pytest.mark.parametrize(("vector_id", "name"), WRONG_KEY_SOURCES)
def test_wrong_key_is_reported_and_the_push_skipped(
    vector_id: str, name: str, profile_known: bool
) -> None:
    vector = _vector(vector_id)
    profile = get_profile(name) if profile_known else None
    # Our key is not the vector's: its push is a wrong-key push; ours decodes after it.
    ours = amis_pushes(KEY)[0] if name == "amis" else dlms_pushes(name, KEY, vector.auth_key)[0]
    if not profile_known and get_profile(name).positions:
        # A positional push cannot be decoded without its profile: ours is a netznoe push.
        ours = dlms_pushes("netznoe", KEY)[0]
    decoder = StreamDecoder(profile, key=KEY, auth_key=vector.auth_key)
    expected = decode_all(StreamDecoder(profile, key=KEY, auth_key=vector.auth_key), ours)
    readings = decode_all(decoder, [vector.wire, *ours])
    errors = decoder.pop_errors()
    assert [error.kind for error in errors] == ["wrong-key"]
    assert isinstance(errors[0], WrongKeyError)
    assert readings == expected
    assert len(readings) == 1


def test_wrong_key_for_a_bare_apdu() -> None:
    vector = _vector("sagemcom-t210dr-energiesteiermark-p1")
    profile = vector.profile
    with pytest.raises(WrongKeyError, match="wrong key"):
        decode_apdu(vector.wire, profile, Keys(KEY, vector.auth_key))
    with pytest.raises(WrongKeyError, match="wrong key"):
        decode_apdu(vector.wire, None, Keys(KEY))
    for push in dlms_pushes("dlms-hdlc", KEY, AUTH) + dlms_pushes("netznoe", KEY):
        apdu = apdu_of(push)
        assert decode_apdu(apdu, None, Keys(KEY, AUTH)).energy_import_wh is not None
        with pytest.raises(WrongKeyError, match="wrong key"):
            decode_apdu(apdu, None, Keys(vector.key, AUTH))
    with pytest.raises(WrongKeyError, match="wrong key"):
        decode_apdu(apdu, get_profile("netznoe"), Keys(vector.key))


# -- (e) fuzzing ----------------------------------------------------------------------------------
def _corpus() -> list[tuple[bytes | None, bytes | None, bytes]]:
    """Real and encoded wire bytes with their keys."""
    corpus = [(v.key, v.auth_key, v.wire) for v in VECTORS]
    for name in PROFILES:
        if name == "amis":
            corpus += [(KEY, None, b"".join(p)) for p in amis_pushes(KEY)]
            continue
        for key, auth in ((KEY, AUTH), (KEY, None)):
            corpus += [(key, auth, b"".join(p)) for p in dlms_pushes(name, key, auth)]
    return corpus


CORPUS: Final = _corpus()


@st.composite
def mutations(
    draw: st.DrawFn, corpus: Sequence[tuple[bytes | None, bytes | None, bytes]]
) -> tuple[bytes | None, bytes | None, bytes]:
    """A real or encoded wire: bit flips, truncation at either end, a slice cut out or doubled."""
    key, auth, wire = draw(st.sampled_from(corpus))
    data = bytearray(wire)
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, len(data)))
    operation = draw(st.sampled_from(["none", "keep", "cut", "double"]))
    if operation == "keep":
        data = data[start:end]
    elif operation == "cut":
        del data[start:end]
    elif operation == "double":
        data[start:start] = data[start:end]
    return key, auth, bytes(data)


def _feed_all(name: str | None, key: bytes | None, auth: bytes | None, data: bytes,
              sizes: Sequence[int]) -> None:  # fmt: skip
    decoder = StreamDecoder(get_profile(name) if name else None, key=key, auth_key=auth)
    for reading in decode_all(decoder, chunked(data, sizes)):
        assert isinstance(reading, Reading)
    assert decoder.buffered == 0
    assert all(isinstance(error, MeterError) for error in decoder.pop_errors())


@pytest.mark.parametrize("name", PROFILE_NAMES)
@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=2000)
    | st.lists(st.sampled_from(FRAME_BYTE_STRINGS) | st.binary(max_size=8), max_size=200).map(
        b"".join
    ),
    key=st.none() | st.binary(min_size=16, max_size=16),
    sizes=CHUNK_SIZES,
)
def test_random_bytes_never_raise(
    name: str | None, data: bytes, key: bytes | None, sizes: list[int]
) -> None:
    _feed_all(name, key, None, data, sizes)


@pytest.mark.parametrize("name", PROFILE_NAMES)
@settings(max_examples=60, deadline=None)
@given(mutated=mutations(CORPUS), sizes=CHUNK_SIZES)
def test_mutated_frames_never_raise(
    name: str | None, mutated: tuple[bytes | None, bytes | None, bytes], sizes: list[int]
) -> None:
    key, auth, data = mutated
    _feed_all(name, key, auth, data, sizes)


def _apdus() -> list[tuple[bytes | None, bytes | None, bytes]]:
    """Complete APDUs (transport removed): plaintext and ciphered notifications, DSMR text."""
    apdus: list[tuple[bytes | None, bytes | None, bytes]] = [
        (v.key, v.auth_key, v.wire) for v in VECTORS if v.id in BARE_APDU or v.frames[0][0] == 0xDB
    ]
    for name in PROFILES:
        if name == "amis":
            continue
        for key, auth in ((None, None), (KEY, None), (KEY, AUTH)):
            if key is None and get_profile(name).transport is Transport.P1_GCM:
                continue
            apdus += [(key, auth, apdu_of(push)) for push in dlms_pushes(name, key, auth)]
    return apdus


APDUS: Final = _apdus()


@st.composite
def dsmr_telegrams(draw: st.DrawFn) -> bytes:
    """Telegrams with a good CRC and arbitrary text where the values go."""
    value = st.text(alphabet="0123456789.,+-eE_ *kWhNaInfinitys()", max_size=14)
    lines = [
        f"1-0:{draw(st.integers(0, 99))}.{draw(st.integers(0, 9))}.0({draw(value)})"
        for _ in range(draw(st.integers(0, 6)))
    ]
    if draw(st.booleans()):
        lines.append(f"0-0:1.0.0({draw(st.text(alphabet='0123456789SW', max_size=14))})")
    body = ("/ECO5\\fuzz\r\n\r\n" + "\r\n".join(lines) + "\r\n!").encode("ascii")
    return body + f"{_dsmr.crc16_arc(body):04X}\r\n".encode("ascii")


@settings(max_examples=300, deadline=None)
@given(
    apdu=st.binary(max_size=600)
    | st.binary(max_size=300).map(lambda tail: b"\x0f" + tail)
    | st.binary(max_size=300).map(lambda tail: b"\xdb\x08" + tail)
    | dsmr_telegrams()
    | mutations(APDUS).map(lambda mutated: mutated[2]),
    name=st.sampled_from(PROFILE_NAMES),
    key=st.none() | st.just(KEY) | st.binary(min_size=16, max_size=16),
    auth_key=st.none() | st.just(AUTH),
    require_tag=st.booleans(),
)
def test_decode_apdu_raises_only_meter_errors(
    apdu: bytes, name: str | None, key: bytes | None, auth_key: bytes | None, require_tag: bool
) -> None:
    profile = get_profile(name) if name else None
    try:
        reading = decode_apdu(apdu, profile, Keys(key, auth_key, require_tag))
    except MeterError:
        return
    assert isinstance(reading, Reading)


@pytest.mark.parametrize("value", ["Infinity", "-inf", "NaN", "sNaN", "1E+999999999", "1e3"])
def test_dsmr_values_that_are_not_fixed_point_numbers_stay_text(value: str) -> None:
    # "1E+999999999" passed for a number once, and converting it to int did not finish.
    body = f"/ECO5\\fuzz\r\n\r\n1-0:1.8.0(1*kWh)\r\n1-0:2.8.0({value}*kWh)\r\n!".encode()
    telegram = body + f"{_dsmr.crc16_arc(body):04X}\r\n".encode()
    reading = decode_apdu(telegram, None, Keys())
    assert reading.obis["1.0.2.8.0.255"] == ObisValue(f"{value}*kWh", "")
    assert reading.energy_import_wh == 1000
    assert reading.energy_export_wh is None


def test_hdlc_frame_without_information_is_a_payload_error() -> None:
    for information in (b"", _hdlc.LLC_HEADERS[0]):
        decoder = StreamDecoder(get_profile("dlms-hdlc"))
        assert decode_all(decoder, [_hdlc.encode_frame(information)]) == []
        assert [error.kind for error in decoder.pop_errors()] == ["payload"]
    with pytest.raises(MeterError, match="APDU tag missing"):
        decode_apdu(b"", None, Keys())
