"""mDNS announcement and discovery over the machine's real network stack.

Announcer and browser are separate python-zeroconf instances (separate sockets on UDP
5353), here in one process; ``tests/commands/test_gateway_discover.py`` browses from another
process. The interface is chosen by ``tests.multicast`` (loopback where it loops multicast
back, as on Linux). Other gateways may be announcing on this machine at the same time
(other tests), so every check looks for its own random gateway id.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from zeroconf import DNSQuestionType, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from ecommunity.gateway.mdns import (
    SERVICE_TYPE,
    Announcement,
    Announcer,
    DiscoveredGateway,
    MdnsError,
    UnknownInterfaceError,
    discover_gateways,
    instance_name,
)
from tests.multicast import multicast_interface

BROWSE_S = 2.0


@pytest.fixture
def interface() -> str:
    return multicast_interface()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run the scenario; afterwards no task of it and no thread may be left running."""
    threads = threading.active_count()

    async def main() -> None:
        await scenario()
        await asyncio.sleep(0)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not leftover, f"tasks left running: {leftover}"

    asyncio.run(main())
    assert threading.active_count() == threads


def announcement(**changes: object) -> Announcement:
    values: dict[str, object] = {
        "gateway_id": f"test-{uuid.uuid4().hex[:12]}",
        "name": "Keller",
        "port": 8080,
        "version": "0.1.0",
        "setup_state": "setup",
    }
    values.update(changes)
    return Announcement(**values)  # type: ignore[arg-type]


def ours(gateways: list[DiscoveredGateway], gateway_id: str) -> list[DiscoveredGateway]:
    return [g for g in gateways if g.gateway_id == gateway_id]


def test_a_started_announcer_is_discovered_with_its_records(interface: str) -> None:
    ann = announcement(name="Keller Zählerkasten", port=18080, version="1.2.3")

    async def scenario() -> None:
        async with Announcer(interfaces=[interface]) as announcer:
            await announcer.start(ann)
            found = await discover_gateways(BROWSE_S, interfaces=[interface])
        (gateway,) = ours(found, ann.gateway_id)
        assert gateway.instance == f"Keller Zählerkasten ({ann.gateway_id[-6:]})"
        assert gateway.name == "Keller Zählerkasten"
        assert (gateway.version, gateway.setup_state, gateway.port) == ("1.2.3", "setup", 18080)
        assert gateway.addresses == (interface,)
        assert gateway.host == f"ecommunity-{ann.gateway_id}.local"
        assert gateway.url == f"http://{interface}:18080/"
        assert gateway.api_url == f"http://{interface}:18080/api/v1"

    run(scenario)


def test_an_updated_setup_state_is_seen_by_a_new_browse(interface: str) -> None:
    ann = announcement(setup_state="setup")

    async def scenario() -> None:
        async with Announcer(interfaces=[interface]) as announcer:
            await announcer.start(ann)
            before = ours(await discover_gateways(BROWSE_S, interfaces=[interface]), ann.gateway_id)
            await announcer.update(Announcement(**{**vars(ann), "setup_state": "ready"}))
            after = ours(await discover_gateways(BROWSE_S, interfaces=[interface]), ann.gateway_id)
        assert [g.setup_state for g in before] == ["setup"]
        assert [g.setup_state for g in after] == ["ready"]

    run(scenario)


def test_a_new_name_replaces_the_old_instance(interface: str) -> None:
    ann = announcement(name="Keller")

    async def scenario() -> None:
        async with Announcer(interfaces=[interface]) as announcer:
            await announcer.start(ann)
            await announcer.update(Announcement(**{**vars(ann), "name": "Dachboden"}))
            assert announcer.service_name == f"Dachboden ({ann.gateway_id[-6:]}).{SERVICE_TYPE}"
            found = ours(await discover_gateways(BROWSE_S, interfaces=[interface]), ann.gateway_id)
        assert [g.name for g in found] == ["Dachboden"]

    run(scenario)


def test_close_says_goodbye_so_browsers_drop_the_gateway_at_once(interface: str) -> None:
    """The records live 120 s (SRV, A) and 75 min (PTR): a browser that drops the gateway
    within seconds of close() heard the goodbye (TTL 0) packets."""
    ann = announcement()
    events: list[tuple[str, ServiceStateChange, float]] = []
    changed = asyncio.Event()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        events.append((name, state_change, time.monotonic()))
        changed.set()

    async def wait_for(name: str, state: ServiceStateChange, timeout_s: float) -> float:
        async with asyncio.timeout(timeout_s):
            while True:
                for seen, change, at in events:
                    if (seen, change) == (name, state):
                        return at
                changed.clear()
                await changed.wait()

    async def scenario() -> None:
        announcer = Announcer(interfaces=[interface])
        await announcer.start(ann)
        name = announcer.service_name
        assert name is not None
        async with AsyncZeroconf(interfaces=[interface]) as zc:
            browser = AsyncServiceBrowser(
                zc.zeroconf, [SERVICE_TYPE], handlers=[on_change], question_type=DNSQuestionType.QM
            )
            try:
                await wait_for(name, ServiceStateChange.Added, 5.0)
                closed_at = time.monotonic()
                await announcer.close()
                removed_at = await wait_for(name, ServiceStateChange.Removed, 5.0)
            finally:
                await browser.async_cancel()
        assert removed_at - closed_at < 5.0
        later = await discover_gateways(BROWSE_S, interfaces=[interface])
        assert ours(later, ann.gateway_id) == []

    run(scenario)


