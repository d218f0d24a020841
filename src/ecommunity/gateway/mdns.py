"""mDNS/DNS-SD announcement and discovery of gateways, as ``_ecommunity._tcp.local.``.

The gateway announces its local API so that a phone, or ``ecommunity gateway discover``,
finds it for first-time setup without knowing its address. The records (python-zeroconf):

- PTR/SRV: instance ``<name> (<short id>)`` on host ``ecommunity-<id>.local.``, API port.
- A/AAAA: the host's addresses on the chosen interfaces.
- TXT: ``txtvers=1``, ``id`` (hardware id), ``name`` (the user's name, unshortened),
  ``version``, ``setup`` (``setup`` | ``ready`` | ``paired``), ``path=/`` (dashboard and
  setup page), ``api=/api/v1``.

Interfaces are given as IP addresses or interface names (``eth0``, ``wlan0``); ``None``
means every IPv4 interface of the host. An interface that cannot send multicast (``::1``
on Linux, whose loopback lacks the MULTICAST flag) is left out with a warning, and
:class:`MdnsError` says so when none is left.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import struct
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import ifaddr
from zeroconf import (
    BadTypeInNameException,
    DNSQuestionType,
    NonUniqueNameException,
    NotRunningException,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_ecommunity._tcp.local."
#: Version of the TXT record layout below.
TXT_VERSION = "1"
#: ``setup``: needs configuration; ``ready``: configured, not paired; ``paired``: uploading.
SETUP_STATES = ("setup", "ready", "paired")
DASHBOARD_PATH = "/"
API_PATH = "/api/v1"
#: Instance name of a gateway that has not been named yet.
DEFAULT_NAME = "eCommunity gateway"

_MAX_LABEL_BYTES = 63  # one DNS label (RFC 6763 section 4.1.1)
_MAX_TXT_VALUE_BYTES = 200  # a TXT string holds 255 bytes, "key=" included
_MAX_ID_CHARS = 128  # as the gateway's hardware_id setting allows
_MAX_VERSION_CHARS = 64
_MDNS_GROUP_V4 = "224.0.0.251"
_MDNS_GROUP_V6 = "ff02::fb"
_MDNS_PORT = 5353
#: After the browse window, how long a gateway seen at its very end may take to resolve.
_RESOLVE_GRACE_S = 1.0
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class MdnsError(Exception):
    """mDNS cannot run: no multicast-capable interface, the socket cannot be opened, or the
    announcement is not valid."""


class UnknownInterfaceError(MdnsError):
    """An interface given by address or name does not exist on this host."""


@dataclass(frozen=True)
class Announcement:
    """What a gateway announces about itself.

    Raises:
        ValueError: an empty or over-long id (128 characters, 200 bytes) or version (64), a
            control character in either, a port outside 1-65535, or a setup state that is
            not one of :data:`SETUP_STATES`.
    """

    gateway_id: str  #: hardware id
    name: str  #: user-given name; empty before setup (announced as :data:`DEFAULT_NAME`)
    port: int  #: local API port
    version: str
    setup_state: str  #: one of :data:`SETUP_STATES`

    def __post_init__(self) -> None:
        for label, value, limit in (
            ("gateway id", self.gateway_id, _MAX_ID_CHARS),
            ("version", self.version, _MAX_VERSION_CHARS),
        ):
            if not value or len(value) > limit or _CONTROL_CHARS.search(value):
                raise ValueError(f"{label} must be 1-{limit} printable characters")
            if len(value.encode()) > _MAX_TXT_VALUE_BYTES:
                raise ValueError(f"{label} is longer than {_MAX_TXT_VALUE_BYTES} bytes in UTF-8")
        if not _alphanumeric(self.gateway_id):
            raise ValueError(f"gateway id {self.gateway_id!r} has no letter or digit")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not in 1-65535")
        if self.setup_state not in SETUP_STATES:
            raise ValueError(f"setup state {self.setup_state!r} is not one of {SETUP_STATES}")

    @property
    def instance_name(self) -> str:
        """The DNS-SD instance name: ``<name> (<short id>)``, at most 63 bytes, no dots."""
        return instance_name(self.name, self.gateway_id)


@dataclass(frozen=True)
class DiscoveredGateway:
    """A gateway found on the network."""

    instance: str  #: DNS-SD instance name, e.g. ``Keller (a1b2c3)``
    name: str  #: user-given name (TXT ``name``; the instance name if the TXT lacks it)
    gateway_id: str
    version: str
    setup_state: str  #: as announced; normally one of :data:`SETUP_STATES`
    host: str  #: mDNS host name, e.g. ``ecommunity-a1b2c3.local``
    addresses: tuple[str, ...]  #: IPv4 first; scoped IPv6 as ``fe80::1%eth0``
    port: int
    path: str = DASHBOARD_PATH  #: dashboard and setup page
    api_path: str = API_PATH

    @property
    def url(self) -> str:
        """The local dashboard and setup page, e.g. ``http://192.168.1.20:8080/``."""
        return self._url(self.path)

    @property
    def api_url(self) -> str:
        """The local API's base URL, e.g. ``http://192.168.1.20:8080/api/v1``."""
        return self._url(self.api_path)

    def _url(self, path: str) -> str:
        host = self.addresses[0] if self.addresses else self.host
        if ":" in host:  # IPv6 literal; a zone id's "%" is escaped in a URL (RFC 6874)
            host = "[" + host.replace("%", "%25") + "]"
        return f"http://{host}:{self.port}{path}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instance": self.instance,
            "id": self.gateway_id,
            "version": self.version,
            "setup_state": self.setup_state,
            "url": self.url,
            "api_url": self.api_url,
            "host": self.host,
            "addresses": list(self.addresses),
            "port": self.port,
        }


