"""Round trips: a reading encoded as a profile's meter sends it decodes to the same values.

AMIS goes through :func:`encode_amis`, every DLMS profile through :func:`encode_dlms`, and both
come back through :class:`StreamDecoder` with the profile, as a reader would see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from string import ascii_uppercase, digits
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ecommunity.meter import (
    ACK,
    ObisValue,
    Profile,
    Reading,
    StreamDecoder,
    TagCheck,
    Transport,
    encode_amis,
    encode_dlms,
    get_profile,
)
from ecommunity.meter import _obis as obis
from ecommunity.meter._reading import Value

VIENNA: Final = ZoneInfo("Europe/Vienna")
INKASSO: Final = "1.0.1.128.0.255"
UINT32: Final = st.integers(0, 2**32 - 1)
INT32: Final = st.integers(-(2**31), 2**31 - 1)
KEYS: Final = st.binary(min_size=16, max_size=16)

DLMS_PROFILES: Final = (
    "netznoe",
    "tinetz",
    "salzburgnetz",
    "vorarlbergnetz",
    "wienernetze",
    "netzburgenland",
    "energienetze-steiermark",
    "dlms-hdlc",
    "dlms-mbus",
)


# -- time -------------------------------------------------------------------------------------
def _last_sunday(year: int, month: int) -> date:
    day = date(year, month, 31)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def _dst_change(year: int, autumn: bool) -> int:
    """The EU summer-time change of ``year`` (01:00 UTC on the last Sunday), as a timestamp."""
    day = _last_sunday(year, 10 if autumn else 3)
    return int(datetime(day.year, day.month, day.day, 1, tzinfo=UTC).timestamp())


def instants(first_year: int = 2000, last_year: int = 2099) -> st.SearchStrategy[datetime]:
    """Whole-second instants within the local years given, as Europe/Vienna datetimes.

    Half of them lie within two hours of a summer-time change, where the autumn hour
    happens twice and only the DST flag tells the two apart.
    """
    first = int(datetime(first_year, 1, 1, tzinfo=VIENNA).timestamp())
    last = int(datetime(last_year + 1, 1, 1, tzinfo=VIENNA).timestamp()) - 1
    near_change = st.builds(
        lambda year, autumn, offset: _dst_change(year, autumn) + offset,
        st.integers(first_year, last_year),
        st.booleans(),
        st.integers(-7200, 7200),
    )
    return st.one_of(st.integers(first, last), near_change).map(
        lambda seconds: datetime.fromtimestamp(seconds, VIENNA)
    )


def instant(when: datetime) -> datetime:
    """Aware datetimes in one zone: equality is then the same instant (PEP 495 aside)."""
    assert when.tzinfo is not None
    return when.astimezone(UTC)


def comparable(values: Mapping[str, ObisValue]) -> dict[str, tuple[object, str]]:
    """Registers with their clocks as instants: ``(value, unit)`` by OBIS code."""
    return {
        code: (instant(item.value) if isinstance(item.value, datetime) else item.value, item.unit)
        for code, item in values.items()
    }


# -- AMIS -------------------------------------------------------------------------------------
# The registers of an AMIS frame as the decoder names them. The reactive energies are the
# tariff-1 registers (x.8.1), which are the meter's totals.
_AMIS_UINT32: Final = {
    "1.0.1.8.0.255": "Wh",
    "1.0.2.8.0.255": "Wh",
    "1.0.3.8.1.255": "varh",
    "1.0.4.8.1.255": "varh",
    "1.0.1.7.0.255": "W",
    "1.0.2.7.0.255": "W",
    "1.0.3.7.0.255": "var",
    "1.0.4.7.0.255": "var",
}


@st.composite
def amis_readings(draw: st.DrawFn) -> Reading:
    """What the decoder must make of an AMIS frame: every field the frame carries."""
    when = draw(instants())
    values = {code: ObisValue(draw(UINT32), unit) for code, unit in _AMIS_UINT32.items()}
    values[INKASSO] = ObisValue(draw(INT32), "Wh")
    values[obis.CLOCK] = ObisValue(when, "")

    def number(code: str) -> int:
        value = values[code].value
        assert isinstance(value, int)
        return value

    return Reading(
        profile="amis",
        meter_id=None,  # AMIS meters send identification 0
        meter_timestamp=when,
        energy_import_wh=number("1.0.1.8.0.255"),
        energy_export_wh=number("1.0.2.8.0.255"),
        power_import_w=number("1.0.1.7.0.255"),
        power_export_w=number("1.0.2.7.0.255"),
        reactive_energy_import_varh=number("1.0.3.8.1.255"),
        reactive_energy_export_varh=number("1.0.4.8.1.255"),
        reactive_power_import_var=number("1.0.3.7.0.255"),
        reactive_power_export_var=number("1.0.4.7.0.255"),
        obis=values,
    )


def assert_same_reading(decoded: Reading, expected: Reading) -> None:
    """Equal in every field, with the clocks compared as instants."""
    assert expected.meter_timestamp is not None
    assert decoded.meter_timestamp is not None
    assert instant(decoded.meter_timestamp) == instant(expected.meter_timestamp)
    assert comparable(decoded.obis) == comparable(expected.obis)
    assert replace(decoded, meter_timestamp=None, obis={}) == replace(
        expected, meter_timestamp=None, obis={}
    )


@settings(max_examples=200, deadline=None)
@given(
    expected=amis_readings(),
    key=KEYS,
    access_number=st.integers(0, 255),
    fcb=st.booleans(),
)
def test_amis_round_trip(expected: Reading, key: bytes, access_number: int, fcb: bool) -> None:
    frame = encode_amis(expected, key, access_number=access_number, fcb=fcb)
    assert len(frame) == 101
    decoder = StreamDecoder(get_profile("amis"), key=key)
    decoder.feed(frame)
    decoder.close()
    (decoded,) = list(decoder)
    assert decoder.pop_errors() == []
    assert decoder.data_to_send() == ACK
    assert_same_reading(decoded, replace(expected, frame_counter=access_number))


# -- DLMS -------------------------------------------------------------------------------------
def fixed_point(whole: st.SearchStrategy[int]) -> st.SearchStrategy[Decimal]:
    """Decimals with 1 to 3 decimal places, as a meter's integer times its scaler gives them."""
    return st.builds(lambda n, places: Decimal(n).scaleb(-places), whole, st.integers(1, 3))


