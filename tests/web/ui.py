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
