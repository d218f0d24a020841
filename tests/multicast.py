"""The interface the mDNS tests announce and browse on, chosen by a check of its own.

Order: ``$ECOMMUNITY_TEST_MDNS_INTERFACE`` if set; else loopback ``127.0.0.1`` (keeps the
tests' traffic on this machine; Linux loops IPv4 multicast back on ``lo`` even though
``ip link`` shows no MULTICAST flag there); else the first other IPv4 address of the host.
An address qualifies when a datagram sent to the mDNS group 224.0.0.251 through it comes
back to a socket that joined the group on it (on a spare port, not 5353). The check uses
plain sockets, not the code under test, so a bug in ``ecommunity.gateway.mdns`` fails the
tests instead of skipping them. Only when no address qualifies are the tests skipped, and
with ``ECOMMUNITY_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid

import ifaddr
import pytest

from tests.services import services_required

_GROUP = "224.0.0.251"


def multicast_interface() -> str:
    """An IPv4 address that loops multicast back (skips the test if there is none)."""
    address, tried = _find_interface()
    if address is not None:
        return address
    message = f"no interface loops IPv4 multicast back here (tried: {tried})"
    if services_required():
        pytest.fail(message + " (ECOMMUNITY_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@functools.cache
def _find_interface() -> tuple[str | None, str]:
    wanted = os.environ.get("ECOMMUNITY_TEST_MDNS_INTERFACE")
    if wanted:
        candidates = [wanted]
    else:
        others = [
            ip.ip
            for adapter in ifaddr.get_adapters()
            for ip in adapter.ips
            if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
        ]
        candidates = ["127.0.0.1", *others]
    tried = []
    for address in candidates:
        problem = _loopback_problem(address)
        if problem is None:
            return address, ""
        tried.append(f"{address}: {problem}")
    return None, "; ".join(tried)


def _loopback_problem(address: str) -> str | None:
    token = uuid.uuid4().bytes
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        try:
            receiver.bind(("", 0))
            receiver.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton(_GROUP) + socket.inet_aton(address),
            )
            receiver.settimeout(1.0)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sender.sendto(token, (_GROUP, receiver.getsockname()[1]))
            while True:
                data, _ = receiver.recvfrom(64)
                if data == token:
                    return None
        except OSError as exc:  # socket.timeout is an OSError too
            return str(exc) or type(exc).__name__
