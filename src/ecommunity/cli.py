"""The ``ecommunity`` command: one entry point with subcommands.

Each subcommand imports what it needs when it runs, so that ``--help`` stays fast on a Pi.
Exit codes: 0 success, 1 run-time failure (e.g. nothing decoded), 2 usage error.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ecommunity import __version__

if TYPE_CHECKING:
    from ecommunity.meter import Profile

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A wrong argument or input format: reported with exit code 2."""


def hex_key(text: str) -> bytes:
    """Parse a 16-byte AES key given as 32 hex digits (spaces and colons allowed)."""
    cleaned = text.replace(" ", "").replace(":", "")
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError("a key is 32 hex digits (16 bytes)") from None
    if len(key) != 16:
        raise argparse.ArgumentTypeError(f"a key is 16 bytes (32 hex digits), got {len(key)} bytes")
    return key


def line_settings(text: str) -> tuple[int, int, str, int]:
    """Parse ``BAUD-8N1`` (also ``BAUD 8E1``) into (baudrate, bytesize, parity, stopbits)."""
    match = re.fullmatch(r"(\d+)[- ,]?([5-8])([NEO])([12])", text.strip().upper())
    if match is None:
        raise argparse.ArgumentTypeError("line settings look like 9600-8E1 (baud-bits parity stop)")
    return int(match[1]), int(match[2]), match[3], int(match[4])


