"""Each package imports on its own, and dependencies point inward (style guide, Layout)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PACKAGES = [
    "ecommunity",
    "ecommunity.meter",
    "ecommunity.community",
    "ecommunity.forecast",
    "ecommunity.gateway",
    "ecommunity.cli",
]
#: Domain code (community, forecast): no framework, ORM, database driver, event loop or I/O
#: service, and nothing of the services built on it.
_DOMAIN_FORBIDDEN = [
    "serial",
    "sqlite3",
    "asyncio",
    "socket",
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "psycopg",
    "redis",
    "httpx",
    "ecommunity.cloud",
    "ecommunity.gateway",
]
#: Protocol code is sans-IO: no serial port, database, event loop or web framework.
FORBIDDEN = {
    "ecommunity.meter": ["serial", "sqlite3", "asyncio", "socket", "fastapi", "sqlalchemy"],
    "ecommunity.community": _DOMAIN_FORBIDDEN,
    # The models the simulator and the cloud share: the simulator builds on them, not back.
    "ecommunity.forecast": [*_DOMAIN_FORBIDDEN, "ecommunity.sim"],
}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_in_a_fresh_interpreter(package: str) -> None:
    forbidden = FORBIDDEN.get(package, [])
    code = (
        f"import sys, {package}\n"
        f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_cli_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from ecommunity import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'ecommunity.meter' not in sys.modules and 'serial' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
