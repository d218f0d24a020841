"""``ecommunity cloud import-energy --community ID FILE``: import the grid operator's official
15-minute values into the cloud database (the one ``cloud migrate`` and ``cloud serve`` use).

The file format is in docs/cloud-communities.md and ``cloud.community_energy.official_csv``.
All or nothing: a file with any bad row is refused whole (exit 2, every problem with its line);
gaps are reported, not refused. After the import our own allocation of the delivered range is
checked against the delivered one. Exit codes: 0 imported, 1 run-time failure (database), 2 bad
input or unknown community.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from ecommunity.cli import EXIT_FAILURE, EXIT_OK, UsageError
from ecommunity.commands.cloud import load_settings

if TYPE_CHECKING:
    from ecommunity.cloud.actions.energy_import import ImportReport
    from ecommunity.cloud.community_energy.allocation_check import AllocationCheck
    from ecommunity.cloud.community_energy.official_csv import OfficialDataError

logger = logging.getLogger(__name__)

#: Values per file (a month of about 40 members with four quantities each).
MAX_ROWS: Final = 500_000
#: Gap runs and differences printed (``--json`` has up to 200 of each).
_SHOWN: Final = 10


def import_energy_command(
    file: str,
    *,
    community_id: int,
    data_dir: str | None,
    as_json: bool,
    out: TextIO | None = None,
) -> int:
    """Import ``file`` (``-``: stdin) into community ``community_id``; print the report.

    Raises:
        UsageError: unreadable or refused input, or no such community.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from ecommunity.cloud.actions.energy_import import import_official_energy
    from ecommunity.cloud.api.official_energy_schemas import ImportReportOut
    from ecommunity.cloud.community_energy.allocation_check import check_stored
    from ecommunity.cloud.community_energy.official_csv import (
        OfficialDataError,
        read_official_csv,
    )
    from ecommunity.cloud.db.communities import find_community
    from ecommunity.cloud.db.engine import SchemaError, check_schema, make_engine, make_sessionmaker
    from ecommunity.cloud.errors import NotFoundError

    out = out if out is not None else sys.stdout
    text, name = _read(file)
    try:
        rows = read_official_csv(text, max_rows=MAX_ROWS)
    except OfficialDataError as exc:
        raise UsageError(_refusal(name, exc)) from None

    settings = load_settings(data_dir)
    url = settings.effective_database_url
    engine = make_engine(url)
    try:
        check_schema(engine, url)
        with make_sessionmaker(engine)() as db:
            try:
                report = import_official_energy(
                    db, community_id, rows, source=name, imported_by=None, now=datetime.now(UTC)
                )
            except NotFoundError as exc:
                raise UsageError(str(exc)) from None
            except OfficialDataError as exc:
                raise UsageError(_refusal(name, exc)) from None
            community = find_community(db, community_id)
            assert community is not None
            check = check_stored(db, community, report.first_start, report.last_end)
    except SchemaError as exc:
        sys.stderr.write(f"ecommunity: {exc}\n")
        return EXIT_FAILURE
    except SQLAlchemyError as exc:  # the database failed: a run-time failure, not the input
        logger.debug("import failed", exc_info=True)
        sys.stderr.write(f"ecommunity: the import failed, nothing was imported: {exc}\n")
        return EXIT_FAILURE
    finally:
        engine.dispose()
    if as_json:
        out.write(ImportReportOut.of(report, check).model_dump_json() + "\n")
    else:
        out.write(format_report(report, check))
    return EXIT_OK


def _read(file: str) -> tuple[str, str]:
    name = "<stdin>" if file == "-" else file
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig"), name
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not UTF-8 text (byte {exc.start})") from None


def _refusal(name: str, error: OfficialDataError) -> str:
    lines = [f"{name}: nothing imported, {error.count} problem(s):"]
    lines += [f"{name}:{p.line}: {p.reason}" for p in error.problems]
    if error.count > len(error.problems):
        lines.append(f"... and {error.count - len(error.problems)} more")
    return "\n".join(lines)


def format_report(report: ImportReport, check: AllocationCheck) -> str:
    """The report as a few lines of text."""
    lines = [
        f"import {report.import_id} into community {report.community_id}: {report.rows} values "
        f"of {report.metering_points} metering points, {_stamp(report.first_start)} to "
        f"{_stamp(report.last_end)}",
        f"new {report.new_values}, corrections {report.corrections}, unchanged {report.unchanged}",
    ]
    if report.missing_values:
        lines.append(f"gaps: {report.missing_values} values missing in the delivered range")
        lines += [
            f"  {g.metering_point} {g.quantity}: {g.intervals} quarter hours from "
            f"{_stamp(g.first_start)} to {_stamp(g.end)}"
            for g in report.gaps[:_SHOWN]
        ]
    else:
        lines.append("gaps: none")
    lines.append(_check_line(check))
    lines += [
        f"  {d.interval_start:%Y-%m-%dT%H:%MZ} {d.metering_point} {d.quantity}: "
        f"operator {d.official_wh} Wh, ours {d.ours_wh} Wh"
        for d in check.differences[:_SHOWN]
    ]
    return "\n".join(lines) + "\n"


def _check_line(check: AllocationCheck) -> str:
    if check.problem is not None:
        return f"allocation check: not possible ({check.problem})"
    compared = sum(q.compared for q in check.quantities)
    beyond = sum(q.beyond_tolerance for q in check.quantities)
    largest = max((q.max_abs_difference_wh for q in check.quantities), default=0)
    skipped = f", {check.unchecked_intervals} quarter hours without every G.01 skipped"
    verdict = "reproduced" if check.reproduced else f"{beyond} values differ"
    return (
        f"allocation check ({check.model.value}): {verdict}; {compared} official values "
        f"compared in {check.checked_intervals} quarter hours, largest difference "
        f"{largest} Wh" + (skipped if check.unchecked_intervals else "")
    )


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
