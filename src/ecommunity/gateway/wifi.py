"""Wi-Fi through NetworkManager's ``nmcli`` (Raspberry Pi OS since Bookworm): list, connect.

Where there is no NetworkManager (no ``nmcli``, or the daemon is not running), every call
raises :class:`WifiUnavailableError`, whose message tells the user to change Wi-Fi in the
operating system's own settings.

The password never goes on nmcli's command line, where any local user could read it in
the process list (``/proc/PID/cmdline``) while nmcli runs: we start ``nmcli --ask`` and
write the password to its standard input, which nmcli reads when it asks for the
network's secret. It is never logged, and scrubbed from any nmcli message passed on.
(NetworkManager cannot run in the sandbox this was written in; the ``--ask`` route is
nmcli's documented prompt, exercised here only against a stand-in ``nmcli``.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NMCLI = "nmcli"
#: nmcli's exit code for "NetworkManager is not running".
_EXIT_NM_NOT_RUNNING = 8
_LIST_TIMEOUT_S = 30.0
#: How long nmcli waits for the connection to come up (its ``--wait``). [s]
_CONNECT_WAIT_S = 45
_UNAVAILABLE = (
    "NetworkManager (nmcli) is not available on this system: change Wi-Fi in the "
    "operating system's own settings"
)
_NOT_RUNNING = (
    "NetworkManager is not running on this system: change Wi-Fi in the operating "
    "system's own settings"
)
_NO_WIFI_DEVICE = "NetworkManager manages no Wi-Fi device on this system"


class WifiError(Exception):
    """nmcli failed; the message is nmcli's own (e.g. "Secrets were required, but not
    provided")."""


class WifiUnavailableError(WifiError):
    """No NetworkManager here (or no Wi-Fi device): Wi-Fi is changed elsewhere."""


@dataclass(frozen=True)
class WifiNetwork:
    """A network in range: one per SSID, with its strongest access point's values."""

    ssid: str
    signal_percent: int  #: signal quality as NetworkManager reports it [%]
    security: str  #: e.g. ``WPA2``, ``WPA1 WPA2``, ``WPA3``; empty for an open network
    in_use: bool  #: the gateway is connected to it

    @property
    def is_open(self) -> bool:
        return not self.security


