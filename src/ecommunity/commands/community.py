"""``ecommunity community allocate``: a community's 15-minute allocation from a long CSV.

Input (``INPUT.csv`` or ``-``): header ``interval_start,metering_point,role,energy_wh,tf`` (the
``tf`` column may be left out), one row per metering point and interval: the interval start as
ISO 8601 with a UTC offset on a 15-minute boundary, ``consumer`` or ``producer``, the measured
energy G.01 in whole Wh, the participation factor in whole percent (empty: 100; 0: not taking
part in that interval). A metering point without a row in an interval does not take part in it.

Keys (``--keys KEYS.csv``, static model only): header ``metering_point,key``, a fraction such as
``0.25`` or ``1/4`` per consumer; keys of metering points without rows count towards the sum
(at most 1) and their shares are surplus.

Output: CSV ``interval_start,metering_point,role,g01t_wh,g02_wh,g03_wh,p01t_wh`` in interval
order, consumers then producers, each sorted by metering point; columns that do not apply to a
role are empty. Totals go to stderr; with ``--json`` one JSON document with rows and totals goes
to stdout instead.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from ecommunity.cli import EXIT_OK, UsageError
from ecommunity.community import (
    MAX_INTERVAL_WH,
    Allocation,
    AllocationModel,
    AllocationTotals,
    CommunityError,
    IntervalError,
    Role,
    StaticKeys,
    allocate,
    check_interval_start,
)

logger = logging.getLogger(__name__)

INPUT_COLUMNS = ("interval_start", "metering_point", "role", "energy_wh", "tf")
KEY_COLUMNS = ("metering_point", "key")
OUTPUT_COLUMNS = (
    "interval_start",
    "metering_point",
    "role",
    "g01t_wh",
    "g02_wh",
    "g03_wh",
    "p01t_wh",
)
_WHOLE = re.compile(r"[0-9]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _InputError(UsageError):
    """A bad line in an input file: ``NAME:LINE: message``."""

    def __init__(self, name: str, line: int, message: str) -> None:
        super().__init__(f"{name}:{line}: {message}")


@dataclass
class _Side:
    """One role's metering points with their energies and factors, ``(N, T)``."""

    points: list[str]
    energy_wh: np.ndarray
    tf_percent: np.ndarray
    present: np.ndarray


@dataclass
class _Input:
    starts_s: list[int]
    consumers: _Side
    producers: _Side