def _line_text(text: str) -> str:
    """Line settings checked like :func:`line_settings`, kept as text (a gateway setting)."""
    line_settings(text)
    return text.strip()


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("at least 1 worker")
    return count


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds < 3600:
        raise argparse.ArgumentTypeError("a duration above 0 and below 3600 seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecommunity",
        description="eCommunity: smart-meter reading and energy communities for Austria.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="the whole platform with a simulated neighbourhood, in one command",
        description="Start the cloud and a simulated neighbourhood: each household's simulated "
        "meter sends real encrypted frames through a pty to a real gateway process, which "
        "pairs with the demo cloud and uploads. Prints the URL and two logins; the last "
        "start-up line begins with `ready:`. Ctrl-C stops everything.",
    )
    demo.add_argument("--port", type=int, default=8000, help="web app and API port (8000)")
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    demo.add_argument(
        "--data-dir",
        default="ecommunity-demo",
        help="where the demo keeps its databases and logs (default ./ecommunity-demo)",
    )
    demo.add_argument(
        "--households", type=int, default=12, help="simulated households (default 12)"
    )
    demo.set_defaults(handler=_run_demo)

    meter = commands.add_parser("meter", help="decode frames and read smart meters")
    meter_commands = meter.add_subparsers(dest="meter_command", metavar="COMMAND", required=True)

    decode = meter_commands.add_parser(
        "decode",
        help="decode captured frames (hex text or raw bytes)",
        description="Decode captured meter frames. The framing (AMIS/M-Bus, HDLC, bare "
        "DLMS APDU) is detected; positional layouts need --profile.",
    )
    _add_key_arguments(decode)
    decode.add_argument("--profile", help="meter profile (see `ecommunity meter profiles`)")
    decode.add_argument("--json", action="store_true", help="one JSON object per reading")
    decode.add_argument("--binary", action="store_true", help="input is raw bytes, not hex text")
    decode.add_argument(
        "--require-tag",
        action="store_true",
        help="reject DLMS frames whose GCM tag does not verify",
    )
    decode.add_argument("file", nargs="?", default="-", help="input file, or - for stdin")
    decode.set_defaults(handler=_run_decode)

    read = meter_commands.add_parser(
        "read",
        help="read a meter on a serial port and store every reading",
        description="Read a meter on a serial port (line settings from the profile), print "
        "live readings and store every reading in a local SQLite database.",
    )
    read.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    _add_key_arguments(read, key_required=True)
    read.add_argument("--profile", default="amis", help="meter profile (default: amis)")
    read.add_argument(
        "--line",
        type=line_settings,
        help="override the profile's line settings, e.g. 2400-8N1 (some adapters need it)",
    )
    read.add_argument("--db", default="readings.sqlite3", help="SQLite database file")
    read.add_argument("--json", action="store_true", help="print readings as JSON lines")
    read.set_defaults(handler=_run_read)

    profiles = meter_commands.add_parser("profiles", help="list the supported meters")
    profiles.add_argument("--json", action="store_true", help="print JSON")
    profiles.set_defaults(handler=_run_profiles)

    sim = commands.add_parser("sim", help="simulated smart meters")
    sim_commands = sim.add_subparsers(dest="sim_command", metavar="COMMAND", required=True)
    sim_meter = sim_commands.add_parser(
        "meter",
        help="a simulated household's meter sending real encrypted frames to a serial port",
        description="Simulate a household (standard load profile H0 with appliances, PV under "
        "clouds, for the current time in Austria) and send its meter's frames to a serial "
        "port, as the meter of the profile does (AMIS: SND_NKE until the reader answers E5). "
        "Runs until SIGTERM/Ctrl-C.",
    )
    sim_meter.add_argument("--profile", default="amis", help="meter profile (default: amis)")
    sim_meter.add_argument("--port", help="tty to write to; with --create-pty: a link to make")
    sim_meter.add_argument(
        "--create-pty",
        action="store_true",
        help="create a pty pair and print its reader's end (`ready: /dev/pts/N`)",
    )
    sim_meter.add_argument(
        "--key", type=hex_key, help="encryption key (default: 00112233445566778899AABBCCDDEEFF)"
    )
    sim_meter.add_argument(
        "--auth-key", type=hex_key, help="DLMS authentication key (adds a GCM tag)"
    )
    sim_meter.add_argument("--seed", type=int, default=1, help="household seed (default: 1)")
    sim_meter.add_argument(
        "--weather-seed", type=int, default=0, help="cloud seed, shared by neighbours (default: 0)"
    )
    sim_meter.add_argument(
        "--annual-kwh", type=float, default=3500.0, help="annual consumption (default: 3500)"
    )
    sim_meter.add_argument("--pv-kwp", type=float, default=0.0, help="PV peak power (default: 0)")
    sim_meter.add_argument(
        "--interval-s", type=_positive_seconds, default=1.0, help="seconds between pushes (1)"
    )
    sim_meter.add_argument(
        "--search-interval-s",
        type=_positive_seconds,
        default=2.0,
        help="AMIS: seconds between SND_NKE while no reader answers (default 2; a real "
        "meter waits 60)",
    )
    sim_meter.add_argument(
        "--json", action="store_true", help="print every reading sent as a JSON line"
    )
    sim_meter.set_defaults(handler=_run_sim_meter)

    cloud = commands.add_parser("cloud", help="run the cloud service")
    cloud_commands = cloud.add_subparsers(dest="cloud_command", metavar="COMMAND", required=True)
    serve = cloud_commands.add_parser(
        "serve",
        help="serve the API (migrates the embedded SQLite database by itself)",
        description="Serve the cloud API. Settings come from ECOMMUNITY_CLOUD_* variables; "
        "flags override them. PostgreSQL must be migrated first (`cloud migrate`).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--data-dir", help="where the embedded database lives")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help="server processes sharing the port (default 1; more than 1 needs "
        "ECOMMUNITY_CLOUD_BUS_URL, the Redis live bus)",
    )
    serve.set_defaults(handler=_run_cloud_serve)
    migrate = cloud_commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--data-dir", help="where the embedded database lives")
    migrate.set_defaults(handler=_run_cloud_migrate)
    import_energy = cloud_commands.add_parser(
        "import-energy",
        help="import the grid operator's official 15-minute values of a community",
        description="Import a CSV of official values (header interval_start,metering_point,"
        "quantity,energy_wh[,quality]; quantities G.01, G.01T, G.02, G.03, G.03R, P.01, P.01T) "
        "into the cloud database, all or nothing, and check our allocation against it. "
        "Settings as for `cloud migrate`. Exit codes: 0 imported, 1 database failure, "
        "2 refused input or unknown community.",
    )
    import_energy.add_argument(
        "--community", type=int, required=True, metavar="ID", help="the community's id"
    )
    import_energy.add_argument("--data-dir", help="where the embedded database lives")
    import_energy.add_argument("--json", action="store_true", help="the report as JSON")
    import_energy.add_argument("file", metavar="FILE", help="the CSV file, - for stdin")
    import_energy.set_defaults(handler=_run_cloud_import_energy)

    gateway = commands.add_parser("gateway", help="run the home gateway")
    gateway_commands = gateway.add_subparsers(
        dest="gateway_command", metavar="COMMAND", required=True
    )
    run = gateway_commands.add_parser(
        "run",
        help="read the meter, store every reading, pair with and upload to the cloud",
        description="Run the gateway: read the meter, store every reading locally and, with a "
        "cloud URL, pair with a cloud account and upload. Settings come from "
        "ECOMMUNITY_GATEWAY_* variables, a TOML file and the secrets file in the data "
        "directory; flags override them.",
    )
    run.add_argument(
        "--config", help="TOML settings file (default: $ECOMMUNITY_GATEWAY_CONFIG_FILE)"
    )
    run.add_argument("--serial-port", help="serial device of the meter, e.g. /dev/ttyUSB0")
    run.add_argument("--profile", help="meter profile (default: amis)")
    _add_key_arguments(run)
    run.add_argument(
        "--line",
        type=_line_text,
        help="override the profile's line settings, e.g. 2400-8N1 (some adapters need it)",
    )
    run.add_argument("--data-dir", help="where the database, secrets and status file live")
    run.add_argument("--name", help="the gateway's name on the dashboard and in mDNS")
    run.add_argument(
        "--http-host", help="address of the local API and dashboard (default: all, 0.0.0.0)"
    )
    run.add_argument(
        "--http-port", type=int, help="port of the local API and dashboard (default: 8080)"
    )
    run.add_argument(
        "--no-mdns",
        dest="mdns",
        action="store_const",
        const=False,
        help="do not announce the gateway over mDNS",
    )
    run.add_argument("--cloud-url", help="cloud to pair with and upload to (none: local-only)")
    run.add_argument(
        "--mqtt-url",
        help="MQTT broker for Home Assistant, e.g. mqtt://user:password@homeassistant.local",
    )
    run.add_argument(
        "--setup",
        action="store_true",
        help="keep the setup page open to the network even when the meter is set up",
    )
    run.set_defaults(handler=_run_gateway)
    discover = gateway_commands.add_parser(
        "discover",
        help="list the gateways on the local network (mDNS)",
        description="Browse the local network for eCommunity gateways (mDNS/DNS-SD, "
        "_ecommunity._tcp) and list their name, setup state, local URL, id and version. "
        "Finding none is not an error: exit code 0, with a note on stderr.",
    )
    discover.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=3.0,
        metavar="S",
        help="how long to listen, in seconds (default 3)",
    )
    discover.add_argument("--json", action="store_true", help="print a JSON list")
    discover.add_argument(
        "--interface",
        action="append",
        metavar="ADDR",
        help="browse on this interface, by address or name (repeatable; default: every "
        "IPv4 interface)",
    )
    discover.set_defaults(handler=_run_gateway_discover)

    community = commands.add_parser("community", help="energy communities: allocation")
    community_commands = community.add_subparsers(
        dest="community_command", metavar="COMMAND", required=True
    )
    community_allocate = community_commands.add_parser(
        "allocate",
        help="allocate production to consumers per 15 minutes from a CSV of metered energy",
        description="Allocate a community's production to its consumers per quarter hour, as "
        "the grid operator does (G.01T, G.02, G.03, P.01T in whole Wh). INPUT.csv has the "
        "header interval_start,metering_point,role,energy_wh,tf (role consumer or producer, "
        "tf in percent, default 100); KEYS.csv has metering_point,key (fractions). Rows go to "
        "stdout as CSV, totals to stderr.",
    )
    community_allocate.add_argument(
        "--model", choices=["static", "dynamic"], required=True, help="the allocation model"
    )
    community_allocate.add_argument(
        "--keys", metavar="KEYS.csv", help="static keys per consumer (static model only)"
    )
    community_allocate.add_argument(
        "--json", action="store_true", help="print one JSON document with rows and totals"
    )
    community_allocate.add_argument("input", metavar="INPUT.csv", help="input file, or - for stdin")
    community_allocate.set_defaults(handler=_run_community_allocate)
    return parser


