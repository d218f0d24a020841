"""OBIS codes (IEC 62056-61): six value groups A.B.C.D.E.F, written here as ``1.0.1.8.0.255``."""

from __future__ import annotations

from typing import Final

#: Unit names for the DLMS unit enumeration (Blue Book, class 3 "scaler_unit").
DLMS_UNITS: Final[dict[int, str]] = {
    8: "°",
    9: "°C",
    22: "W",  # kept for completeness; 27 is the active power unit used by meters
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    35: "V",
    44: "Hz",
    255: "",
}
DLMS_UNIT_CODES: Final[dict[str, int]] = {
    "W": 27,
    "VA": 28,
    "var": 29,
    "Wh": 30,
    "VAh": 31,
    "varh": 32,
    "A": 33,
    "V": 35,
    "Hz": 44,
    "": 255,
}

# The codes that become the typed fields of a Reading.
ENERGY_IMPORT: Final = "1.0.1.8.0.255"
ENERGY_EXPORT: Final = "1.0.2.8.0.255"
REACTIVE_ENERGY_IMPORT: Final = "1.0.3.8.0.255"
REACTIVE_ENERGY_EXPORT: Final = "1.0.4.8.0.255"
POWER_IMPORT: Final = "1.0.1.7.0.255"
POWER_EXPORT: Final = "1.0.2.7.0.255"
REACTIVE_POWER_IMPORT: Final = "1.0.3.7.0.255"
REACTIVE_POWER_EXPORT: Final = "1.0.4.7.0.255"
VOLTAGE_L1: Final = "1.0.32.7.0.255"
VOLTAGE_L2: Final = "1.0.52.7.0.255"
VOLTAGE_L3: Final = "1.0.72.7.0.255"
CURRENT_L1: Final = "1.0.31.7.0.255"
CURRENT_L2: Final = "1.0.51.7.0.255"
CURRENT_L3: Final = "1.0.71.7.0.255"
POWER_FACTOR: Final = "1.0.13.7.0.255"
CLOCK: Final = "0.0.1.0.0.255"
METER_NUMBER: Final = "0.0.96.1.0.255"
LOGICAL_DEVICE_NAME: Final = "0.0.42.0.0.255"


_FORMATTED: dict[bytes, str] = {}


def format_obis(code: bytes) -> str:
    """Format a 6-byte OBIS code as ``A.B.C.D.E.F``."""
    text = _FORMATTED.get(code)
    if text is None:
        if len(code) != 6:
            raise ValueError(f"an OBIS code has 6 bytes, got {len(code)}")
        text = ".".join(map(str, code))
        if len(_FORMATTED) < 4096:  # a meter sends the same few dozen codes: cache them
            _FORMATTED[code] = text
    return text


def parse_obis(text: str) -> bytes:
    """Parse ``A.B.C.D.E.F`` (also ``A-B:C.D.E*F``) into 6 bytes.

    Raises:
        ValueError: the text is not six groups of 0..255.
    """
    normalised = text.replace("-", ".").replace(":", ".").replace("*", ".")
    parts = normalised.split(".")
    if len(parts) != 6:
        raise ValueError(f"not an OBIS code: {text!r}")
    return bytes(int(p) for p in parts)
