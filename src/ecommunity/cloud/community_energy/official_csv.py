"""The official-data CSV: the grid operator's 15-minute values per metering point, long format.

Grid operators deliver, per member and quarter hour, a day later (rules doc 1.4, 1.8): for
consumers the measured consumption ``G.01``, its participating part ``G.01T``, the allocated
share ``G.02``, the covered share ``G.03`` (and its renewable part ``G.03R``); for producers the
measured production ``G.01``, ``G.01T`` and the surplus ``P.01`` / ``P.01T``. One row per value::

    interval_start,metering_point,quantity,energy_wh[,quality]
    2026-06-15T10:00:00+02:00,AT0030000000000000000000000000001,G.01,412,L1

* ``interval_start``: ISO 8601 with a UTC offset, on a quarter hour.
* ``metering_point``: ``AT`` and 31 letters or digits (spaces dropped, upper-cased).
* ``quantity``: ``G.01``, ``G.01T``, ``G.02``, ``G.03``, ``G.03R``, ``P.01``, ``P.01T``; the
  OBIS prefix of the grid operators' exports (``1-1:1.9.0 G.01``, ``1-1:2.9.0 G.03``) may stay.
* ``energy_wh``: whole Wh, 0 or more; or a column ``energy_kwh`` instead, with at most three
  decimals (whole Wh: sums stay exact).
* ``quality`` (optional column): ``L1`` measured, ``L2`` replaced, ``L3`` estimated, or empty.

This module checks the file on its own; whether each point is a member of the community in each
interval is checked against the database by the import.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

from ecommunity.community import (
    MAX_INTERVAL_WH,
    CommunityError,
    Role,
    check_interval_start,
    parse_metering_point,
)

COLUMNS: Final = ("interval_start", "metering_point", "quantity", "energy_wh")
KWH_COLUMNS: Final = ("interval_start", "metering_point", "quantity", "energy_kwh")
QUALITY_COLUMN: Final = "quality"
QUALITIES: Final = frozenset({"L1", "L2", "L3"})
#: Problems listed in one refusal; the rest are counted.
MAX_PROBLEMS: Final = 100

_OBIS_PREFIX = re.compile(r"1-1:[12]\.9\.0\s+")
_WHOLE = re.compile(r"[0-9]+")
_KWH = re.compile(r"[0-9]+(\.[0-9]+)?")


class Quantity(StrEnum):
    """The grid operators' per-interval quantities (rules doc 1.4; OBIS after EEG Faktura)."""

    G01 = "G.01"
    G01T = "G.01T"
    G02 = "G.02"
    G03 = "G.03"
    G03R = "G.03R"
    P01 = "P.01"
    P01T = "P.01T"


#: Which quantities each role's metering point carries.
ROLE_QUANTITIES: Final = {
    Role.CONSUMER: frozenset(
        {Quantity.G01, Quantity.G01T, Quantity.G02, Quantity.G03, Quantity.G03R}
    ),
    Role.PRODUCER: frozenset({Quantity.G01, Quantity.G01T, Quantity.P01, Quantity.P01T}),
}


@dataclass(frozen=True)
class OfficialRow:
    """One value of the file. [Wh]"""

    line: int
    interval_start: datetime
    metering_point: str
    quantity: Quantity
    energy_wh: int
    quality: str | None


@dataclass(frozen=True)
class Problem:
    """Why a line (1: the header) is refused."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class Problems:
    """Problems collected over a whole file, the first :data:`MAX_PROBLEMS` kept."""

    listed: list[Problem] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_PROBLEMS:
            self.listed.append(Problem(line, reason))

    def __bool__(self) -> bool:
        return self.count > 0


class OfficialDataError(Exception):
    """A delivery refused whole: every problem found, with its line."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems.listed
        self.count = problems.count
        more = (
            f" (and {problems.count - len(problems.listed)} more)"
            if problems.count > len(problems.listed)
            else ""
        )
        first = "; ".join(str(p) for p in problems.listed[:3])
        super().__init__(f"{problems.count} problem(s){more}: {first}")


def parse_quantity(text: str) -> Quantity | None:
    """``G.01`` or ``1-1:1.9.0 G.01`` as a Quantity; None for anything else."""
    token = _OBIS_PREFIX.sub("", text.strip(), count=1).upper()
    try:
        return Quantity(token)
    except ValueError:
        return None


