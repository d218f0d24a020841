"""Suite-wide hooks: a one-line summary of tests skipped for want of PostgreSQL or Redis, and
one for want of Debian's chromium (the browser fixtures of tests/browser.py)."""

from __future__ import annotations

import pytest

from tests.services import services_required

# Registered as a plugin, not imported here: pytest must import it itself to rewrite its asserts.
pytest_plugins = ["tests.browser"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.browser import CHROMIUM_MISSING

    skipped = terminalreporter.stats.get("skipped", [])
    missing = [r for r in skipped if "not reachable on" in str(getattr(r, "longrepr", ""))]
    no_browser = [r for r in skipped if CHROMIUM_MISSING in str(getattr(r, "longrepr", ""))]
    if no_browser:
        terminalreporter.write_line(
            f"browser: {len(no_browser)} tests skipped because Debian's chromium is not "
            "installed here (apt-get install -y chromium; ECOMMUNITY_REQUIRE_SERVICES=1 makes "
            "that a failure)",
            yellow=True,
        )
    if missing:
        terminalreporter.write_line(
            f"services: {len(missing)} tests skipped because PostgreSQL or Redis is not "
            "reachable here (set ECOMMUNITY_REQUIRE_SERVICES=1 to make that a failure)",
            yellow=True,
        )
    elif services_required():
        terminalreporter.write_line("services: PostgreSQL and Redis were required and used")
