"""Named meter profiles: which transport, line settings and value layout each operator uses.

Sources per profile are in docs/meter-protocols.md (summarised from the operators' interface
descriptions and public reader projects).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from ecommunity.meter import _obis as obis


class Transport(enum.Enum):
    """How frames travel on the line."""

    MBUS = "mbus"  # M-Bus long frames: AMIS (CI 0x5B) or DLMS segments (CI 0x00..0x1F)
    HDLC = "hdlc"  # HDLC frames with LLC, HDLC segmentation or DLMS general block transfer
    P1_GCM = "p1-gcm"  # bare general-glo-ciphering APDUs on a P1 port


class Layout(enum.Enum):
    """How the values of a DLMS push are labelled."""

    OBIS = "obis"  # OBIS codes in the telegram (flat triples, nested structures or pairs)
    POSITIONAL = "positional"  # no OBIS codes: meaning by position, from the operator
    AMIS = "amis"  # EN 13757-3 records (AMIS)
    DSMR = "dsmr"  # DSMR text telegram inside GCM


@dataclass(frozen=True, slots=True)
class LineSettings:
    """Serial line settings."""

    baudrate: int
    bytesize: int = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


@dataclass(frozen=True, slots=True)
class Position:
    """One value of a positional layout: its index (negative counts from the end)."""

    index: int
    obis: str
    unit: str
    scaler: int = 0


@dataclass(frozen=True, slots=True)
class Profile:
    """A meter/operator combination we can read."""

    name: str
    title: str
    operators: tuple[str, ...]
    meters: tuple[str, ...]
    transport: Transport
    line: LineSettings
    layout: Layout
    #: The reader must answer every frame addressed to it with E5 (AMIS).
    acknowledge: bool = False
    #: Positional layouts: where each value sits in the pushed structure.
    positions: tuple[Position, ...] = ()
    #: Flat-triple layouts (Netz NÖ) end with the meter number, sent without its OBIS code.
    trailing_meter_number: bool = False
    #: Positional layouts: the clock is an element of the pushed structure, not only the
    #: notification's own time stamp.
    clock_in_body: bool = False
    push_interval_s: float = 5.0
    notes: str = ""


def _ksm_west(name: str, title: str, *operators: str) -> Profile:
    """The KSM West operators share one configuration: nested {OBIS, value, scaler-unit}."""
    return Profile(
        name=name,
        title=title,
        operators=operators,
        meters=("Kaifa MA309M", "Honeywell"),
        transport=Transport.MBUS,
        line=LineSettings(2400, 8, "E", 1),
        layout=Layout.OBIS,
        push_interval_s=5.0,
    )


PROFILES: Final[dict[str, Profile]] = {
    p.name: p
    for p in (
        Profile(
            name="amis",
            title="Netz Oberösterreich: Siemens TD-3511 (AMIS), infrared head",
            operators=("Netz Oberösterreich",),
            meters=("Siemens TD-3511 (AMIS)",),
            transport=Transport.MBUS,
            line=LineSettings(9600, 8, "E", 1),
            layout=Layout.AMIS,
            acknowledge=True,
            push_interval_s=1.0,
            notes="the reader answers SND_NKE and every frame with E5",
        ),
        Profile(
            name="netznoe",
            title="Netz Niederösterreich: Kaifa MA309M / Sagemcom T210-D, M-Bus (RJ12)",
            operators=("Netz Niederösterreich",),
            meters=("Kaifa MA309M", "Sagemcom T210-D"),
            transport=Transport.MBUS,
            line=LineSettings(2400, 8, "E", 1),
            layout=Layout.OBIS,
            trailing_meter_number=True,
            push_interval_s=5.0,
        ),
        _ksm_west(
            "tinetz",
            "TINETZ / IKB (Tirol): Kaifa MA309M / Honeywell, M-Bus (RJ12)",
            "TINETZ-Tiroler Netze",
            "Innsbrucker Kommunalbetriebe",
        ),
        _ksm_west("salzburgnetz", "Salzburg Netz: Kaifa MA309M, M-Bus (RJ12)", "Salzburg Netz"),
        _ksm_west(
            "vorarlbergnetz",
            "Vorarlberger Energienetze: Kaifa MA309M, M-Bus (RJ12)",
            "Vorarlberger Energienetze",
        ),
        Profile(
            name="wienernetze",
            title="Wiener Netze: Siemens IM350, Iskraemeco AM550, L+G E450, infrared",
            operators=("Wiener Netze",),
            meters=("Siemens IM150/IM350", "Iskraemeco AM550", "Landis+Gyr E450"),
            transport=Transport.HDLC,
            line=LineSettings(9600, 8, "N", 1),
            layout=Layout.POSITIONAL,
            # The last eight uint32 of the structure; the IM350 puts its serial first.
            positions=(
                Position(-8, obis.ENERGY_IMPORT, "Wh"),
                Position(-7, obis.ENERGY_EXPORT, "Wh"),
                Position(-6, obis.REACTIVE_ENERGY_IMPORT, "varh"),
                Position(-5, obis.REACTIVE_ENERGY_EXPORT, "varh"),
                Position(-4, obis.POWER_IMPORT, "W"),
                Position(-3, obis.POWER_EXPORT, "W"),
                Position(-2, obis.REACTIVE_POWER_IMPORT, "var"),
                Position(-1, obis.REACTIVE_POWER_EXPORT, "var"),
            ),
            clock_in_body=True,
            push_interval_s=1.0,
        ),
        Profile(
            name="netzburgenland",
            title="Netz Burgenland: Landis+Gyr E450, M-Bus/HDLC customer interface",
            operators=("Netz Burgenland",),
            meters=("Landis+Gyr E450",),
            transport=Transport.HDLC,
            line=LineSettings(2400, 8, "N", 1),
            layout=Layout.POSITIONAL,
            # 14 values without OBIS codes. Voltages, currents, powers, energies and the
            # serial by order and type (our reading of a real capture); the three 16-bit
            # values at 10..12 are not described by any source we have: kept unmapped.
            positions=(
                Position(0, obis.VOLTAGE_L1, "V"),
                Position(1, obis.VOLTAGE_L2, "V"),
                Position(2, obis.VOLTAGE_L3, "V"),
                Position(3, obis.CURRENT_L1, "A", -2),
                Position(4, obis.CURRENT_L2, "A", -2),
                Position(5, obis.CURRENT_L3, "A", -2),
                Position(6, obis.POWER_IMPORT, "W"),
                Position(7, obis.POWER_EXPORT, "W"),
                Position(8, obis.ENERGY_IMPORT, "Wh"),
                Position(9, obis.ENERGY_EXPORT, "Wh"),
                Position(13, obis.METER_NUMBER, ""),
            ),
            push_interval_s=10.0,
        ),
        Profile(
            name="energienetze-steiermark",
            title="Energienetze Steiermark: Sagemcom T210-D-R, P1 (DSMR text in AES-GCM)",
            operators=("Energienetze Steiermark",),
            meters=("Sagemcom T210-D-R",),
            transport=Transport.P1_GCM,
            line=LineSettings(115200, 8, "N", 1),
            layout=Layout.DSMR,
            push_interval_s=1.0,
            notes="the DSMR CRC checks the plaintext when the authentication key does not",
        ),
        Profile(
            name="dlms-hdlc",
            title="Any DLMS push over HDLC with OBIS codes (e.g. L+G E450, Iskraemeco AM550)",
            operators=(),
            meters=("Landis+Gyr E450", "Iskraemeco AM550"),
            transport=Transport.HDLC,
            line=LineSettings(2400, 8, "N", 1),
            layout=Layout.OBIS,
        ),
        Profile(
            name="dlms-mbus",
            title="Any DLMS push over M-Bus with OBIS codes",
            operators=(),
            meters=(),
            transport=Transport.MBUS,
            line=LineSettings(2400, 8, "E", 1),
            layout=Layout.OBIS,
        ),
    )
}


def get_profile(name: str) -> Profile:
    """Look up a profile by name.

    Raises:
        KeyError: no such profile (the message lists the known ones).
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown meter profile {name!r}; known profiles: {known}") from None
