"""``ecommunity sim meter``: a simulated household's meter on a serial port."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ecommunity.cli import EXIT_FAILURE, EXIT_OK, UsageError

logger = logging.getLogger(__name__)


def meter_command(
    *,
    profile: str,
    port: str | None,
    create_pty: bool,
    key: bytes | None,
    auth_key: bytes | None,
    seed: int,
    weather_seed: int,
    annual_kwh: float,
    pv_kwp: float,
    interval_s: float,
    search_interval_s: float,
    as_json: bool,
) -> int:
    """Send the simulated meter's frames until SIGTERM/Ctrl-C (then exit 0)."""
    from ecommunity.commands.meter import format_reading
    from ecommunity.gateway.serial_reader import stop_on_signals
    from ecommunity.meter import get_profile
    from ecommunity.sim import (
        DEMO_KEY,
        FdLine,
        MeterLink,
        Push,
        SimulatedHousehold,
        SimulatedMeter,
        Weather,
        open_port,
        open_pty,
    )

    if port is None and not create_pty:
        raise UsageError("give the serial port to write to (--port PATH) or --create-pty")
    if not (math.isfinite(annual_kwh) and annual_kwh > 0):
        raise UsageError(f"--annual-kwh must be a positive number, got {annual_kwh}")
    if not (math.isfinite(pv_kwp) and pv_kwp >= 0):
        raise UsageError(f"--pv-kwp must be 0 or more, got {pv_kwp}")
    if interval_s < 1:
        raise UsageError(
            f"--interval-s must be at least 1 s (meters count whole seconds), got {interval_s}"
        )
    try:
        meter_profile = get_profile(profile)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    household = SimulatedHousehold(
        seed=seed, annual_kwh=annual_kwh, pv_kwp=pv_kwp, weather=Weather(weather_seed)
    )
    meter = SimulatedMeter(
        household, meter_profile, key=DEMO_KEY if key is None else key, auth_key=auth_key
    )

    link_path: Path | None = None
    if create_pty:
        pty = open_pty()
        line = FdLine(pty.master, peer_fd=pty.slave)
        ready_path = pty.path
        if port is not None:
            link_path = Path(port)
            if link_path.exists() and not link_path.is_symlink():
                pty.close()
                raise UsageError(f"{port} exists and is not a link: not replacing it")
            try:
                link_path.unlink(missing_ok=True)
                link_path.symlink_to(pty.path)
            except OSError as exc:
                pty.close()
                sys.stderr.write(f"cannot make the link {port}: {exc.strerror or exc}\n")
                return EXIT_FAILURE
            ready_path = port
        closing = [pty.master, pty.slave]
    else:
        assert port is not None
        try:
            fd = open_port(port, meter_profile.line)
        except OSError as exc:
            sys.stderr.write(f"cannot open {port}: {exc.strerror or exc}\n")
            return EXIT_FAILURE
        line = FdLine(fd)
        ready_path = port
        closing = [fd]

    def next_push() -> Push:
        # Pushes are due on whole multiples of the interval: round, not truncate, so that a
        # wake-up a hair early does not repeat the previous second.
        at_s = round(time.time() / interval_s) * interval_s
        return meter.push(datetime.fromtimestamp(at_s, UTC))

    def report(push: Push) -> None:
        # Only with --json: a caller that keeps the process's stdout as an unread pipe (as
        # a demo does) must not find the meter blocked on a full pipe after some minutes.
        if as_json:
            row = push.reading.to_json()
            row["sim"] = {"load_w": push.sample.load_w, "pv_w": push.sample.pv_w}
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        logger.debug(
            "sent %s  load %d W  PV %d W",
            format_reading(push.reading),
            push.sample.load_w,
            push.sample.pv_w,
        )

    link = MeterLink(
        line,
        next_push,
        acknowledge=meter_profile.acknowledge,
        interval_s=interval_s,
        search_interval_s=search_interval_s,
        align_to_clock=True,
        on_sent=report,
    )
    logger.info(
        "simulating a %s meter on %s: seed %d, %.0f kWh/a, %.1f kWp",
        meter_profile.name,
        ready_path,
        seed,
        annual_kwh,
        pv_kwp,
    )
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            sys.stdout.write(f"ready: {ready_path}\n")
            sys.stdout.flush()
            stats = link.run(stop)
    finally:
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)
        if link_path is not None and link_path.is_symlink():
            link_path.unlink()
    sys.stderr.write(
        f"stopped: {stats.pushes_sent} pushes sent, {stats.pushes_acked} acknowledged, "
        f"{stats.searches} searches\n"
    )
    return EXIT_OK
