"""The decoded result of one meter push: a frozen :class:`Reading`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from ecommunity.meter import _obis as obis

#: A register value: integers for counters, Decimal where a scaler makes it fractional,
#: str for identifiers, datetime for clocks.
Value = int | Decimal | str | datetime


class TagCheck(enum.Enum):
    """What became of the GCM authentication tag of a DLMS frame."""

    NOT_PRESENT = "not-present"  # security control 0x2x, or an unencrypted frame
    VERIFIED = "verified"
    FAILED = "failed"  # tag present but does not verify with the given authentication key
    UNCHECKED = "unchecked"  # tag present, no authentication key given


class ObisValue(NamedTuple):
    """One register: a value with its unit (``""`` where the quantity has none).

    A named tuple rather than a dataclass: a push carries dozens, and this is the hot path.
    """

    value: Value
    unit: str


def _freeze(values: Mapping[str, ObisValue]) -> Mapping[str, ObisValue]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True)
class Reading:
    """One push of a meter, decoded.

    Energies are the meter's cumulative counters, powers are the instantaneous values the
    meter reports. All typed fields are also available by full OBIS code in :attr:`obis`.
    """

    profile: str
    #: The meter's serial number or device name, if the frame carries one.
    meter_id: str | None
    #: The meter's own clock: timezone-aware (the frame's offset, or Europe/Vienna).
    meter_timestamp: datetime | None
    #: Active energy imported from the grid, +A. [Wh]
    energy_import_wh: int | None
    #: Active energy exported to the grid, -A. [Wh]
    energy_export_wh: int | None
    #: Active power imported, +P. [W]
    power_import_w: int | None
    #: Active power exported, -P. [W]
    power_export_w: int | None
    #: Reactive energy +R / -R. [varh]
    reactive_energy_import_varh: int | None = None
    reactive_energy_export_varh: int | None = None
    #: Reactive power +Q / -Q. [var]
    reactive_power_import_var: int | None = None
    reactive_power_export_var: int | None = None
    #: Phase voltages. [V]
    voltage_l1_v: Decimal | None = None
    voltage_l2_v: Decimal | None = None
    voltage_l3_v: Decimal | None = None
    #: Phase currents. [A]
    current_l1_a: Decimal | None = None
    current_l2_a: Decimal | None = None
    current_l3_a: Decimal | None = None
    #: Power factor. [1]
    power_factor: Decimal | None = None
    #: Every value the frame carried, by OBIS code ``A.B.C.D.E.F``.
    obis: Mapping[str, ObisValue] = field(default_factory=dict)
    #: Values of a positional layout that no source maps to an OBIS code (kept, not guessed).
    unmapped: tuple[Value, ...] = ()
    #: The GCM tag's check (DLMS), NOT_PRESENT for AMIS.
    tag_check: TagCheck = TagCheck.NOT_PRESENT
    #: DLMS frame counter or AMIS access number, when the frame has one.
    frame_counter: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "obis", _freeze(self.obis))

    @classmethod
    def from_obis(
        cls,
        profile: str,
        values: Mapping[str, ObisValue],
        *,
        meter_id: str | None = None,
        fallback_meter_id: str | None = None,
        meter_timestamp: datetime | None = None,
        unmapped: tuple[Value, ...] = (),
        tag_check: TagCheck = TagCheck.NOT_PRESENT,
        frame_counter: int | None = None,
    ) -> Reading:
        """Build a reading whose typed fields are taken from the OBIS registers.

        The meter id is ``meter_id`` if given, else the meter number or logical device name
        among the registers, else ``fallback_meter_id`` (e.g. the DLMS system title).
        """

        def whole(code: str) -> int | None:
            item = values.get(code)
            if item is None or not isinstance(item.value, int | Decimal):
                return None
            return int(item.value)

        def exact(code: str) -> Decimal | None:
            item = values.get(code)
            if item is None or not isinstance(item.value, int | Decimal):
                return None
            return Decimal(item.value)

        if meter_id is None:
            for code in (obis.METER_NUMBER, obis.LOGICAL_DEVICE_NAME):
                item = values.get(code)
                if item is not None and isinstance(item.value, str) and item.value:
                    meter_id = item.value
                    break
            else:
                meter_id = fallback_meter_id
        if meter_timestamp is None:
            clock = values.get(obis.CLOCK)
            if clock is not None and isinstance(clock.value, datetime):
                meter_timestamp = clock.value
        return cls(
            profile=profile,
            meter_id=meter_id,
            meter_timestamp=meter_timestamp,
            energy_import_wh=whole(obis.ENERGY_IMPORT),
            energy_export_wh=whole(obis.ENERGY_EXPORT),
            power_import_w=whole(obis.POWER_IMPORT),
            power_export_w=whole(obis.POWER_EXPORT),
            reactive_energy_import_varh=whole(obis.REACTIVE_ENERGY_IMPORT),
            reactive_energy_export_varh=whole(obis.REACTIVE_ENERGY_EXPORT),
            reactive_power_import_var=whole(obis.REACTIVE_POWER_IMPORT),
            reactive_power_export_var=whole(obis.REACTIVE_POWER_EXPORT),
            voltage_l1_v=exact(obis.VOLTAGE_L1),
            voltage_l2_v=exact(obis.VOLTAGE_L2),
            voltage_l3_v=exact(obis.VOLTAGE_L3),
            current_l1_a=exact(obis.CURRENT_L1),
            current_l2_a=exact(obis.CURRENT_L2),
            current_l3_a=exact(obis.CURRENT_L3),
            power_factor=exact(obis.POWER_FACTOR),
            obis=values,
            unmapped=unmapped,
            tag_check=tag_check,
            frame_counter=frame_counter,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: what ``ecommunity meter decode --json`` prints for one reading."""
        return {
            "profile": self.profile,
            "meter_id": self.meter_id,
            "meter_timestamp": _json_value(self.meter_timestamp),
            "energy_import_wh": self.energy_import_wh,
            "energy_export_wh": self.energy_export_wh,
            "power_import_w": self.power_import_w,
            "power_export_w": self.power_export_w,
            "tag_check": self.tag_check.value,
            "frame_counter": self.frame_counter,
            "obis": {
                code: {"value": _json_value(item.value), "unit": item.unit}
                for code, item in self.obis.items()
            },
            "unmapped": [_json_value(v) for v in self.unmapped],
        }


def _json_value(value: Value | None) -> int | float | str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        # JSON numbers: an integral Decimal stays an integer, a fraction becomes the
        # shortest float that prints back as the same digits.
        return int(value) if value == value.to_integral_value() else float(value)
    return value