def read_official_csv(text: str, *, max_rows: int) -> list[OfficialRow]:
    """The rows of an official-data CSV, checked on their own.

    Raises:
        OfficialDataError: a wrong header, a malformed or out-of-range field, a value given
            twice for the same interval, metering point and quantity, no rows, or more than
            ``max_rows`` (every problem with its line).
    """
    problems = Problems()
    records = _records(text, problems)
    header = next(records, None)
    if header is None:
        problems.add(1, f"the file is empty; the header is {','.join(COLUMNS)}")
        raise OfficialDataError(problems)
    _, names = header
    names = [name.lower() for name in names]
    width = len(names)
    if tuple(names[:4]) not in (COLUMNS, KWH_COLUMNS) or names[4:] not in ([], [QUALITY_COLUMN]):
        problems.add(
            1,
            f"the header must be {','.join(COLUMNS)} (or energy_kwh), optionally with "
            f",{QUALITY_COLUMN}; got {','.join(names)}",
        )
        raise OfficialDataError(problems)
    in_kwh = names[3] == "energy_kwh"

    rows: list[OfficialRow] = []
    first_line: dict[tuple[datetime, str, Quantity], int] = {}
    seen = _Seen()
    for line, record in records:
        if len(record) != width:
            problems.add(line, f"{len(record)} fields, the header has {width}")
            continue
        row = _row(line, record, in_kwh, problems, seen)
        if row is None:
            continue
        key = (row.interval_start, row.metering_point, row.quantity)
        earlier = first_line.setdefault(key, line)
        if earlier != line:
            problems.add(
                line,
                f"{row.quantity} of {row.metering_point} for {_stamp(row.interval_start)} "
                f"again (first on line {earlier}): each value once per delivery",
            )
            continue
        rows.append(row)
        if len(rows) > max_rows:
            problems.add(line, f"more than {max_rows} values: split the delivery")
            break
    if not rows and not problems:
        problems.add(1, "the file has a header but no values")
    if problems:
        raise OfficialDataError(problems)
    return rows


def _records(text: str, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the line they start on; a CSV syntax error ends the file."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    line = 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                yield line, [cell.strip() for cell in record]
            line = reader.line_num + 1
    except csv.Error as exc:
        problems.add(reader.line_num, f"not valid CSV ({exc})")


@dataclass
class _Seen:
    """Fields parsed before: a delivery repeats each instant and point many times."""

    starts: dict[str, datetime] = field(default_factory=dict)
    points: dict[str, str] = field(default_factory=dict)
    quantities: dict[str, Quantity | None] = field(default_factory=dict)


def _row(
    line: int, record: list[str], in_kwh: bool, problems: Problems, seen: _Seen
) -> OfficialRow | None:
    found = problems.count
    start = seen.starts.get(record[0])
    if start is None:
        start = _start(record[0], line, problems)
        if start is not None:
            seen.starts[record[0]] = start
    point = seen.points.get(record[1])
    if point is None:
        point = _point(record[1], line, problems)
        if point is not None:
            seen.points[record[1]] = point
    if record[2] in seen.quantities:
        quantity = seen.quantities[record[2]]
    else:
        quantity = seen.quantities[record[2]] = parse_quantity(record[2])
    if quantity is None:
        problems.add(
            line, f"quantity is one of {', '.join(q.value for q in Quantity)}, got {record[2]!r}"
        )
    energy = _kwh(record[3], line, problems) if in_kwh else _wh(record[3], line, problems)
    quality = record[4].upper() if len(record) > 4 and record[4] else None
    if quality is not None and quality not in QUALITIES:
        problems.add(line, f"quality is L1, L2, L3 or empty, got {record[4]!r}")
    if start is None or point is None or quantity is None or energy is None:
        return None
    if problems.count != found:
        return None
    return OfficialRow(line, start, point, quantity, energy, quality)


def _start(text: str, line: int, problems: Problems) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        problems.add(line, f"interval_start is ISO 8601 with a UTC offset, got {text!r}")
        return None
    try:
        return check_interval_start(at)
    except CommunityError as exc:
        problems.add(line, str(exc))
        return None


def _point(text: str, line: int, problems: Problems) -> str | None:
    try:
        return parse_metering_point(text)
    except CommunityError as exc:
        problems.add(line, str(exc))
        return None


def _wh(text: str, line: int, problems: Problems) -> int | None:
    if not _WHOLE.fullmatch(text) or int(text) > MAX_INTERVAL_WH:
        problems.add(
            line, f"energy_wh is a whole number of Wh from 0 to {MAX_INTERVAL_WH}, got {text!r}"
        )
        return None
    return int(text)


def _kwh(text: str, line: int, problems: Problems) -> int | None:
    value = None
    if _KWH.fullmatch(text):
        try:
            value = Decimal(text) * 1000
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            value = None
    if value is None or value != value.to_integral_value() or value > MAX_INTERVAL_WH:
        problems.add(
            line,
            f"energy_kwh is 0 or more kWh in whole Wh (at most three decimals), got {text!r}",
        )
        return None
    return int(value)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
