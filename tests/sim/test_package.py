"""The simulator imports on its own and stays out of the gateway and the cloud."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = [
    "ecommunity.gateway",
    "ecommunity.cloud",
    "serial",
    "sqlite3",
    "asyncio",
    "fastapi",
    "sqlalchemy",
    "holidays",  # loaded only when a year's holidays are first needed (~0.1 s)
]


def test_sim_imports_no_gateway_cloud_or_frameworks() -> None:
    code = (
        "import sys, ecommunity.sim\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