_ENERGY: Final = st.integers(0, 2**64 - 1)  # uint32 and uint64 registers
_POWER: Final = st.integers(-(2**31), 2**32 - 1)  # int32 and uint32 registers
_FRACTION: Final = fixed_point(st.integers(-(2**31), 2**32 - 1))
#: Meter numbers: printable octet strings that cannot pass for a COSEM date-time.
_METER_NUMBER: Final = st.text(alphabet=digits + ascii_uppercase, min_size=1, max_size=16)

#: The registers OBIS-labelled pushes carry: code, unit and values.
_REGISTERS: Final[dict[str, tuple[str, st.SearchStrategy[Value]]]] = {
    **{f"1.0.{c}.8.0.255": ("Wh" if c < 3 else "varh", _ENERGY) for c in (2, 3, 4)},
    # Tariff registers make pushes long enough for several M-Bus or HDLC segments / blocks.
    **{
        f"1.0.{c}.8.{t}.255": ("Wh" if c < 3 else "varh", _ENERGY)
        for c in (1, 2, 3, 4)
        for t in range(1, 9)
    },
    **{f"1.0.{c}.7.0.255": (("W", "W", "var", "var")[c - 1], _POWER) for c in (1, 2, 3, 4)},
    **dict.fromkeys((obis.VOLTAGE_L1, obis.VOLTAGE_L2, obis.VOLTAGE_L3), ("V", _FRACTION)),
    **dict.fromkeys((obis.CURRENT_L1, obis.CURRENT_L2, obis.CURRENT_L3), ("A", _FRACTION)),
    obis.POWER_FACTOR: ("", _FRACTION),
    obis.METER_NUMBER: ("", _METER_NUMBER),
}


@st.composite
def obis_values(draw: st.DrawFn, profile: Profile) -> dict[str, ObisValue]:
    """Registers of an OBIS-labelled push (flat triples, nested structures or DSMR text)."""
    optional = dict(_REGISTERS)
    if profile.transport is Transport.P1_GCM:
        # encode_dsmr writes numeric registers only (DSMR sends identifiers hex-encoded).
        del optional[obis.METER_NUMBER]
    strategies = {
        code: st.builds(ObisValue, values, st.just(unit))
        for code, (unit, values) in optional.items()
    }
    required = {obis.ENERGY_IMPORT: st.builds(ObisValue, _ENERGY, st.just("Wh"))}
    return draw(st.fixed_dictionaries(required, optional=strategies))


