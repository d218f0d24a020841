"""Turn a DATA-NOTIFICATION body into OBIS-labelled values, by OBIS codes or by position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Final

from ecommunity.meter import _axdr
from ecommunity.meter import _obis as obis
from ecommunity.meter._axdr import Structure
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


def label_body(body: _axdr.Data, profile: Profile | None) -> Labelled:
    """Label the values of a notification body according to the profile's layout.

    Without a profile, OBIS codes must be in the telegram.

    Raises:
        UnsupportedLayoutError: a positional body without a positional profile, or a body
            that does not fit the profile.
        PayloadError: a value that cannot be decoded (e.g. a bad date-time).
    """
    if not isinstance(body, Structure | list):
        raise UnsupportedLayoutError(f"notification body is a single {type(body).__name__}")
    if profile is not None and profile.layout is Layout.POSITIONAL:
        return _label_positional(body, profile)
    labelled = _label_obis(
        body, trailing_meter_number=bool(profile and profile.trailing_meter_number)
    )
    if not set(labelled.values) - {obis.CLOCK}:
        hint = "; the telegram has no OBIS codes: choose the operator's profile (--profile)"
        raise UnsupportedLayoutError("no OBIS-labelled values in the notification" + hint)
    return labelled


def _label_obis(body: Sequence[_axdr.Data], *, trailing_meter_number: bool) -> Labelled:
    """Flat triples (Netz NÖ), nested {OBIS, value[, scaler-unit]} (KSM West, AM550) and
    OBIS/value pairs (E450) all read as: an OBIS code, then its value, then optionally a
    scaler-unit structure. Reading in that order keeps a 6-byte value from passing for a code.
    """
    labelled = Labelled()
    items = list(_flatten(body))
    i = 0
    while i < len(items):
        item = items[i]
        if _is_obis(item) and i + 1 < len(items):
            assert isinstance(item, bytes)
            code = format_obis(item)
            raw = items[i + 1]
            i += 2
            scaler, unit = 0, None
            if i < len(items) and _is_scaler_unit(items[i]):
                scaler_unit = items[i]
                assert isinstance(scaler_unit, Structure)
                scaler, unit = int(scaler_unit[0]), DLMS_UNITS.get(int(scaler_unit[1]), "")  # type: ignore[arg-type]
                i += 1
            labelled.values[code] = _value(code, raw, scaler, unit)
            continue
        i += 1
        if isinstance(item, bytes) and looks_like_datetime(item) and labelled.clock is None:
            labelled.clock = decode_datetime(item)
        elif item is not None and not isinstance(item, Structure | list):
            labelled.unmapped.append(_plain(item))
    if trailing_meter_number and labelled.unmapped and isinstance(labelled.unmapped[-1], str):
        number = labelled.unmapped.pop()
        labelled.values[obis.METER_NUMBER] = ObisValue(number, "")
    if labelled.clock is not None and obis.CLOCK not in labelled.values:
        labelled.values[obis.CLOCK] = ObisValue(labelled.clock, "")
    return labelled


def _flatten(items: Sequence[_axdr.Data]) -> Iterator[_axdr.Data]:
    """Leaves in order, keeping 2-element scaler-unit structures whole."""
    for item in items:
        if isinstance(item, Structure | list) and not _is_scaler_unit(item):
            yield from _flatten(item)
        else:
            yield item


def _is_obis(item: _axdr.Data) -> bool:
    return isinstance(item, bytes) and len(item) == 6


def _is_scaler_unit(item: _axdr.Data) -> bool:
    return (
        isinstance(item, Structure)
        and len(item) == 2
        and isinstance(item[0], int)
        and isinstance(item[1], int)
        and not isinstance(item[0], bool)
        and -128 <= item[0] <= 127
    )


def _value(code: str, raw: _axdr.Data, scaler: int, unit: str | None) -> ObisValue:
    if isinstance(raw, bool) or raw is None:
        raise PayloadError(f"{code}: value of type {type(raw).__name__} not supported")
    if isinstance(raw, int):
        if unit is None:
            parts = code.split(".")
            unit = _DEFAULT_UNITS.get((int(parts[2]), int(parts[3])), "")
        return ObisValue(scale(raw, scaler), unit)
    if isinstance(raw, bytes) and (code == obis.CLOCK or looks_like_datetime(raw)):
        return ObisValue(decode_datetime(raw), "")
    if isinstance(raw, bytes | str):
        return ObisValue(_plain(raw), unit or "")
    if isinstance(raw, float):
        raise PayloadError(f"{code}: floating-point values are not supported")
    raise PayloadError(f"{code}: structured value not supported")


def _plain(item: _axdr.Data) -> Value:
    """An unlabelled leaf as a Value: text where the octets are printable."""
    if isinstance(item, bytes):
        if item.isascii() and item.decode("ascii").isprintable():
            return item.decode("ascii")
        return item.hex().upper()
    if isinstance(item, bool | float) or not isinstance(item, int | str):
        return str(item)
    return item


def _label_positional(body: Sequence[_axdr.Data], profile: Profile) -> Labelled:
    labelled = Labelled()
    leaves = list(_flatten(body))
    # The clock travels as an unlabelled 12-byte octet string in some positional layouts.
    rest: list[_axdr.Data] = []
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
        if index in used:
            continue
        value = _plain(item)
        if (
            isinstance(value, str)
            and obis.METER_NUMBER not in labelled.values
            and not isinstance(item, int)
        ):
            labelled.values[obis.METER_NUMBER] = ObisValue(value, "")
        else:
            labelled.unmapped.append(value)
    if labelled.clock is not None:
        labelled.values[obis.CLOCK] = ObisValue(labelled.clock, "")
    return labelled
