"""``ecommunity gateway discover``: list the gateways on the local network (mDNS).

Finding none is not a failure: exit code 0, an empty table (``[]`` with ``--json``) and a
note on stderr. Exit code 1 when mDNS cannot run here, 2 for an unknown interface.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ecommunity.cli import EXIT_FAILURE, EXIT_OK, UsageError

if TYPE_CHECKING:
    from ecommunity.gateway.mdns import DiscoveredGateway

logger = logging.getLogger(__name__)

_COLUMNS = ("NAME", "STATE", "URL", "ID", "VERSION")


def discover_command(*, timeout_s: float, as_json: bool, interfaces: Sequence[str] | None) -> int:
    from ecommunity.gateway.mdns import MdnsError, UnknownInterfaceError, discover_gateways

    try:
        gateways = asyncio.run(discover_gateways(timeout_s, interfaces=interfaces))
    except UnknownInterfaceError as exc:
        raise UsageError(str(exc)) from None
    except MdnsError as exc:
        sys.stderr.write(f"cannot browse for gateways: {exc}\n")
        return EXIT_FAILURE
    return report(gateways, as_json=as_json, timeout_s=timeout_s, out=sys.stdout, err=sys.stderr)


def report(
    gateways: Sequence[DiscoveredGateway],
    *,
    as_json: bool,
    timeout_s: float,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the gateways found (a table, or a JSON list); exit code 0 even for none."""
    if as_json:
        out.write(json.dumps([g.to_json() for g in gateways], indent=2, ensure_ascii=False))
        out.write("\n")
    elif gateways:
        out.write(format_table(gateways))
    if not gateways:
        err.write(
            f"no gateways found within {timeout_s:g} s (is this computer on the gateway's "
            "network? try a longer --timeout)\n"
        )
    return EXIT_OK


def format_table(gateways: Sequence[DiscoveredGateway]) -> str:
    """One line per gateway under a header: name, setup state, URL, id, version."""
    rows = [_COLUMNS] + [
        (g.name, g.setup_state or "?", g.url, g.gateway_id or "?", g.version or "?")
        for g in gateways
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    return "\n".join(lines) + "\n"