def test_two_gateways_with_the_same_instance_name_are_both_found(interface: str) -> None:
    """Same name and same id tail: the second one probes, sees the first and renames."""
    tail = uuid.uuid4().hex[:6]
    first = announcement(gateway_id=f"site-a-{tail}", name="Keller")
    second = announcement(gateway_id=f"site-b-{tail}", name="Keller")
    assert first.instance_name == second.instance_name

    async def scenario() -> None:
        async with Announcer(interfaces=[interface]) as a, Announcer(interfaces=[interface]) as b:
            await a.start(first)
            await b.start(second)
            assert a.service_name != b.service_name
            found = await discover_gateways(BROWSE_S, interfaces=[interface])
        instances = {g.gateway_id: g.instance for g in found}
        assert instances[first.gateway_id] == first.instance_name
        assert instances[second.gateway_id].startswith(first.instance_name)
        assert instances[second.gateway_id] != first.instance_name

    run(scenario)


def test_an_interface_given_by_name_is_used(interface: str) -> None:
    adapter = next(
        (p.name for p in Path("/sys/class/net").iterdir() if _has_address(p.name, interface)),
        None,
    )
    if adapter is None:
        pytest.skip(f"no adapter name found for {interface}")
    ann = announcement()

    async def scenario() -> None:
        async with Announcer(interfaces=[adapter]) as announcer:
            await announcer.start(ann)
            assert announcer.addresses == (interface,)
            found = await discover_gateways(BROWSE_S, interfaces=[adapter])
        assert [g.addresses for g in ours(found, ann.gateway_id)] == [(interface,)]

    run(scenario)


def _has_address(adapter: str, address: str) -> bool:
    import ifaddr

    return any(
        a.name == adapter and any(ip.ip == address for ip in a.ips) for a in ifaddr.get_adapters()
    )


def test_an_unknown_interface_is_named_in_the_error() -> None:
    async def scenario() -> None:
        with pytest.raises(UnknownInterfaceError, match="no-such-if0"):
            await Announcer(interfaces=["no-such-if0"]).start(announcement())
        with pytest.raises(UnknownInterfaceError, match=r"192\.0\.2\.254"):
            await discover_gateways(1.0, interfaces=["192.0.2.254"])

    run(scenario)


def test_an_interface_that_cannot_multicast_is_refused() -> None:
    """Linux's loopback has no MULTICAST flag: IPv4 multicast still loops back on it, but
    IPv6 multicast on ``::1`` has no route."""
    flags = Path("/sys/class/net/lo/flags")
    if not flags.exists() or int(flags.read_text(), 16) & 0x1000:
        pytest.skip("here the loopback interface can multicast, so ::1 is no example")
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 on this machine")

    async def scenario() -> None:
        with pytest.raises(MdnsError, match=r"no multicast-capable interface.*::1"):
            await Announcer(interfaces=["::1"]).start(announcement())
        with pytest.raises(MdnsError, match=r"no multicast-capable interface.*::1"):
            await discover_gateways(1.0, interfaces=["::1"])

    run(scenario)


def test_lifecycle_misuse_is_a_clear_error(interface: str) -> None:
    async def scenario() -> None:
        announcer = Announcer(interfaces=[interface])
        await announcer.close()  # closing what never started is harmless
        with pytest.raises(MdnsError, match="start"):
            await announcer.update(announcement())
        await announcer.start(announcement())
        try:
            with pytest.raises(MdnsError, match="already running"):
                await announcer.start(announcement())
        finally:
            await announcer.close()
        await announcer.close()
        with pytest.raises(ValueError, match="positive"):
            await discover_gateways(0)

    run(scenario)


@pytest.mark.parametrize(
    ("name", "gateway_id", "expected"),
    [
        ("Keller", "b8:27:eb:12:34:56", "Keller (123456)"),
        ("  Haus\tNr. 5  ", "10000000a1b2c3d4", "Haus Nr- 5 (b2c3d4)"),
        ("", "abc", "eCommunity gateway (abc)"),
        ("\x00\x1f", "XYZ-1", "eCommunity gateway (xyz1)"),
    ],
)
def test_instance_name_is_a_valid_label(name: str, gateway_id: str, expected: str) -> None:
    assert instance_name(name, gateway_id) == expected


def test_a_long_name_is_shortened_to_one_dns_label_on_a_character_boundary() -> None:
    label = instance_name("Ä" * 60, "0123456789")
    assert len(label.encode()) <= 63
    assert label.endswith(" (456789)")
    assert set(label.removesuffix(" (456789)")) == {"Ä"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"setup_state": "configured"}, "setup state"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"gateway_id": ""}, "gateway id"),
        ({"gateway_id": "::--::"}, "no letter or digit"),
        ({"gateway_id": "x" * 129}, "gateway id"),
        ({"gateway_id": "Ä" * 101}, "200 bytes"),
        ({"gateway_id": "gw\x00"}, "gateway id"),
        ({"version": "1.0\n"}, "version"),
    ],
)
def test_an_invalid_announcement_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        announcement(**changes)


def test_urls_bracket_ipv6_and_fall_back_to_the_host_name() -> None:
    base = {
        "instance": "Keller (abc)",
        "name": "Keller",
        "gateway_id": "abc",
        "version": "1",
        "setup_state": "ready",
        "host": "ecommunity-abc.local",
        "port": 8080,
    }
    v6 = DiscoveredGateway(**base, addresses=("fe80::1%eth0",))  # type: ignore[arg-type]
    assert v6.url == "http://[fe80::1%25eth0]:8080/"
    none = DiscoveredGateway(**base, addresses=())  # type: ignore[arg-type]
    assert none.api_url == "http://ecommunity-abc.local:8080/api/v1"
