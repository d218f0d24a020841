"""A simulated smart meter: a household's samples as the readings and real encrypted frames of
one operator's meter (AMIS through :func:`encode_amis`, DLMS through :func:`encode_dlms`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from ecommunity.forecast import VIENNA
from ecommunity.meter import (
    Layout,
    ObisValue,
    Profile,
    Reading,
    TagCheck,
    Transport,
    encode_amis,
    encode_dlms,
)
from ecommunity.meter import _obis as obis
from ecommunity.sim import _random
from ecommunity.sim._household import MeterSample, SimulatedHousehold

#: AMIS registers beyond the typed fields (Netz OÖ specification, table 2).
AMIS_REACTIVE_ENERGY_IMPORT: Final = "1.0.3.8.1.255"
AMIS_REACTIVE_ENERGY_EXPORT: Final = "1.0.4.8.1.255"
AMIS_INKASSO: Final = "1.0.1.128.0.255"
_STREAM_IDENTITY: Final = 31


@dataclass(frozen=True, slots=True)
class Push:
    """One push of a meter: the reading a reader should decode and the frames that carry it."""

    sample: MeterSample
    reading: Reading
    frames: tuple[bytes, ...]


class SimulatedMeter:
    """The meter of a :class:`SimulatedHousehold`, speaking one profile's wire format.

    The reading of each :class:`Push` is what a :class:`~ecommunity.meter.StreamDecoder`
    with the same profile and keys decodes from its frames (clocks in Europe/Vienna).

    Raises:
        ValueError: the profile needs a key (AMIS, DSMR on P1) and none is given.
    """

    def __init__(
        self,
        household: SimulatedHousehold,
        profile: Profile,
        *,
        key: bytes | None,
        auth_key: bytes | None = None,
        meter_number: str | None = None,
        system_title: bytes | None = None,
    ) -> None:
        needs_key = profile.layout is Layout.AMIS or profile.transport is Transport.P1_GCM
        if key is None and needs_key:
            raise ValueError(f"profile {profile.name} sends encrypted frames only: a key is needed")
        self.household = household
        self.profile = profile
        self.key = key
        self.auth_key = auth_key if key is not None else None
        rng = _random.stream(household.seed, _STREAM_IDENTITY)
        self.meter_number = meter_number or f"1ECO{rng.randrange(10**10):010d}"
        self.system_title = system_title or b"ECO" + rng.randbytes(5)
        #: AMIS access number (8 bits) or DLMS frame counter of the next push.
        self.counter = rng.randrange(256) if profile.layout is Layout.AMIS else rng.randrange(10**6)

    def push(self, at: datetime) -> Push:
        """Advance the household to ``at`` and encode the meter's push for that second."""
        sample = self.household.sample(at)
        counter = self.counter
        self.counter += 1
        if self.profile.layout is Layout.AMIS:
            assert self.key is not None
            reading = amis_reading(sample, access_number=counter & 0xFF)
            frame = encode_amis(
                reading, self.key, access_number=counter & 0xFF, fcb=bool(counter & 1)
            )
            return Push(sample, reading, (frame,))
        frame_counter = counter & 0xFFFFFFFF
        reading = self._dlms_reading(sample, frame_counter)
        frames = encode_dlms(
            reading,
            self.profile,
            key=self.key,
            auth_key=self.auth_key,
            system_title=self.system_title,
            frame_counter=frame_counter,
        )
        return Push(sample, reading, tuple(frames))

    def _dlms_reading(self, sample: MeterSample, frame_counter: int) -> Reading:
        values, unmapped = dlms_registers(sample, self.profile, self.meter_number)
        if obis.METER_NUMBER in values or self.key is None:
            meter_id = None  # from the registers, or none in a plaintext push
        else:
            meter_id = self.system_title[:3].decode("ascii") + self.system_title[3:].hex().upper()
        return Reading.from_obis(
            self.profile.name,
            values,
            meter_id=meter_id,
            meter_timestamp=sample.at.astimezone(VIENNA),
            unmapped=unmapped,
            tag_check=TagCheck.VERIFIED if self.auth_key else TagCheck.NOT_PRESENT,
            frame_counter=frame_counter if self.key is not None else None,
        )


