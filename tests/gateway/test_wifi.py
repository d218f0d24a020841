"""Wi-Fi over NetworkManager's nmcli.

The no-NetworkManager path runs for real: this machine has no nmcli. NetworkManager itself
cannot run in this sandbox (no system D-Bus, no Wi-Fi hardware), so the command-line
contract (arguments, password on stdin and never in argv, exit codes, stderr) is checked
against a stand-in ``nmcli`` put first on PATH, which records how it was called and
answers like nmcli does. Parsing is checked against output in nmcli's terse format.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest

from ecommunity.gateway import wifi
from ecommunity.gateway.wifi import (
    WifiError,
    WifiNetwork,
    WifiUnavailableError,
    parse_wifi_list,
    split_terse,
)

# `nmcli -t -e yes -f IN-USE,SSID,SIGNAL,SECURITY device wifi list`, as on a Pi 4 (dual band:
# the home network appears once per band), with the escapes nmcli writes.
WIFI_LIST = r"""*:Home\:Net:72:WPA2
 :Home\:Net:48:WPA2
 :Nachbar 5G:81:WPA1 WPA2
 :Café Gast:35:
 :back\\slash:20:WPA3
 ::64:WPA2
 :Home\:Net:77:WPA2
"""

FAKE_NMCLI = """#!{python}
import json, os, sys
record = {{"argv": sys.argv[1:], "stdin": "" if sys.stdin is None else sys.stdin.read(),
          "lc_all": os.environ.get("LC_ALL"), "pid": os.getpid()}}
