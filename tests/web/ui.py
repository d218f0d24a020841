"""What the browser tests of the web app share: signing in through the login form, and the
numbers as the app writes them (en-GB: "1,234 W", "12.35 kWh")."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.e2e.processes import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page

NBSP = "\u00a0"


def log_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login form; returns on "My energy"."""
    from playwright.sync_api import expect

    page.goto(base_url + "/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/energy$"))


def watts(power_w: int) -> str:
    """Power as the tiles show it in English, below 10 kW."""
    return f"{power_w:,}{NBSP}W"


def energy(energy_wh: int | None) -> str:
    """Energy as the app shows it in English, below 100 kWh: Wh below 1 kWh."""
    if energy_wh is None:
        return "–"
    if abs(energy_wh) < 1000:
        return f"{energy_wh:,}{NBSP}Wh"
    return f"{energy_wh / 1000:,.2f}{NBSP}kWh"


def number_in(text: str) -> int | None:
    """The whole number in a tile's text ("1,234 W" -> 1234; "–" -> None)."""
    digits = re.sub(r"[^\d]", "", text)
    return int(digits) if digits else None


def no_horizontal_scroll(page: Page) -> bool:
    width: bool = page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    return width


# --- the community screens' numbers, as the app writes them in English (en-GB) ----------------


def decimal_text(value: object, min_digits: int, max_digits: int) -> str:
    """A number as ``Intl.NumberFormat("en-GB")`` writes it with ``min_digits`` to
    ``max_digits`` decimals (half away from zero, thousands with a comma)."""
    from decimal import ROUND_HALF_UP, Decimal

    rounded = Decimal(str(value)).quantize(Decimal(1).scaleb(-max_digits), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{max_digits}f}"
    if max_digits > min_digits:
        whole, _, fraction = text.partition(".")
        fraction = fraction.rstrip("0").ljust(min_digits, "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return text


def ct_per_kwh(value: object) -> str:
    """A price as the app shows it: "12.50 ct/kWh"."""
    return f"{decimal_text(value, 2, 4)}{NBSP}ct/kWh"


def euro(value: object) -> str:
    """Euros to the cent: "€12.00" (a minus sign first: "-€1.50")."""
    text = decimal_text(value, 2, 2)
    return f"-€{text[1:]}" if text.startswith("-") else f"€{text}"


def kwp(value: object) -> str:
    return f"{decimal_text(value, 0, 3)}{NBSP}kWp"


def share(fraction: float | None) -> str:
    """A share 0..1 as a percentage with one decimal: "45.7%"."""
    if fraction is None:
        return "–"
    return f"{decimal_text(fraction * 100, 1, 1)}%"


def percent(value: int) -> str:
    return f"{value}%"


def km(value: float) -> str:
    return f"{decimal_text(value, 1, 1)}{NBSP}km"


def unlabelled_fields(page: Page) -> list[str]:
    """The form fields in the main area that have no accessible name."""
    fields: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("main input, main select, main textarea")]
            .filter((field) => field.type !== "hidden" && field.labels.length === 0
                && !field.getAttribute("aria-label") && !field.getAttribute("aria-labelledby"))
            .map((field) => field.outerHTML)"""
    )
    return fields