def _add_key_arguments(parser: argparse.ArgumentParser, *, key_required: bool = False) -> None:
    parser.add_argument(
        "--key",
        type=hex_key,
        required=key_required,
        help="encryption key from the grid operator (32 hex digits)",
    )
    parser.add_argument(
        "--auth-key", type=hex_key, help="DLMS authentication key (checks the GCM tag)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ecommunity.log import setup_logging

    setup_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"ecommunity: error: {exc}\n")
    except KeyboardInterrupt:
        return 130
    return code


def _profile_or_none(name: str | None) -> Profile | None:
    if name is None:
        return None
    from ecommunity.meter import get_profile

    try:
        return get_profile(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def _run_decode(args: argparse.Namespace) -> int:
    from ecommunity.commands.meter import decode_command

    return decode_command(
        args.file,
        profile=_profile_or_none(args.profile),
        key=args.key,
        auth_key=args.auth_key,
        binary=args.binary,
        as_json=args.json,
        require_tag=args.require_tag,
    )


def _run_read(args: argparse.Namespace) -> int:
    from ecommunity.commands.meter import read_command

    profile = _profile_or_none(args.profile)
    if profile is not None and args.line is not None:
        from dataclasses import replace

        from ecommunity.meter import LineSettings

        profile = replace(profile, line=LineSettings(*args.line))
    return read_command(
        port=args.port,
        profile=profile,
        key=args.key,
        auth_key=args.auth_key,
        db=args.db,
        as_json=args.json,
    )


def _run_profiles(args: argparse.Namespace) -> int:
    from ecommunity.commands.meter import profiles_command

    return profiles_command(as_json=args.json)


def _run_sim_meter(args: argparse.Namespace) -> int:
    from ecommunity.commands.sim import meter_command

    return meter_command(
        profile=args.profile,
        port=args.port,
        create_pty=args.create_pty,
        key=args.key,
        auth_key=args.auth_key,
        seed=args.seed,
        weather_seed=args.weather_seed,
        annual_kwh=args.annual_kwh,
        pv_kwp=args.pv_kwp,
        interval_s=args.interval_s,
        search_interval_s=args.search_interval_s,
        as_json=args.json,
    )


def _run_cloud_serve(args: argparse.Namespace) -> int:
    from ecommunity.commands.cloud import serve_command

    return serve_command(
        host=args.host, port=args.port, data_dir=args.data_dir, workers=args.workers
    )


def _run_cloud_migrate(args: argparse.Namespace) -> int:
    from ecommunity.commands.cloud import migrate_command

    return migrate_command(data_dir=args.data_dir)


def _run_cloud_import_energy(args: argparse.Namespace) -> int:
    from ecommunity.commands.energy_import import import_energy_command

    return import_energy_command(
        args.file, community_id=args.community, data_dir=args.data_dir, as_json=args.json
    )


def _run_demo(args: argparse.Namespace) -> int:
    from ecommunity.commands.demo import demo_command

    return demo_command(
        port=args.port, host=args.host, data_dir=args.data_dir, households=args.households
    )


def _run_gateway(args: argparse.Namespace) -> int:
    from ecommunity.commands.gateway import run_command

    return run_command(
        config_file=args.config,
        serial_port=args.serial_port,
        profile=args.profile,
        key=args.key,
        auth_key=args.auth_key,
        data_dir=args.data_dir,
        http_port=args.http_port,
        cloud_url=args.cloud_url,
        line=args.line,
        name=args.name,
        http_host=args.http_host,
        mdns=args.mdns,
        mqtt_url=args.mqtt_url,
        force_setup=args.setup,
    )


def _run_gateway_discover(args: argparse.Namespace) -> int:
    from ecommunity.commands.gateway_discover import discover_command

    return discover_command(timeout_s=args.timeout, as_json=args.json, interfaces=args.interface)


def _run_community_allocate(args: argparse.Namespace) -> int:
    from ecommunity.commands.community import allocate_command

    return allocate_command(args.input, model=args.model, keys_file=args.keys, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