def instance_name(name: str, gateway_id: str) -> str:
    """``<name> (<short id>)``: unique-ish on the network, a valid DNS-SD instance label.

    Dots are replaced (python-zeroconf would split the label at them), control characters
    dropped and the name shortened so that the whole fits one DNS label (63 bytes UTF-8).
    """
    suffix = f" ({_alphanumeric(gateway_id)[-6:]})"
    clean = " ".join(_CONTROL_CHARS.sub(" ", name).replace(".", "-").split()) or DEFAULT_NAME
    return _truncate_utf8(clean, _MAX_LABEL_BYTES - len(suffix.encode())).rstrip() + suffix


class Announcer:
    """Announces one gateway until :meth:`close`.

    Args:
        interfaces: IP addresses or interface names to announce on; ``None`` for every
            IPv4 interface. With ``None``, :meth:`update` also follows address changes
            (call it after a Wi-Fi change).
    """

    def __init__(self, *, interfaces: Sequence[str] | None = None) -> None:
        self._interfaces = None if interfaces is None else tuple(interfaces)
        self._zc: AsyncZeroconf | None = None
        self._chosen: list[_Interface] = []
        self._info: AsyncServiceInfo | None = None
        self._instance = ""  # as asked for; zeroconf may have renamed it on a conflict
        self._broadcasts: set[asyncio.Future[Any]] = set()

    @property
    def service_name(self) -> str | None:
        """The full service name announced (after any rename on a conflict), or ``None``."""
        return None if self._info is None else self._info.name

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses currently announced."""
        return () if self._info is None else tuple(self._info.parsed_addresses())

    async def start(self, announcement: Announcement) -> None:
        """Probe for the name, then announce (returns once the name is registered).

        Raises:
            UnknownInterfaceError: an interface given is not on this host.
            MdnsError: no interface can multicast, or the mDNS socket cannot be opened.
        """
        if self._zc is not None:
            raise MdnsError("the announcer is already running")
        chosen = _select_interfaces(self._interfaces)
        zc = await _start_zeroconf(chosen)
        try:
            await self._register(zc, announcement, chosen)
        except BaseException:
            await zc.async_close()
            raise
        self._zc, self._chosen = zc, chosen

    async def update(self, announcement: Announcement) -> None:
        """Announce changed details (setup state, name, port, version, addresses).

        A new name is a new instance: the old one says goodbye first.

        Raises:
            MdnsError: not started, or (announcing on all interfaces) none is left.
        """
        zc, info = self._zc, self._info
        if zc is None or info is None:
            raise MdnsError("the announcer is not running: call start() first")
        if self._interfaces is None:
            chosen = _select_interfaces(None)
            if chosen != self._chosen:
                logger.info("mDNS interfaces changed: %s", _describe(chosen))
                await zc.zeroconf.async_update_interfaces([i.address for i in chosen])
                self._chosen = chosen
        if announcement.instance_name != self._instance:
            goodbye = await zc.async_unregister_service(info)
            await goodbye
            await self._register(zc, announcement, self._chosen)
            return
        new_info = _service_info(announcement, self._chosen, info.name)
        self._track(await zc.async_update_service(new_info))
        self._info = new_info

    async def close(self) -> None:
        """Say goodbye (TTL 0 records, so browsers drop the gateway at once) and close."""
        zc, self._zc, self._info = self._zc, None, None
        if zc is None:
            return
        # Initial announcements still being repeated are moot once we say goodbye.
        for pending in self._broadcasts:
            pending.cancel()
        await asyncio.gather(*self._broadcasts, return_exceptions=True)
        self._broadcasts.clear()
        await zc.async_unregister_all_services()
        await zc.async_close()
        logger.info("mDNS announcement withdrawn")

    async def __aenter__(self) -> Announcer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _register(
        self, zc: AsyncZeroconf, announcement: Announcement, chosen: list[_Interface]
    ) -> None:
        instance = announcement.instance_name
        info = _service_info(announcement, chosen, f"{instance}.{SERVICE_TYPE}")
        try:
            broadcast = await zc.async_register_service(info, allow_name_change=True)
        except (BadTypeInNameException, NonUniqueNameException) as exc:
            raise MdnsError(f"cannot announce {info.name!r}: {exc}") from exc
        self._track(broadcast)
        self._info, self._instance = info, instance
        logger.info(
            "announcing %s on port %d at %s (%s)",
            info.name,
            announcement.port,
            ", ".join(info.parsed_addresses()),
            announcement.setup_state,
        )

    def _track(self, broadcast: Awaitable[Any]) -> None:
        future = asyncio.ensure_future(broadcast)
        self._broadcasts.add(future)
        future.add_done_callback(self._broadcasts.discard)


async def discover_gateways(
    timeout_s: float = 3.0, *, interfaces: Sequence[str] | None = None
) -> list[DiscoveredGateway]:
    """Browse for gateways for ``timeout_s`` seconds; sorted by name.

    Questions ask for multicast answers (QM): a unicast answer would reach only one of the
    processes sharing port 5353 on the same host, perhaps not this one.

    Args:
        timeout_s: how long to listen. [s]
        interfaces: IP addresses or interface names; ``None`` for every IPv4 interface.

    Raises:
        ValueError: ``timeout_s`` is not positive.
        UnknownInterfaceError: an interface given is not on this host.
        MdnsError: no interface can multicast, or the mDNS socket cannot be opened.
    """
    if not timeout_s > 0:
        raise ValueError(f"the timeout must be positive, got {timeout_s}")
    zc = await _start_zeroconf(_select_interfaces(interfaces))
    try:
        infos = await _browse(zc, timeout_s)
    finally:
        await zc.async_close()
    found = [_gateway_from_info(info) for info in infos]
    return sorted(found, key=lambda g: (g.name.casefold(), g.gateway_id))


async def _browse(zc: AsyncZeroconf, timeout_s: float) -> list[AsyncServiceInfo]:
    loop = asyncio.get_running_loop()
    resolve_until = loop.time() + timeout_s + _RESOLVE_GRACE_S
    lookups: dict[str, asyncio.Task[AsyncServiceInfo | None]] = {}
    retired: list[asyncio.Task[AsyncServiceInfo | None]] = []

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        # Updated: look the records up again (a changed setup state, say).
        old = lookups.pop(name, None)
        if old is not None:
            old.cancel()
            retired.append(old)
        if state_change is not ServiceStateChange.Removed:
            lookups[name] = loop.create_task(_resolve(zc, name, resolve_until))

    browser = AsyncServiceBrowser(
        zc.zeroconf, [SERVICE_TYPE], handlers=[on_change], question_type=DNSQuestionType.QM
    )
    try:
        await asyncio.sleep(timeout_s)
    finally:
        await browser.async_cancel()
    tasks = list(lookups.values())
    if tasks:
        await asyncio.wait(tasks, timeout=_RESOLVE_GRACE_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, *retired, return_exceptions=True)
    resolved: list[AsyncServiceInfo] = []
    for task in tasks:
        if task.cancelled():
            continue
        if (error := task.exception()) is not None:
            logger.debug("looking a gateway up failed: %r", error)
        elif (info := task.result()) is not None:
            resolved.append(info)
    return resolved


async def _resolve(zc: AsyncZeroconf, name: str, until: float) -> AsyncServiceInfo | None:
    info = AsyncServiceInfo(SERVICE_TYPE, name)
    timeout_ms = max(1, int((until - asyncio.get_running_loop().time()) * 1000))
    if await info.async_request(zc.zeroconf, timeout_ms, question_type=DNSQuestionType.QM):
        return info
    logger.debug("no SRV/TXT answer for %s", name)
    return None


def _gateway_from_info(info: AsyncServiceInfo) -> DiscoveredGateway:
    txt = {
        key.decode("utf-8", "replace"): (value or b"").decode("utf-8", "replace")
        for key, value in info.properties.items()
    }
    instance = info.name.removesuffix("." + SERVICE_TYPE)
    addresses = sorted(info.parsed_scoped_addresses(), key=lambda a: ":" in a)
    return DiscoveredGateway(
        instance=instance,
        name=txt.get("name") or instance,
        gateway_id=txt.get("id", ""),
        version=txt.get("version", ""),
        setup_state=txt.get("setup", ""),
        host=(info.server or "").rstrip("."),
        addresses=tuple(addresses),
        port=info.port or 0,
        path=txt.get("path") or DASHBOARD_PATH,
        api_path=txt.get("api") or API_PATH,
    )


def _service_info(
    announcement: Announcement, chosen: list[_Interface], full_name: str
) -> AsyncServiceInfo:
    txt = {
        "txtvers": TXT_VERSION,
        "id": announcement.gateway_id,
        "name": _truncate_utf8(announcement.name or DEFAULT_NAME, _MAX_TXT_VALUE_BYTES),
        "version": announcement.version,
        "setup": announcement.setup_state,
        "path": DASHBOARD_PATH,
        "api": API_PATH,
    }
    return AsyncServiceInfo(
        SERVICE_TYPE,
        full_name,
        port=announcement.port,
        properties=txt,
        server=_host_name(announcement.gateway_id),
        parsed_addresses=_announced_addresses(chosen),
    )


def _host_name(gateway_id: str) -> str:
    slug = "-".join(re.findall(r"[a-z0-9]+", gateway_id.lower()))
    return f"ecommunity-{slug[-40:].strip('-')}.local."


def _alphanumeric(text: str) -> str:
    return "".join(re.findall(r"[a-z0-9]", text.lower()))


def _truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode("utf-8", "ignore")


# --- interfaces -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Interface:
    address: str  # IPv4, or IPv6 without a zone id
    adapter: str  # the OS's name, e.g. eth0
    index: int  # interface index (the IPv6 zone id)

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.address)


def _host_interfaces() -> list[_Interface]:
    found: list[_Interface] = []
    for adapter in ifaddr.get_adapters():
        index = adapter.index or 0
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            found.append(_Interface(address, adapter.name, index))
    return found


def _select_interfaces(wanted: Sequence[str] | None) -> list[_Interface]:
    """The host's interfaces to use; only those that can send to the mDNS group."""
    host = _host_interfaces()
    if wanted is None:
        chosen = [i for i in host if i.ip.version == 4]
    else:
        chosen = []
        for text in wanted:
            matches = _match_interface(text, host)
            if not matches:
                known = ", ".join(f"{i.adapter} {i.address}" for i in host) or "none"
                raise UnknownInterfaceError(
                    f"no interface or address {text!r} on this host (known: {known})"
                )
            chosen.extend(m for m in matches if m not in chosen)
    usable: list[_Interface] = []
    refused: list[str] = []
    for interface in chosen:
        problem = _multicast_problem(interface)
        if problem is None:
            usable.append(interface)
        else:
            refused.append(f"{interface.address} ({interface.adapter}): {problem}")
    if not usable:
        why = "; ".join(refused) if refused else "the host has no IPv4 address"
        raise MdnsError(f"no multicast-capable interface for mDNS ({why})")
    for reason in refused:
        logger.warning("mDNS leaves out %s", reason)
    return usable