def allocate_command(
    input_file: str,
    *,
    model: str,
    keys_file: str | None,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Allocate, write the rows to ``out`` and the totals to ``err``.

    Raises:
        UsageError: unreadable or malformed input or keys, or keys with the dynamic model.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    allocation_model = AllocationModel(model)
    if allocation_model is AllocationModel.STATIC and keys_file is None:
        raise UsageError("--model static needs --keys KEYS.csv")
    if allocation_model is AllocationModel.DYNAMIC and keys_file is not None:
        raise UsageError("--keys applies to --model static only")

    data = _read_input(input_file)
    keys = None
    if keys_file is not None:
        keys = _read_keys(keys_file, data)
    try:
        allocation = allocate(
            data.consumers.energy_wh,
            data.producers.energy_wh,
            model=allocation_model,
            consumer_tf_percent=data.consumers.tf_percent,
            producer_tf_percent=data.producers.tf_percent,
            keys=keys,
        )
    except CommunityError as exc:
        raise UsageError(str(exc)) from None
    totals = allocation.totals()
    if as_json:
        document = {
            "model": allocation_model.value,
            "totals": totals.to_json(),
            "rows": [
                dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in _rows(data, allocation)
            ],
        }
        json.dump(document, out, ensure_ascii=False)
        out.write("\n")
    else:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(OUTPUT_COLUMNS)
        for row in _rows(data, allocation):
            writer.writerow("" if cell is None else cell for cell in row)
        err.write(format_totals(allocation_model, totals))
    return EXIT_OK


def format_totals(model: AllocationModel, totals: AllocationTotals) -> str:
    """The totals as a few human-readable lines."""
    covered_share = (
        f"{100 * totals.covered_wh / totals.consumption_wh:.1f} % of consumption covered"
        if totals.consumption_wh
        else "no consumption"
    )
    return (
        f"{model.value} allocation: {totals.intervals} intervals, {totals.consumers} consumers, "
        f"{totals.producers} producers\n"
        f"consumers: G.01 {totals.consumption_wh} Wh, G.01T {totals.consumption_t_wh} Wh, "
        f"G.02 {totals.allocated_wh} Wh, G.03 {totals.covered_wh} Wh, "
        f"residual G.01-G.03 {totals.residual_wh} Wh ({covered_share})\n"
        f"producers: G.01 {totals.production_wh} Wh, G.01T {totals.production_t_wh} Wh, "
        f"taken by consumers {totals.credited_wh} Wh, surplus P.01T {totals.surplus_wh} Wh\n"
    )


def _rows(data: _Input, allocation: Allocation) -> Iterator[tuple[object, ...]]:
    for column, start_s in enumerate(data.starts_s):
        stamp = datetime.fromtimestamp(start_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        side = data.consumers
        for row, point in enumerate(side.points):
            if side.present[row, column]:
                yield (
                    stamp,
                    point,
                    Role.CONSUMER.value,
                    int(allocation.consumption_t_wh[row, column]),
                    int(allocation.allocated_wh[row, column]),
                    int(allocation.covered_wh[row, column]),
                    None,
                )
        side = data.producers
        for row, point in enumerate(side.points):
            if side.present[row, column]:
                yield (
                    stamp,
                    point,
                    Role.PRODUCER.value,
                    int(allocation.production_t_wh[row, column]),
                    None,
                    None,
                    int(allocation.surplus_wh[row, column]),
                )


def _open_text(file: str) -> tuple[str, str]:
    """The text of ``file`` (``-``: stdin) and the name to use in messages."""
    name = "<stdin>" if file == "-" else file
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig"), name
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not UTF-8 text (byte {exc.start})") from None


def _records(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the line they start on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                yield line, [cell.strip() for cell in record]
            line = reader.line_num + 1
    except csv.Error as exc:
        raise _InputError(name, reader.line_num, f"not valid CSV ({exc})") from None


def _header(records: Iterator[tuple[int, list[str]]], name: str, expected: str) -> list[str]:
    try:
        _, header = next(records)
    except StopIteration:
        raise UsageError(f"{name} is empty; the header is {expected}") from None
    return [cell.lower() for cell in header]


def _read_input(file: str) -> _Input:
    text, name = _open_text(file)
    records = _records(text, name)
    expected = ",".join(INPUT_COLUMNS)
    header = _header(records, name, expected)
    if tuple(header) not in (INPUT_COLUMNS, INPUT_COLUMNS[:-1]):
        raise _InputError(name, 1, f"the header must be {expected} (tf may be left out)")
    width = len(header)

    cells: dict[tuple[int, str], tuple[int, int, int]] = {}  # (start, point) -> line, Wh, tf
    roles: dict[str, tuple[Role, int]] = {}
    for line, record in records:
        if len(record) != width:
            raise _InputError(name, line, f"{len(record)} fields, the header has {width}")
        start_s = _parse_start(record[0], name, line)
        point = record[1]
        if not point:
            raise _InputError(name, line, "empty metering_point")
        try:
            role = Role(record[2].lower())
        except ValueError:
            raise _InputError(
                name, line, f"role is consumer or producer, got {record[2]!r}"
            ) from None
        energy = _parse_whole(record[3], name, line, "energy_wh", MAX_INTERVAL_WH)
        tf = 100 if width == 4 or not record[4] else _parse_whole(record[4], name, line, "tf", 100)
        known = roles.setdefault(point, (role, line))
        if known[0] is not role:
            raise _InputError(
                name,
                line,
                f"{point} is a {known[0].value} on line {known[1]}; a metering point measures "
                "one direction",
            )
        previous = cells.get((start_s, point))
        if previous is not None:
            raise _InputError(
                name, line, f"{point} already has a value for this interval on line {previous[0]}"
            )
        cells[start_s, point] = (line, energy, tf)

    starts = sorted({start for start, _ in cells})
    column = {start: index for index, start in enumerate(starts)}
    sides = {}
    for role in Role:
        points = sorted(p for p, (r, _) in roles.items() if r is role)
        row = {point: index for index, point in enumerate(points)}
        shape = (len(points), len(starts))
        side = _Side(
            points=points,
            energy_wh=np.zeros(shape, dtype=np.int64),
            tf_percent=np.zeros(shape, dtype=np.int64),
            present=np.zeros(shape, dtype=bool),
        )
        sides[role] = (side, row)
    for (start_s, point), (_, energy, tf) in cells.items():
        side, row = sides[roles[point][0]]
        side.energy_wh[row[point], column[start_s]] = energy
        side.tf_percent[row[point], column[start_s]] = tf
        side.present[row[point], column[start_s]] = True
    return _Input(
        starts_s=starts, consumers=sides[Role.CONSUMER][0], producers=sides[Role.PRODUCER][0]
    )


def _parse_start(text: str, name: str, line: int) -> int:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _InputError(
            name, line, f"interval_start is ISO 8601 with a UTC offset, got {text!r}"
        ) from None
    try:
        utc = check_interval_start(at)
    except IntervalError as exc:
        raise _InputError(name, line, str(exc)) from None
    return int((utc - _EPOCH).total_seconds())


def _parse_whole(text: str, name: str, line: int, column: str, highest: int) -> int:
    if not _WHOLE.fullmatch(text):
        raise _InputError(name, line, f"{column} is a whole number >= 0, got {text!r}")
    value = int(text)
    if value > highest:
        raise _InputError(name, line, f"{column} is at most {highest}, got {value}")
    return value


def _read_keys(file: str, data: _Input) -> StaticKeys:
    text, name = _open_text(file)
    records = _records(text, name)
    expected = ",".join(KEY_COLUMNS)
    if tuple(_header(records, name, expected)) != KEY_COLUMNS:
        raise _InputError(name, 1, f"the header must be {expected}")
    keys: dict[str, tuple[int, str]] = {}
    producers = set(data.producers.points)
    for line, record in records:
        if len(record) != 2:
            raise _InputError(name, line, f"{len(record)} fields, the header has 2")
        point, key = record
        if not point:
            raise _InputError(name, line, "empty metering_point")
        if point in producers:
            raise _InputError(name, line, f"{point} is a producer; keys are for consumers")
        if point in keys:
            raise _InputError(name, line, f"{point} already has a key on line {keys[point][0]}")
        try:
            StaticKeys.from_values([key])
        except CommunityError as exc:
            raise _InputError(name, line, str(exc)) from None
        keys[point] = (line, key)
    try:
        StaticKeys.from_values(key for _, key in keys.values())
    except CommunityError as exc:
        raise UsageError(f"{name}: {exc}") from None
    missing = [point for point in data.consumers.points if point not in keys]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"{name}: no key for consumer {shown}")
    idle = sorted(set(keys) - set(data.consumers.points))
    if idle:
        logger.info("keys without rows in the input (their shares are surplus): %s", idle)
    return StaticKeys.from_values(keys[point][1] for point in data.consumers.points)
