"""``ecommunity meter decode | read | profiles``."""

from __future__ import annotations

import json
import logging
import string
import sys
from pathlib import Path
from typing import TextIO

from ecommunity.cli import EXIT_FAILURE, EXIT_OK, UsageError
from ecommunity.meter import (
    PROFILES,
    Keys,
    MeterError,
    Profile,
    Reading,
    StreamDecoder,
    decode_apdu,
)

logger = logging.getLogger(__name__)

_HEX_DIGITS = frozenset(string.hexdigits)


def read_input(file: str, *, binary: bool) -> bytes:
    """The bytes to decode: raw, or hex text with whitespace ignored.

    Raises:
        UsageError: the file cannot be read, or is not hex text without ``--binary``.
    """
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    if binary:
        return raw
    text = "".join(raw.decode("ascii", "replace").split())
    if text.lower().startswith("0x"):
        text = text[2:]
    bad = next((c for c in text if c not in _HEX_DIGITS), None)
    if bad is not None or len(text) % 2:
        why = f"character {bad!r}" if bad is not None else "an odd number of hex digits"
        raise UsageError(f"{file} is not hex text ({why}); use --binary for raw bytes")
    return bytes.fromhex(text)


def format_reading(reading: Reading) -> str:
    """One human-readable line: meter time in Austria, energies and powers."""
    stamp = reading.meter_timestamp.isoformat(" ") if reading.meter_timestamp else "no time"

    def field(label: str, value: int | None, unit: str) -> str:
        return f"{label} {value if value is not None else '-'} {unit}"

    parts = [
        stamp,
        field("+A", reading.energy_import_wh, "Wh"),
        field("-A", reading.energy_export_wh, "Wh"),
        field("+P", reading.power_import_w, "W"),
        field("-P", reading.power_export_w, "W"),
    ]
    if reading.meter_id:
        parts.append(f"meter {reading.meter_id}")
    return "  ".join(parts)


def emit(reading: Reading, *, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(reading.to_json(), ensure_ascii=False) + "\n")
    else:
        out.write(format_reading(reading) + "\n")
    out.flush()


def decode_command(
    file: str,
    *,
    profile: Profile | None,
    key: bytes | None,
    auth_key: bytes | None,
    binary: bool,
    as_json: bool,
    require_tag: bool,
) -> int:
    data = read_input(file, binary=binary)
    decoder = StreamDecoder(profile, key=key, auth_key=auth_key, require_tag=require_tag)
    decoder.feed(data)
    decoder.close()
    readings = list(decoder)
    errors: list[MeterError] = decoder.pop_errors()
    if decoder.stats.frames == 0 and data[:1] == b"\x0f":
        # A bare, already decrypted DATA-NOTIFICATION (no framing to detect).
        try:
            readings.append(decode_apdu(data, profile, Keys(key, auth_key, require_tag)))
        except MeterError as exc:
            errors.append(exc)
    for reading in readings:
        emit(reading, as_json=as_json, out=sys.stdout)
    for error in errors:
        sys.stderr.write(f"bad frame ({error.kind}): {error}\n")
    if not readings:
        if not errors:
            sys.stderr.write("no meter frame found in the input\n")
        return EXIT_FAILURE
    return EXIT_OK


def profiles_command(*, as_json: bool) -> int:
    if as_json:
        rows = [
            {
                "name": p.name,
                "title": p.title,
                "operators": list(p.operators),
                "meters": list(p.meters),
                "transport": p.transport.value,
                "layout": p.layout.value,
                "line": {
                    "baudrate": p.line.baudrate,
                    "bytesize": p.line.bytesize,
                    "parity": p.line.parity,
                    "stopbits": p.line.stopbits,
                },
                "acknowledge": p.acknowledge,
                "push_interval_s": p.push_interval_s,
            }
            for p in PROFILES.values()
        ]
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    width = max(len(name) for name in PROFILES)
    for p in PROFILES.values():
        acks = "E5 acks" if p.acknowledge else ""
        line = f"{p.name:<{width}}  {p.line!s:<11} {p.transport.value:<7} {acks:<7}  {p.title}"
        sys.stdout.write(line + "\n")
    return EXIT_OK


def read_command(
    *,
    port: str,
    profile: Profile | None,
    key: bytes,
    auth_key: bytes | None,
    db: str,
    as_json: bool,
) -> int:
    """Read the meter until SIGTERM/Ctrl-C; every reading is committed before it is printed."""
    import sqlite3
    import threading

    from ecommunity.gateway.serial_reader import ReaderSettings, run_reader, stop_on_signals
    from ecommunity.gateway.store import ReadingStore, StoreError

    if profile is None:
        raise UsageError("meter read needs a --profile")
    settings = ReaderSettings(port=port, profile=profile, key=key, auth_key=auth_key)
    stop = threading.Event()
    try:
        store = ReadingStore(db)
    except (StoreError, OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"cannot open the database {db}: {exc}\n")
        return EXIT_FAILURE
    logger.info("reading %s (%s, %s) into %s", port, profile.name, profile.line, db)
    with store, stop_on_signals(stop):
        stats = run_reader(
            settings, store, lambda reading: emit(reading, as_json=as_json, out=sys.stdout), stop
        )
    errors = sum(stats.frame_errors.values())
    sys.stderr.write(
        f"stopped: {stats.readings_stored} readings stored, {stats.duplicates} duplicates, "
        f"{errors} bad frames, {stats.disconnects} disconnects\n"
    )
    return EXIT_OK
