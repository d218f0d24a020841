"""Simulated meters speak real frames: each push decodes to the reading it carries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ecommunity.meter import ACK, Reading, StreamDecoder, TagCheck, get_profile
from ecommunity.meter import _obis as obis
from ecommunity.sim import DEMO_KEY, Push, SimulatedHousehold, SimulatedMeter

AUTH_KEY = bytes(range(16, 32))
START = datetime(2025, 3, 30, 0, 59, 57, tzinfo=UTC)  # across the summer-time change


def _instants(reading: Reading) -> dict[str, object]:
    return {
        code: (item.value.astimezone(UTC) if isinstance(item.value, datetime) else item.value)
        for code, item in reading.obis.items()
    }


def assert_decodes_to(decoded: Reading, push: Push) -> None:
    expected = push.reading
    assert decoded.meter_timestamp is not None
    assert expected.meter_timestamp is not None
    assert decoded.meter_timestamp.astimezone(UTC) == push.sample.at
    assert expected.meter_timestamp.astimezone(UTC) == push.sample.at
    assert _instants(decoded) == _instants(expected)
    assert replace(decoded, meter_timestamp=None, obis={}) == replace(
        expected, meter_timestamp=None, obis={}
    )
    assert decoded.energy_import_wh == push.sample.energy_import_wh
    assert decoded.energy_export_wh == push.sample.energy_export_wh
    assert decoded.power_import_w == push.sample.power_import_w
    assert decoded.power_export_w == push.sample.power_export_w


def _pushes(meter: SimulatedMeter, count: int = 8) -> list[Push]:
    return [meter.push(START + timedelta(seconds=i)) for i in range(count)]


def test_amis_round_trip() -> None:
    household = SimulatedHousehold(seed=3, annual_kwh=3500, pv_kwp=5.0)
    meter = SimulatedMeter(household, get_profile("amis"), key=DEMO_KEY)
    decoder = StreamDecoder(get_profile("amis"), key=DEMO_KEY)
    pushes = _pushes(meter)
    for push in pushes:
        assert len(push.frames) == 1
        assert len(push.frames[0]) == 101
        decoder.feed(push.frames[0])
        (decoded,) = list(decoder)
        assert decoder.data_to_send() == ACK
        assert_decodes_to(decoded, push)
    assert decoder.pop_errors() == []
    numbers = [p.reading.frame_counter for p in pushes]
    first = numbers[0]
    assert first is not None
    assert numbers == [(first + i) & 0xFF for i in range(len(pushes))]  # the access number


@pytest.mark.parametrize(
    ("name", "auth"),
    [
        ("netznoe", False),
        ("salzburgnetz", True),
        ("tinetz", False),
        ("wienernetze", False),
        ("netzburgenland", True),
        ("energienetze-steiermark", True),
        ("dlms-hdlc", False),
    ],
)
def test_dlms_round_trip(name: str, auth: bool) -> None:
    profile = get_profile(name)
    household = SimulatedHousehold(seed=8, annual_kwh=5000, pv_kwp=9.0)
    auth_key = AUTH_KEY if auth else None
    meter = SimulatedMeter(household, profile, key=DEMO_KEY, auth_key=auth_key)
    decoder = StreamDecoder(profile, key=DEMO_KEY, auth_key=auth_key)
    stream = b""
    pushes = _pushes(meter)
    for push in pushes:
        stream += b"".join(push.frames)
    for i in range(0, len(stream), 61):  # as a serial line delivers them: in pieces
        decoder.feed(stream[i : i + 61])
    decoder.close()
    decoded = list(decoder)
    assert decoder.pop_errors() == []
    assert len(decoded) == len(pushes)
    for reading, push in zip(decoded, pushes, strict=True):
        assert_decodes_to(reading, push)
        assert reading.tag_check is (TagCheck.VERIFIED if auth else TagCheck.NOT_PRESENT)
        assert reading.meter_id is not None
    assert len({r.frame_counter for r in decoded}) == len(decoded)


def test_netznoe_carries_the_meter_number_and_phases() -> None:
    meter = SimulatedMeter(SimulatedHousehold(seed=2), get_profile("netznoe"), key=DEMO_KEY)
    reading = meter.push(START).reading
    assert reading.meter_id == meter.meter_number
    assert reading.voltage_l1_v is not None
    assert 200 < reading.voltage_l1_v < 250
    assert reading.current_l1_a is not None
    assert reading.obis[obis.METER_NUMBER].value == meter.meter_number


def test_a_dlms_push_in_the_clear() -> None:
    profile = get_profile("salzburgnetz")
    meter = SimulatedMeter(SimulatedHousehold(seed=2), profile, key=None)
    push = meter.push(START)
    decoder = StreamDecoder(profile)
    for frame in push.frames:
        decoder.feed(frame)
    (decoded,) = list(decoder)
    assert_decodes_to(decoded, push)
    assert decoded.frame_counter is None


@pytest.mark.parametrize("name", ["amis", "energienetze-steiermark"])
def test_encrypted_only_profiles_need_a_key(name: str) -> None:
    with pytest.raises(ValueError, match="key"):
        SimulatedMeter(SimulatedHousehold(seed=1), get_profile(name), key=None)


def test_a_wrong_key_does_not_decode() -> None:
    meter = SimulatedMeter(SimulatedHousehold(seed=1), get_profile("amis"), key=DEMO_KEY)
    decoder = StreamDecoder(get_profile("amis"), key=bytes(16))
    decoder.feed(meter.push(START).frames[0])
    assert list(decoder) == []
    assert [e.kind for e in decoder.pop_errors()] == ["wrong-key"]
