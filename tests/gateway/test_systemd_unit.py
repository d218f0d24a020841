"""The systemd unit in docs/systemd: systemd accepts it, and it runs ``ecommunity gateway run``
the way the install notes promise (user, groups, state directory, stop, sandbox)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ecommunity.cli import EXIT_USAGE, build_parser

UNIT = Path(__file__).resolve().parents[2] / "docs" / "systemd" / "ecommunity-gateway.service"
INSTALLED_EXECUTABLE = "/opt/ecommunity/venv/bin/ecommunity"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file → key → values in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"line {number}: keep directives on one line"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"line {number} is no key=value: {raw}"
        assert current is not None, f"line {number} comes before the first section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


def test_exec_start_runs_the_gateway_in_the_state_directory(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == INSTALLED_EXECUTABLE
    assert argv[1:3] == ["gateway", "run"]
    state = one(unit, "Service", "StateDirectory")
    assert state == "ecommunity-gateway"
    # %S is /var/lib for system services: the directory StateDirectory= creates and owns.
    data_dir = argv[argv.index("--data-dir") + 1]
    assert data_dir == f"%S/{state}"
    # The flags are the CLI's own: the command line parses into `gateway run`.
    args = build_parser().parse_args([arg.replace("%S", "/var/lib") for arg in argv[1:]])
    assert (args.command, args.gateway_command) == ("gateway", "run")
    assert args.data_dir == "/var/lib/ecommunity-gateway"


def test_runs_as_its_own_user_with_serial_access(unit: dict[str, dict[str, list[str]]]) -> None:
    assert one(unit, "Service", "User") == "ecommunity"
    assert "dialout" in one(unit, "Service", "SupplementaryGroups").split()
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert one(unit, "Service", "CapabilityBoundingSet") == ""
    # Settings file optional ("-"), so a fresh install starts without one.
    assert one(unit, "Service", "EnvironmentFile").startswith("-/etc/ecommunity/")


def test_restarts_on_failure_and_stops_cleanly(unit: dict[str, dict[str, list[str]]]) -> None:
    assert one(unit, "Service", "Restart") == "on-failure"
    assert float(one(unit, "Service", "RestartSec")) > 0
    assert str(EXIT_USAGE) in one(unit, "Service", "RestartPreventExitStatus").split()
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    # The reader may take 10 s to finish its reading; the uplink closes within 5 s.
    assert float(one(unit, "Service", "TimeoutStopSec")) >= 20
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_sandbox_still_reaches_serial_devices_and_network(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    service = unit["Service"]
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "ProtectHome") == "yes"
    assert one(unit, "Service", "PrivateTmp") == "yes"
    # PrivateDevices=yes would hide the serial adapters.
    assert service.get("PrivateDevices", ["no"]) == ["no"]
    assert one(unit, "Service", "DevicePolicy") == "closed"
    allowed = {value.split()[0]: value.split()[1] for value in service["DeviceAllow"]}
    for driver in ("char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-ttyS"):
        assert allowed.get(driver) == "rw", driver
    families = set(one(unit, "Service", "RestrictAddressFamilies").split())
    assert {"AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"} <= families
    # Nothing but the state directory is writable: no ReadWritePaths that widen it.
    assert "ReadWritePaths" not in service


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the checks above still ran)")
    # verify insists on an executable ExecStart; elsewhere the unit is verified as shipped.
    executable = Path(sys.executable).with_name("ecommunity")
    assert executable.exists(), "the ecommunity console script of this environment"
    text = UNIT.read_text(encoding="utf-8").replace(INSTALLED_EXECUTABLE, str(executable))
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 even for unknown keys and bad values: it only warns. Any output is a
    # problem in the unit.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