def amis_reading(sample: MeterSample, *, access_number: int) -> Reading:
    """The reading an AMIS (TD-3511) frame carries for a sample."""
    when = sample.at.astimezone(VIENNA)
    values = {
        obis.CLOCK: ObisValue(when, ""),
        obis.ENERGY_IMPORT: ObisValue(sample.energy_import_wh, "Wh"),
        obis.ENERGY_EXPORT: ObisValue(sample.energy_export_wh, "Wh"),
        AMIS_REACTIVE_ENERGY_IMPORT: ObisValue(sample.reactive_energy_import_varh, "varh"),
        AMIS_REACTIVE_ENERGY_EXPORT: ObisValue(sample.reactive_energy_export_varh, "varh"),
        obis.POWER_IMPORT: ObisValue(sample.power_import_w, "W"),
        obis.POWER_EXPORT: ObisValue(sample.power_export_w, "W"),
        obis.REACTIVE_POWER_IMPORT: ObisValue(sample.reactive_power_import_var, "var"),
        obis.REACTIVE_POWER_EXPORT: ObisValue(sample.reactive_power_export_var, "var"),
        AMIS_INKASSO: ObisValue(0, "Wh"),
    }
    return Reading(
        profile="amis",
        meter_id=None,  # AMIS meters send identification 0
        meter_timestamp=when,
        energy_import_wh=sample.energy_import_wh,
        energy_export_wh=sample.energy_export_wh,
        power_import_w=sample.power_import_w,
        power_export_w=sample.power_export_w,
        reactive_energy_import_varh=sample.reactive_energy_import_varh,
        reactive_energy_export_varh=sample.reactive_energy_export_varh,
        reactive_power_import_var=sample.reactive_power_import_var,
        reactive_power_export_var=sample.reactive_power_export_var,
        obis=values,
        frame_counter=access_number,
    )


def _numbers(sample: MeterSample) -> dict[str, tuple[int | Decimal, str]]:
    v1, v2, v3 = sample.voltages_v
    i1, i2, i3 = sample.currents_a
    return {
        obis.ENERGY_IMPORT: (sample.energy_import_wh, "Wh"),
        obis.ENERGY_EXPORT: (sample.energy_export_wh, "Wh"),
        obis.REACTIVE_ENERGY_IMPORT: (sample.reactive_energy_import_varh, "varh"),
        obis.REACTIVE_ENERGY_EXPORT: (sample.reactive_energy_export_varh, "varh"),
        obis.POWER_IMPORT: (sample.power_import_w, "W"),
        obis.POWER_EXPORT: (sample.power_export_w, "W"),
        obis.REACTIVE_POWER_IMPORT: (sample.reactive_power_import_var, "var"),
        obis.REACTIVE_POWER_EXPORT: (sample.reactive_power_export_var, "var"),
        obis.VOLTAGE_L1: (v1, "V"),
        obis.VOLTAGE_L2: (v2, "V"),
        obis.VOLTAGE_L3: (v3, "V"),
        obis.CURRENT_L1: (i1, "A"),
        obis.CURRENT_L2: (i2, "A"),
        obis.CURRENT_L3: (i3, "A"),
        obis.POWER_FACTOR: (sample.power_factor, ""),
    }


def dlms_registers(
    sample: MeterSample, profile: Profile, meter_number: str
) -> tuple[dict[str, ObisValue], tuple[int, ...]]:
    """The registers a DLMS push of ``profile`` carries for a sample, and the values of a
    positional layout that no OBIS code names (sent as 0)."""
    values = {obis.CLOCK: ObisValue(sample.at.astimezone(VIENNA), "")}
    numbers = _numbers(sample)
    if profile.layout is Layout.POSITIONAL:
        for position in profile.positions:
            if not position.unit:
                values[position.obis] = ObisValue(meter_number, "")
                continue
            number, _ = numbers[position.obis]
            exact = Decimal(number).quantize(Decimal(1).scaleb(position.scaler))
            values[position.obis] = ObisValue(
                exact if position.scaler < 0 else int(exact), position.unit
            )
        if all(p.obis != obis.METER_NUMBER for p in profile.positions):
            values[obis.METER_NUMBER] = ObisValue(meter_number, "")  # as the IM350 sends it
        front = max((p.index + 1 for p in profile.positions if p.index >= 0), default=0)
        back = sum(1 for p in profile.positions if p.index < 0)
        return values, (0,) * (front + back - len(profile.positions))
    for code, (number, unit) in numbers.items():
        values[code] = ObisValue(number, unit)
    if profile.layout is not Layout.DSMR:  # DSMR text carries numeric registers only
        values[obis.METER_NUMBER] = ObisValue(meter_number, "")
    return values, ()