with open(os.environ["FAKE_NMCLI_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
mode = os.environ["FAKE_NMCLI_MODE"]
if mode == "hang":
    import time
    time.sleep(60)
if mode == "not-running":
    sys.stderr.write("Error: NetworkManager is not running.\\n")
    sys.exit(8)
if mode == "wrong-password":
    # nmcli prints its prompt (readline may echo what it read) on stdout.
    sys.stdout.write("Password: " + record["stdin"])
    sys.stderr.write("Error: Connection activation failed: Secrets were required, but not "
                     "provided (key " + record["stdin"].strip() + " refused).\\n")
    sys.exit(4)
if "list" in sys.argv:
    sys.stdout.write(os.environ.get("FAKE_NMCLI_LIST", ""))
elif sys.argv[-1] == "device":
    sys.stdout.write(os.environ.get("FAKE_NMCLI_DEVICES", ""))
elif "status" in sys.argv:
    sys.stdout.write("running\\n")
elif "connect" in sys.argv:
    sys.stdout.write("Device 'wlan0' successfully activated.\\n")
"""


@pytest.fixture
def fake_nmcli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in nmcli first on PATH (see the module docstring); returns its call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nmcli"
    script.write_text(FAKE_NMCLI.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_NMCLI_LOG", str(log))
    monkeypatch.setenv("FAKE_NMCLI_MODE", "ok")
    return log


def calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


# --- no NetworkManager -------------------------------------------------------------------


def test_without_nmcli_everything_says_to_use_the_system_settings() -> None:
    """For real: this machine has no NetworkManager."""
    if shutil.which("nmcli") is not None:
        pytest.skip("this machine has nmcli (the empty-PATH test covers the absent case)")
    assert wifi.available() is False
    with pytest.raises(WifiUnavailableError, match="operating system's own settings"):
        asyncio.run(wifi.list_networks())
    with pytest.raises(WifiUnavailableError, match=r"NetworkManager \(nmcli\) is not available"):
        asyncio.run(wifi.connect("Home", "correct horse"))


def test_without_nmcli_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert wifi.available() is False
    with pytest.raises(WifiUnavailableError, match="operating system's own settings"):
        asyncio.run(wifi.list_networks())


def test_networkmanager_not_running(fake_nmcli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NMCLI_MODE", "not-running")
    assert wifi.available() is False
    with pytest.raises(WifiUnavailableError, match="NetworkManager is not running"):
        asyncio.run(wifi.list_networks())
    with pytest.raises(WifiUnavailableError, match="operating system's own settings"):
        asyncio.run(wifi.connect("Home", None))


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        (r"*:Home\:Net:72:WPA2", ["*", "Home:Net", "72", "WPA2"]),
        (r" :back\\slash:20:", [" ", "back\\slash", "20", ""]),
        (r"::64:WPA2", ["", "", "64", "WPA2"]),
        (r"a\\\:b:c", ["a\\:b", "c"]),
        ("trailing\\", ["trailing\\"]),
    ],
)
def test_split_terse_undoes_nmcli_escapes(line: str, fields: list[str]) -> None:
    assert split_terse(line) == fields


def test_parse_wifi_list_one_entry_per_ssid_in_use_first_then_by_signal() -> None:
    assert parse_wifi_list(WIFI_LIST) == [
        WifiNetwork("Home:Net", 77, "WPA2", in_use=True),
        WifiNetwork("Nachbar 5G", 81, "WPA1 WPA2", in_use=False),
        WifiNetwork("Café Gast", 35, "", in_use=False),
        WifiNetwork("back\\slash", 20, "WPA3", in_use=False),
    ]
    assert parse_wifi_list(WIFI_LIST)[2].is_open


@pytest.mark.parametrize("bad", ["*:Home:WPA2\n", ":Home:strong:WPA2\n", "a:b:1:c:d\n"])
def test_parse_wifi_list_refuses_unexpected_output(bad: str) -> None:
    with pytest.raises(WifiError, match="unexpected nmcli output"):
        parse_wifi_list(bad)


# --- the nmcli command line (stand-in nmcli) ----------------------------------------------


def test_list_networks_runs_nmcli_terse_and_parses_it(
    fake_nmcli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NMCLI_LIST", WIFI_LIST)
    networks = asyncio.run(wifi.list_networks())
    assert [n.ssid for n in networks] == ["Home:Net", "Nachbar 5G", "Café Gast", "back\\slash"]
    (call,) = calls(fake_nmcli)
    assert call["argv"] == [
        "--terse",
        "--escape",
        "yes",
        "--fields",
        "IN-USE,SSID,SIGNAL,SECURITY",
        "device",
        "wifi",
        "list",
        "--rescan",
        "auto",
    ]
    assert call["lc_all"] == "C"
    asyncio.run(wifi.list_networks(rescan=True))
    assert calls(fake_nmcli)[-1]["argv"][-2:] == ["--rescan", "yes"]  # type: ignore[index]


def test_no_networks_and_no_wifi_device_is_unavailable(
    fake_nmcli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NMCLI_DEVICES", "ethernet\nloopback\n")
    with pytest.raises(WifiUnavailableError, match="no Wi-Fi device"):
        asyncio.run(wifi.list_networks())
    monkeypatch.setenv("FAKE_NMCLI_DEVICES", "ethernet\nwifi\n")
    assert asyncio.run(wifi.list_networks()) == []


def test_available_when_networkmanager_runs(fake_nmcli: Path) -> None:
    assert wifi.available() is True
    assert calls(fake_nmcli)[0]["argv"] == ["--terse", "--fields", "RUNNING", "general", "status"]


def test_connect_passes_the_password_on_stdin_never_in_argv(fake_nmcli: Path) -> None:
    asyncio.run(wifi.connect("Home:Net", "correct horse battery"))
    (call,) = calls(fake_nmcli)
    assert call["argv"] == ["--ask", "--wait", "45", "device", "wifi", "connect", "Home:Net"]
    assert call["stdin"] == "correct horse battery\n"


def test_connect_to_an_open_network_asks_nothing(fake_nmcli: Path) -> None:
    asyncio.run(wifi.connect("Café Gast", None))
    (call,) = calls(fake_nmcli)
    assert call["argv"] == ["--wait", "45", "device", "wifi", "connect", "Café Gast"]
    assert call["stdin"] == ""


def test_a_failed_connect_carries_nmcli_message_without_the_password(
    fake_nmcli: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FAKE_NMCLI_MODE", "wrong-password")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WifiError) as failure:
        asyncio.run(wifi.connect("Home", "hunter2-secret"))
    assert not isinstance(failure.value, WifiUnavailableError)
    assert str(failure.value).startswith("Error: Connection activation failed: Secrets were")
    assert "hunter2-secret" not in str(failure.value)
    assert "***" in str(failure.value)
    assert "hunter2-secret" not in caplog.text


def test_an_nmcli_that_hangs_is_stopped(fake_nmcli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NMCLI_MODE", "hang")
    monkeypatch.setattr(wifi, "_LIST_TIMEOUT_S", 1.0)
    with pytest.raises(WifiError, match="did not finish within 1 s"):
        asyncio.run(wifi.list_networks())
    (call,) = calls(fake_nmcli)
    assert not Path(f"/proc/{call['pid']}").exists()


@pytest.mark.parametrize(
    ("ssid", "password", "message"),
    [("", "pw", "SSID"), ("Home", "two\nlines", "line break")],
)
def test_connect_refuses_bad_arguments(ssid: str, password: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        asyncio.run(wifi.connect(ssid, password))
