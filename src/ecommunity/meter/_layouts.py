"""Turn a DATA-NOTIFICATION body into OBIS-labelled values, by OBIS codes or by position."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from ecommunity.meter import _obis as obis
from ecommunity.meter._axdr import Leaf, ScalerUnit
from ecommunity.meter._cosem import decode_datetime, looks_like_datetime, scale
from ecommunity.meter._errors import PayloadError, UnsupportedLayoutError
from ecommunity.meter._obis import DLMS_UNITS, format_obis
from ecommunity.meter._profiles import Layout, Profile
from ecommunity.meter._reading import ObisValue, Value

# Units by OBIS group C (quantity) and D (processing) for telegrams that send no scaler-unit
# (e.g. L+G E450 pairs): energies in Wh/varh, powers in W/var, as the meters count them.
_DEFAULT_UNITS: Final[dict[tuple[int, int], str]] = {
    (1, 8): "Wh", (2, 8): "Wh", (3, 8): "varh", (4, 8): "varh",
    (1, 7): "W", (2, 7): "W", (3, 7): "var", (4, 7): "var",
    (32, 7): "V", (52, 7): "V", (72, 7): "V",
    (31, 7): "A", (51, 7): "A", (71, 7): "A",
}  # fmt: skip


class Labelled:
    """What a body yields: OBIS values, unlabelled leftovers and an unlabelled clock."""

    __slots__ = ("clock", "unmapped", "values")

    def __init__(self) -> None:
        self.values: dict[str, ObisValue] = {}
        self.unmapped: list[Value] = []
        self.clock: datetime | None = None


def label_body(leaves: Sequence[Leaf], compound: bool, profile: Profile | None) -> Labelled:
    """Label the leaves of a notification body according to the profile's layout.

    Without a profile, OBIS codes must be in the telegram.

    Raises:
        UnsupportedLayoutError: a positional body without a positional profile, or a body
            that does not fit the profile.
        PayloadError: a value that cannot be decoded (e.g. a bad date-time).
    """
    if not compound:
        raise UnsupportedLayoutError("notification body is a single value, not a structure")
    if profile is not None and profile.layout is Layout.POSITIONAL:
        return _label_positional(leaves, profile)
    labelled = _label_obis(
        leaves, trailing_meter_number=bool(profile and profile.trailing_meter_number)
    )
    if not set(labelled.values) - {obis.CLOCK}:
        hint = "; the telegram has no OBIS codes: choose the operator's profile (--profile)"
        raise UnsupportedLayoutError("no OBIS-labelled values in the notification" + hint)
    return labelled


def _label_obis(items: Sequence[Leaf], *, trailing_meter_number: bool) -> Labelled:
    """Flat triples (Netz NÖ), nested {OBIS, value[, scaler-unit]} (KSM West, AM550) and
    OBIS/value pairs (E450) all read as: an OBIS code, then its value, then optionally a
    scaler-unit structure. Reading in that order keeps a 6-byte value from passing for a code.
    """
    labelled = Labelled()
    values = labelled.values
    count = len(items)
    i = 0
    while i < count:
        item = items[i]
        if type(item) is bytes and len(item) == 6 and i + 1 < count:
            code = format_obis(item)
            raw = items[i + 1]
            i += 2
            scaler, unit = 0, None
            if i < count:
                scaler_unit = items[i]
                if type(scaler_unit) is ScalerUnit:
                    scaler, unit = scaler_unit.scaler, DLMS_UNITS.get(scaler_unit.unit, "")
                    i += 1
            values[code] = _value(code, raw, scaler, unit)
            continue
        i += 1
        if isinstance(item, bytes) and labelled.clock is None and looks_like_datetime(item):
            labelled.clock = decode_datetime(item)
        elif item is not None and not isinstance(item, ScalerUnit):
            labelled.unmapped.append(_plain(item))
    if trailing_meter_number and labelled.unmapped and isinstance(labelled.unmapped[-1], str):
        number = labelled.unmapped.pop()
        values[obis.METER_NUMBER] = ObisValue(number, "")
    if labelled.clock is not None and obis.CLOCK not in values:
        values[obis.CLOCK] = ObisValue(labelled.clock, "")
    return labelled


def _value(code: str, raw: Leaf, scaler: int, unit: str | None) -> ObisValue:
    if isinstance(raw, bool | ScalerUnit) or raw is None:
        raise PayloadError(f"{code}: value of type {type(raw).__name__} not supported")
    if isinstance(raw, int):
        if unit is None:
            unit = _default_unit(code)
        return ObisValue(scale(raw, scaler), unit)
    if isinstance(raw, bytes) and (code == obis.CLOCK or looks_like_datetime(raw)):
        return ObisValue(decode_datetime(raw), "")
    if isinstance(raw, bytes | str):
        return ObisValue(_plain(raw), unit or "")
    if isinstance(raw, float):
        raise PayloadError(f"{code}: floating-point values are not supported")
    raise PayloadError(f"{code}: structured value not supported")


def _default_unit(code: str) -> str:
    parts = code.split(".")
    return _DEFAULT_UNITS.get((int(parts[2]), int(parts[3])), "")


def _plain(item: Leaf) -> Value:
    """An unlabelled leaf as a Value: text where the octets are printable."""
    if isinstance(item, bytes):
        if item.isascii() and item.decode("ascii").isprintable():
            return item.decode("ascii")
        return item.hex().upper()
    if isinstance(item, bool | float) or not isinstance(item, int | str):
        return str(item)
    return item


def _label_positional(leaves: Sequence[Leaf], profile: Profile) -> Labelled:
    labelled = Labelled()
    # The clock travels as an unlabelled 12-byte octet string in some positional layouts.
    rest: list[Leaf] = []
    for item in leaves:
        if isinstance(item, bytes) and looks_like_datetime(item) and labelled.clock is None:
            labelled.clock = decode_datetime(item)
        else:
            rest.append(item)
    used: set[int] = set()
    for position in profile.positions:
        index = position.index if position.index >= 0 else len(rest) + position.index
        if not 0 <= index < len(rest):
            raise UnsupportedLayoutError(
                f"profile {profile.name} expects a value at position {position.index}, "
                f"the telegram has {len(rest)} values"
            )
        raw = rest[index]
        if position.unit and not isinstance(raw, int):
            raise UnsupportedLayoutError(
                f"profile {profile.name}: position {position.index} ({position.obis}) holds "
                f"{type(raw).__name__}, expected a number: is this the right profile?"
            )
        labelled.values[position.obis] = _value(position.obis, raw, position.scaler, position.unit)
        used.add(index)
    for index, item in enumerate(rest):
        if index in used or item is None:  # null-data carries nothing, as in _label_obis
            continue
        value = _plain(item)
        # Only an octet or text string can be the meter number: _plain also makes text of
        # booleans and floats, which are not identifiers.
        if isinstance(item, bytes | str) and obis.METER_NUMBER not in labelled.values:
            labelled.values[obis.METER_NUMBER] = ObisValue(value, "")
        else:
            labelled.unmapped.append(value)
    if labelled.clock is not None:
        labelled.values[obis.CLOCK] = ObisValue(labelled.clock, "")
    return labelled