def _match_interface(text: str, host: list[_Interface]) -> list[_Interface]:
    try:
        wanted = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        of_adapter = [i for i in host if i.adapter == text]
        ipv4 = [i for i in of_adapter if i.ip.version == 4]
        # IPv6 multicast goes by interface index: one address of the adapter stands for it.
        return ipv4 or of_adapter[:1]
    return [i for i in host if i.ip == wanted]


def _multicast_problem(interface: _Interface) -> str | None:
    """Why the interface cannot send to the mDNS group, or ``None``: a UDP ``connect``
    looks the route up without sending anything."""
    v6 = interface.ip.version == 6
    with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            if v6:
                probe.setsockopt(
                    socket.IPPROTO_IPV6,
                    socket.IPV6_MULTICAST_IF,
                    struct.pack("@I", interface.index),
                )
                probe.connect((_MDNS_GROUP_V6, _MDNS_PORT, 0, interface.index))
            else:
                probe.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface.address)
                )
                probe.connect((_MDNS_GROUP_V4, _MDNS_PORT))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _announced_addresses(chosen: list[_Interface]) -> list[str]:
    """Addresses a client elsewhere can reach; loopback only if there is nothing else."""
    reachable = [i.address for i in chosen if not (i.ip.is_loopback or i.ip.is_link_local)]
    return reachable or [i.address for i in chosen if not i.ip.is_link_local] or [chosen[0].address]


def _describe(chosen: list[_Interface]) -> str:
    return ", ".join(f"{i.adapter} {i.address}" for i in chosen)


async def _start_zeroconf(chosen: list[_Interface]) -> AsyncZeroconf:
    try:
        zc = AsyncZeroconf(interfaces=[i.address for i in chosen])
    except OSError as exc:
        raise MdnsError(
            f"cannot open the mDNS socket (UDP port {_MDNS_PORT}) on {_describe(chosen)}: "
            f"{exc.strerror or exc}"
        ) from exc
    try:
        await zc.zeroconf.async_wait_for_start()
    except NotRunningException as exc:
        await zc.async_close()
        raise MdnsError(f"mDNS did not start on {_describe(chosen)}") from exc
    logger.debug("mDNS running on %s", _describe(chosen))
    return zc