@st.composite
def positional_values(draw: st.DrawFn, profile: Profile) -> dict[str, ObisValue]:
    """One value per position of the profile, an integer times the position's scaler."""
    values: dict[str, ObisValue] = {}
    for position in profile.positions:
        if not position.unit:
            values[position.obis] = ObisValue(draw(_METER_NUMBER), "")
            continue
        raw = draw(UINT32)
        value = Decimal(raw).scaleb(position.scaler) if position.scaler < 0 else raw
        values[position.obis] = ObisValue(value, position.unit)
    if draw(st.booleans()) and all(p.obis != obis.METER_NUMBER for p in profile.positions):
        values[obis.METER_NUMBER] = ObisValue(draw(_METER_NUMBER), "")  # the IM350's serial
    return values


def _gaps(profile: Profile) -> int:
    """Elements of a positional push that no position maps (sent, kept as unmapped)."""
    front = max((p.index + 1 for p in profile.positions if p.index >= 0), default=0)
    back = sum(1 for p in profile.positions if p.index < 0)
    return front + back - len(profile.positions)


@st.composite
def dlms_readings(draw: st.DrawFn, profile: Profile) -> Reading:
    when = draw(instants())
    if profile.positions:
        values = draw(positional_values(profile))
        unmapped = tuple(draw(st.lists(UINT32, min_size=_gaps(profile), max_size=_gaps(profile))))
    else:
        values = draw(obis_values(profile))
        unmapped = ()
    return Reading.from_obis(profile.name, values, meter_timestamp=when, unmapped=unmapped)


_SYSTEM_TITLES: Final = st.builds(
    lambda maker, serial: maker.encode("ascii") + serial,
    st.text(alphabet=ascii_uppercase, min_size=3, max_size=3),
    st.binary(min_size=5, max_size=5),
)


@pytest.mark.parametrize("name", DLMS_PROFILES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_dlms_round_trip(name: str, data: st.DataObject) -> None:
    profile = get_profile(name)
    reading = data.draw(dlms_readings(profile), label="reading")
    # A P1 port carries bare general-glo-ciphering APDUs only: no plaintext there.
    plaintext_allowed = profile.transport is not Transport.P1_GCM
    key = data.draw(KEYS | st.none() if plaintext_allowed else KEYS, label="key")
    auth_key = data.draw(st.none() | KEYS, label="auth_key") if key is not None else None
    block_transfer = profile.transport is Transport.HDLC and data.draw(st.booleans(), "gbt")
    system_title = data.draw(_SYSTEM_TITLES, label="system_title")
    frame_counter = data.draw(UINT32, label="frame_counter")

    frames = encode_dlms(
        reading,
        profile,
        key=key,
        auth_key=auth_key,
        system_title=system_title,
        frame_counter=frame_counter,
        block_transfer=block_transfer,
    )
    event(f"{len(frames)} frame(s)")
    decoder = StreamDecoder(profile, key=key, auth_key=auth_key)
    for frame in frames:
        decoder.feed(frame)
    decoder.close()
    (decoded,) = list(decoder)
    assert decoder.pop_errors() == []
    assert decoder.stats.frames == len(frames)

    assert reading.meter_timestamp is not None
    expected = {**reading.obis, obis.CLOCK: ObisValue(reading.meter_timestamp, "")}
    assert comparable(decoded.obis) == comparable(expected)
    assert decoded.meter_timestamp is not None
    assert instant(decoded.meter_timestamp) == instant(reading.meter_timestamp)
    assert decoded.unmapped == reading.unmapped
    assert decoded.tag_check is (TagCheck.VERIFIED if auth_key else TagCheck.NOT_PRESENT)
    assert decoded.frame_counter == (frame_counter if key is not None else None)
    number = reading.obis.get(obis.METER_NUMBER)
    if number is not None:
        assert decoded.meter_id == number.value
    elif key is not None:
        assert decoded.meter_id == system_title[:3].decode() + system_title[3:].hex().upper()
    else:
        assert decoded.meter_id is None
    # The typed fields follow the registers.
    assert replace(decoded, obis={}) == replace(
        Reading.from_obis(
            name,
            decoded.obis,
            meter_id=decoded.meter_id,
            unmapped=decoded.unmapped,
            tag_check=decoded.tag_check,
            frame_counter=decoded.frame_counter,
        ),
        obis={},
    )
