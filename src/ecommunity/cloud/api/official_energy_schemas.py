"""Schemas of the official-data import and the allocation check (API and ``--json``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from ecommunity.cloud.actions.energy_import import ImportReport
from ecommunity.cloud.community_energy.allocation_check import AllocationCheck
from ecommunity.cloud.community_energy.official_csv import OfficialDataError
from ecommunity.cloud.db.energy_models import OfficialEnergyImport
from ecommunity.cloud.db.official_energy import as_utc


class ProblemOut(BaseModel):
    #: The CSV line (1: the header).
    line: int
    reason: str


class OfficialDataErrorOut(BaseModel):
    """A delivery refused whole: nothing was imported."""

    detail: str
    code: str
    problem_count: int
    #: The first 100 problems.
    problems: list[ProblemOut]

    @classmethod
    def of(cls, error: OfficialDataError) -> OfficialDataErrorOut:
        return cls(
            detail=f"nothing imported: {error}",
            code="invalid_official_data",
            problem_count=error.count,
            problems=[ProblemOut(line=p.line, reason=p.reason) for p in error.problems],
        )


class GapOut(BaseModel):
    """Quarter hours ``[start, end)`` in which a metering point lacks a quantity."""

    metering_point: str
    quantity: str
    start: datetime
    end: datetime
    intervals: int


class QuantityCheckOut(BaseModel):
    role: str
    quantity: str
    compared: int
    equal: int
    beyond_tolerance: int
    max_abs_difference_wh: int


class DifferenceOut(BaseModel):
    metering_point: str
    quantity: str
    interval_start: datetime
    official_wh: int
    ours_wh: int


class AllocationCheckOut(BaseModel):
    """Our engine on the official G.01 against the grid operator's G.01T, G.02, G.03, P.01T."""

    model: str
    start: datetime
    end: datetime
    tolerance_wh: int
    intervals: int
    checked_intervals: int
    #: Quarter hours skipped: a point taking part has no official G.01 there.
    unchecked_intervals: int
    #: Every compared value within the tolerance.
    reproduced: bool
    quantities: list[QuantityCheckOut]
    #: The first 200 differences beyond the tolerance.
    differences: list[DifferenceOut]
    problem: str | None

    @classmethod
    def of(cls, check: AllocationCheck) -> AllocationCheckOut:
        return cls(
            model=check.model.value,
            start=check.start,
            end=check.end,
            tolerance_wh=check.tolerance_wh,
            intervals=check.intervals,
            checked_intervals=check.checked_intervals,
            unchecked_intervals=check.unchecked_intervals,
            reproduced=check.reproduced,
            quantities=[
                QuantityCheckOut(
                    role=q.role.value,
                    quantity=q.quantity.value,
                    compared=q.compared,
                    equal=q.equal,
                    beyond_tolerance=q.beyond_tolerance,
                    max_abs_difference_wh=q.max_abs_difference_wh,
                )
                for q in check.quantities
            ],
            differences=[
                DifferenceOut(
                    metering_point=d.metering_point,
                    quantity=d.quantity.value,
                    interval_start=d.interval_start,
                    official_wh=d.official_wh,
                    ours_wh=d.ours_wh,
                )
                for d in check.differences
            ],
            problem=check.problem,
        )


class ImportReportOut(BaseModel):
    """What an import stored, what it corrected, what is still missing, and whether our own
    allocation reproduces the delivered one."""

    import_id: int
    community_id: int
    rows: int
    metering_points: int
    new_values: int
    #: Values that replaced a different earlier one (the earlier one is kept).
    corrections: int
    unchanged: int
    #: The delivered range ``[first_start, last_end)``.
    first_start: datetime
    last_end: datetime
    #: Values missing in the delivered range (point × quantity × quarter hour).
    missing_values: int
    #: The first 200 runs of them.
    gaps: list[GapOut]
    allocation_check: AllocationCheckOut

    @classmethod
    def of(cls, report: ImportReport, check: AllocationCheck) -> ImportReportOut:
        return cls(
            import_id=report.import_id,
            community_id=report.community_id,
            rows=report.rows,
            metering_points=report.metering_points,
            new_values=report.new_values,
            corrections=report.corrections,
            unchanged=report.unchanged,
            first_start=report.first_start,
            last_end=report.last_end,
            missing_values=report.missing_values,
            gaps=[
                GapOut(
                    metering_point=g.metering_point,
                    quantity=g.quantity.value,
                    start=g.first_start,
                    end=g.end,
                    intervals=g.intervals,
                )
                for g in report.gaps
            ],
            allocation_check=AllocationCheckOut.of(check),
        )


class ImportOut(BaseModel):
    """An earlier import."""

    id: int
    imported_at: datetime
    #: The operator who uploaded it; null for the command line.
    imported_by: int | None
    source: str
    rows: int
    new_values: int
    corrections: int
    unchanged: int
    missing_values: int
    first_start: datetime
    last_end: datetime

    @classmethod
    def of(cls, record: OfficialEnergyImport) -> ImportOut:
        return cls(
            id=record.id,
            imported_at=as_utc(record.imported_at),
            imported_by=record.imported_by,
            source=record.source,
            rows=record.rows,
            new_values=record.new_values,
            corrections=record.corrections,
            unchanged=record.unchanged,
            missing_values=record.gaps,
            first_start=as_utc(record.first_start),
            last_end=as_utc(record.last_end),
        )


class CorrectionOut(BaseModel):
    """An official value replaced by a re-delivery."""

    metering_point: str
    quantity: str
    interval_start: datetime
    previous_energy_wh: int
    energy_wh: int
    previous_import_id: int
    import_id: int
