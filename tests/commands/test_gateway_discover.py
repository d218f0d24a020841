"""``ecommunity gateway discover`` as a user runs it: a real subprocess browsing the real
network stack for an :class:`Announcer` started by the test (interface: ``tests.multicast``).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import uuid
from pathlib import Path

import pytest

from ecommunity.commands.gateway_discover import report
from ecommunity.gateway.mdns import Announcement, Announcer
from tests.multicast import multicast_interface


@pytest.fixture
def interface() -> str:
    return multicast_interface()


async def discover(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ecommunity",
        "gateway",
        "discover",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def announced_while(ann: Announcement, interface: str, *args: str) -> tuple[int, str, str]:
    """Run ``gateway discover ARGS`` while ``ann`` is announced on ``interface``."""

    async def scenario() -> tuple[int, str, str]:
        async with Announcer(interfaces=[interface]) as announcer:
            await announcer.start(ann)
            return await discover(*args)

    return asyncio.run(scenario())


def new_announcement(setup_state: str) -> Announcement:
    return Announcement(
        gateway_id=f"cli-{uuid.uuid4().hex[:12]}",
        name="Keller Pi",
        port=18081,
        version="9.8.7",
        setup_state=setup_state,
    )


def test_json_lists_the_announced_gateway(interface: str) -> None:
    ann = new_announcement("setup")
    code, out, err = announced_while(
        ann, interface, "--json", "--timeout", "2", "--interface", interface
    )
    assert code == 0, err
    (entry,) = [g for g in json.loads(out) if g["id"] == ann.gateway_id]
    assert entry == {
        "name": "Keller Pi",
        "instance": f"Keller Pi ({ann.gateway_id[-6:]})",
        "id": ann.gateway_id,
        "version": "9.8.7",
        "setup_state": "setup",
        "url": f"http://{interface}:18081/",
        "api_url": f"http://{interface}:18081/api/v1",
        "host": f"ecommunity-{ann.gateway_id}.local",
        "addresses": [interface],
        "port": 18081,
    }


def test_the_table_shows_name_state_url_id_and_version(interface: str) -> None:
    ann = new_announcement("ready")
    code, out, err = announced_while(ann, interface, "--timeout", "2", "--interface", interface)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "STATE", "URL", "ID", "VERSION"]
    (row,) = [r for r in rows if ann.gateway_id in r]
    assert row.split() == [
        "Keller",
        "Pi",
        "ready",
        f"http://{interface}:18081/",
        ann.gateway_id,
        "9.8.7",
    ]
    # Columns line up under the header.
    assert row.index(f"http://{interface}") == header.index("URL")


def test_finding_none_is_exit_0_with_a_note_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert report([], as_json=False, timeout_s=2.0, out=out, err=err) == 0
    assert out.getvalue() == ""
    assert err.getvalue().startswith("no gateways found within 2 s")
    out, err = io.StringIO(), io.StringIO()
    assert report([], as_json=True, timeout_s=2.0, out=out, err=err) == 0
    assert json.loads(out.getvalue()) == []


def test_an_unknown_interface_is_a_usage_error() -> None:
    code, out, err = asyncio.run(discover("--timeout", "1", "--interface", "no-such-if0"))
    assert (code, out) == (2, "")
    assert "no interface or address 'no-such-if0'" in err


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error(timeout: str) -> None:
    code, out, err = asyncio.run(discover("--timeout", timeout))
    assert (code, out) == (2, "")
    assert "--timeout" in err


def test_an_interface_that_cannot_multicast_is_exit_1() -> None:
    """``::1``: Linux's loopback has no MULTICAST flag, and IPv6 multicast needs it."""
    flags = Path("/sys/class/net/lo/flags")
    if not flags.exists() or int(flags.read_text(), 16) & 0x1000:
        pytest.skip("here the loopback interface can multicast, so ::1 is no example")
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 on this machine")
    code, out, err = asyncio.run(discover("--timeout", "1", "--interface", "::1"))
    assert (code, out) == (1, "")
    assert err.startswith("cannot browse for gateways: no multicast-capable interface")
