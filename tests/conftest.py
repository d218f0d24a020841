"""Suite-wide hooks: a one-line summary of tests skipped for want of PostgreSQL or Redis."""

from __future__ import annotations

import pytest

from tests.services import services_required


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    missing = [r for r in skipped if "not reachable on" in str(getattr(r, "longrepr", ""))]
    if missing:
        terminalreporter.write_line(
            f"services: {len(missing)} tests skipped because PostgreSQL or Redis is not "
            "reachable here (set ECOMMUNITY_REQUIRE_SERVICES=1 to make that a failure)",
            yellow=True,
        )
    elif services_required():
        terminalreporter.write_line("services: PostgreSQL and Redis were required and used")
