"""The simulated neighbourhood of ``ecommunity demo``: households, their meters and logins.

Deterministic for a number of households, so that a demo started again with the same data
directory finds the same people, meters and keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

#: One password for every demo account: the demo is for trying things out, never for real data.
DEMO_PASSWORD: Final = "ecommunity-demo"
DEMO_DOMAIN: Final = "demo.ecommunity.at"
OPERATOR_EMAIL: Final = f"operator@{DEMO_DOMAIN}"
MEMBER_EMAIL: Final = f"member@{DEMO_DOMAIN}"

# Meter profiles of the households, in turn: Netz OÖ's AMIS meters and two DLMS operators.
_PROFILES: Final = ("amis", "amis", "wienernetze", "amis", "netznoe", "amis")
_STREETS: Final = ("Lindenweg", "Hauptstraße", "Am Bach", "Sonnenhang", "Kirchengasse")


@dataclass(frozen=True)
class Household:
    """A home with a meter, a gateway and an account."""

    number: int
    name: str
    email: str
    display_name: str
    #: Consumption per year. [kWh]
    annual_kwh: float
    #: Rooftop PV peak power; 0 without PV. [kWp]
    pv_kwp: float
    profile: str
    seed: int
    #: The community's own plant (a producer), not a home.
    plant: bool = False
    key: bytes = field(repr=False, default=b"")

    @property
    def metering_point(self) -> str:
        """An Austrian metering point number (``AT`` + 31 characters) for the community."""
        grid_operator = "003000"  # Netz OÖ's operator number in the demo
        postal_code = "04020"
        return f"AT{grid_operator}{postal_code}{self.number:020d}"


def households(count: int) -> list[Household]:
    """``count`` homes (every third with PV) and the community's PV plant, in a fixed order.

    The first home belongs to the member login the demo prints.

    Raises:
        ValueError: ``count`` is not between 1 and 200.
    """
    if not 1 <= count <= 200:
        raise ValueError(f"between 1 and 200 households, got {count}")
    homes = []
    for number in range(1, count + 1):
        with_pv = number % 3 == 1
        email = MEMBER_EMAIL if number == 1 else f"household{number}@{DEMO_DOMAIN}"
        homes.append(
            Household(
                number=number,
                name=f"{_STREETS[number % len(_STREETS)]} {number}",
                email=email,
                display_name=f"Household {number}",
                annual_kwh=2_500 + (number * 733) % 2_500,
                pv_kwp=(4.0 + number % 5) if with_pv else 0.0,
                profile=_PROFILES[(number - 1) % len(_PROFILES)],
                seed=number,
                key=_key(number),
            )
        )
    plant_number = count + 1
    homes.append(
        Household(
            number=plant_number,
            name="Community PV plant",
            email=OPERATOR_EMAIL,
            display_name="Community operator",
            annual_kwh=300,  # the inverter's own use
            pv_kwp=max(20.0, 2.5 * count),
            profile="amis",
            seed=plant_number,
            plant=True,
            key=_key(plant_number),
        )
    )
    return homes


def _key(number: int) -> bytes:
    # A meter key per household, as grid operators issue them; derived so a restart agrees.
    return hashlib.sha256(f"ecommunity demo meter {number}".encode()).digest()[:16]