def available() -> bool:
    """Whether nmcli exists and NetworkManager runs. Blocks for up to 5 s (runs nmcli):
    call it from a thread inside an event loop."""
    path = shutil.which(NMCLI)
    if path is None:
        return False
    try:
        proc = subprocess.run(
            [path, "--terse", "--fields", "RUNNING", "general", "status"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            env=_environment(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == "running"


async def list_networks(*, rescan: bool = False) -> list[WifiNetwork]:
    """The networks in range: the one in use first, then by signal; hidden ones left out.

    Args:
        rescan: scan now (takes seconds) rather than use a scan up to 30 s old.

    Raises:
        WifiUnavailableError: no nmcli, NetworkManager not running, or no Wi-Fi device.
        WifiError: nmcli failed (its message) or did not answer in time.
    """
    output = await _run_nmcli(
        "--terse",
        "--escape",
        "yes",
        "--fields",
        "IN-USE,SSID,SIGNAL,SECURITY",
        "device",
        "wifi",
        "list",
        "--rescan",
        "yes" if rescan else "auto",
        timeout_s=_LIST_TIMEOUT_S,
    )
    networks = parse_wifi_list(output)
    if not networks and not await _has_wifi_device():
        raise WifiUnavailableError(_NO_WIFI_DEVICE)
    return networks


async def connect(ssid: str, password: str | None) -> None:
    """Connect to a network (NetworkManager keeps the profile and reconnects after reboots).

    Args:
        ssid: the network's name.
        password: its passphrase; ``None`` for an open network (or one whose password
            NetworkManager already has).

    Raises:
        ValueError: empty SSID, or a password with a line break (it goes on stdin).
        WifiUnavailableError: no nmcli, NetworkManager not running, or no Wi-Fi device.
        WifiError: nmcli's message, e.g. a wrong password or a network out of range.
    """
    if not ssid:
        raise ValueError("an SSID is needed")
    if password is not None and ("\n" in password or "\r" in password):
        raise ValueError("a Wi-Fi password cannot contain a line break")
    ask = ("--ask",) if password is not None else ()
    logger.info("connecting to Wi-Fi %r (%s)", ssid, "password" if password else "no password")
    await _run_nmcli(
        *ask,
        "--wait",
        str(_CONNECT_WAIT_S),
        "device",
        "wifi",
        "connect",
        ssid,
        stdin=None if password is None else password + "\n",
        secret=password,
        timeout_s=_CONNECT_WAIT_S + 15,
    )
    logger.info("connected to Wi-Fi %r", ssid)


def split_terse(line: str) -> list[str]:
    """The fields of one line of ``nmcli --terse --escape yes`` output.

    nmcli separates fields with ``:`` and escapes ``:`` and ``\\`` inside a value with a
    backslash (``Home\\:Net`` is ``Home:Net``).
    """
    fields: list[str] = []
    current: list[str] = []
    chars = iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def parse_wifi_list(output: str) -> list[WifiNetwork]:
    """Networks from ``nmcli -t -e yes -f IN-USE,SSID,SIGNAL,SECURITY device wifi list``.

    An SSID seen from several access points (or bands) is listed once, with the strongest
    signal; hidden networks (empty SSID) are left out.

    Raises:
        WifiError: a line that is not four fields with a numeric signal.
    """
    best: dict[str, WifiNetwork] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = split_terse(line)
        if len(fields) != 4 or not fields[2].strip().isdigit():
            raise WifiError(f"unexpected nmcli output: {line!r}")
        in_use, ssid, signal, security = fields
        if not ssid:
            continue
        security = security.strip()
        network = WifiNetwork(
            ssid=ssid,
            signal_percent=int(signal),
            security="" if security == "--" else security,
            in_use=in_use.strip() == "*",
        )
        known = best.get(ssid)
        if known is not None:
            stronger = network if network.signal_percent > known.signal_percent else known
            network = WifiNetwork(
                ssid=ssid,
                signal_percent=stronger.signal_percent,
                security=stronger.security,
                in_use=known.in_use or network.in_use,
            )
        best[ssid] = network
    return sorted(best.values(), key=lambda n: (not n.in_use, -n.signal_percent, n.ssid))


async def _has_wifi_device() -> bool:
    output = await _run_nmcli("--terse", "--fields", "TYPE", "device", timeout_s=10)
    return any(split_terse(line)[0] == "wifi" for line in output.splitlines())


async def _run_nmcli(
    *args: str, timeout_s: float, stdin: str | None = None, secret: str | None = None
) -> str:
    """nmcli's standard output; its exit status and stderr turned into our errors."""
    try:
        proc = await asyncio.create_subprocess_exec(
            NMCLI,
            *args,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_environment(),
        )
    except FileNotFoundError:
        raise WifiUnavailableError(_UNAVAILABLE) from None
    except PermissionError as exc:
        raise WifiUnavailableError(f"{_UNAVAILABLE} ({exc.strerror})") from None
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(None if stdin is None else stdin.encode())
    except TimeoutError:
        raise WifiError(f"nmcli did not finish within {timeout_s:g} s") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: do not leave nmcli behind
            proc.kill()
            await proc.wait()
    if proc.returncode == _EXIT_NM_NOT_RUNNING:
        raise WifiUnavailableError(_NOT_RUNNING)
    if proc.returncode != 0:
        message = _scrub(err.decode("utf-8", "replace").strip(), secret)
        raise WifiError(message or f"nmcli failed with exit code {proc.returncode}")
    # With --ask, stdout holds nmcli's prompts (and whatever it echoed): never pass it on.
    return "" if secret else out.decode("utf-8", "replace")


def _scrub(message: str, secret: str | None) -> str:
    return message.replace(secret, "***") if secret else message


def _environment() -> dict[str, str]:
    # The C locale: field values and messages in English whatever the Pi's language.
    return {**os.environ, "LC_ALL": "C"}
