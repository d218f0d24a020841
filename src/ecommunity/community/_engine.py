"""The allocation loop: column segments (one per task), member blocks, running sums.

The formulas are in :mod:`ecommunity.community.allocation`; this module only makes them fast.
Intervals are independent, so the ``T`` columns are cut into segments that worker threads
take (NumPy releases the GIL while it computes). Within a segment the members are walked in
their fixed order, a block of rows at a time, carrying the running sums of the rounding rule
(:mod:`ecommunity.community.rounding`) from one block to the next. A block is small enough to
stay in the CPU cache and long along the interval axis, so every operation runs over contiguous
memory; nothing of the size of the whole input is allocated except the results.

Two passes: the first adds up each column's participating consumption ``C`` and production
``P`` and checks the energies; the second computes G.02, G.03 and the producers' surplus.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np

from ecommunity.community.rounding import Int64Array, IntArray, ScaledFloors

R = TypeVar("R")

#: Cells (rows × intervals) per block: a few such int64/float64 buffers fit a core's L2 cache.
_BLOCK_CELLS: Final = 1 << 15
#: Columns per segment at most; fewer segments than workers are never made.
_SEGMENT_COLUMNS: Final = 1 << 15
#: Below this many cells a single thread does it all (thread start-up would dominate).
_THREADED_CELLS: Final = 1 << 22
#: Running sums along the member axis: NumPy's cumsum over axis 0 walks each column with a
#: stride, so for long rows a loop of row additions is several times faster.
_LOOP_ROWS_FROM_WIDTH: Final = 512


@dataclass(frozen=True)
class Side:
    """One role's input: energies G.01 ``(N, T)`` and factors broadcast to ``(N, T)``. [Wh, %]"""

    energy_wh: Int64Array
    tf_percent: Int64Array
    #: Rows whose factor is 100 in every interval: their G.01T is G.01 (no arithmetic).
    full_rows: list[bool]

    @classmethod
    def of(cls, energy_wh: Int64Array, tf_percent: Int64Array, factors: Int64Array) -> Side:
        """``factors`` is the factor array as given, before broadcasting (at most 2-D)."""
        rows = energy_wh.shape[0]
        is_full = np.asarray(factors == 100)
        is_full = is_full.reshape((1,) * (2 - is_full.ndim) + is_full.shape)
        full = np.broadcast_to(is_full.all(axis=1), (rows,)) if is_full.size else None
        return cls(
            energy_wh=energy_wh,
            tf_percent=tf_percent,
            full_rows=[True] * rows if full is None else [bool(f) for f in full],
        )

    @property
    def rows(self) -> int:
        return int(self.energy_wh.shape[0])

    def participating(self, rows: slice, columns: slice, buffer: Int64Array) -> Int64Array:
        """G.01T of a block: the energies themselves where every factor is 100."""
        energy = self.energy_wh[rows, columns]
        if all(self.full_rows[rows]):
            return energy
        out = buffer[: energy.shape[0]]
        np.multiply(energy, self.tf_percent[rows, columns], out=out)
        np.floor_divide(out, 100, out=out)
        return out


@dataclass(frozen=True)
class Column:
    """Per-segment column totals from the first pass."""

    #: Σ G.01T of each column. [Wh]
    total_wh: Int64Array
    #: Largest G.01 in the segment read as unsigned: above the limit when any is negative.
    largest_unsigned: int


@dataclass(frozen=True)
class Segments:
    """The column segments of ``T`` intervals and how many threads work on them."""

    bounds: tuple[slice, ...]
    workers: int

    @classmethod
    def plan(cls, rows: int, columns: int, workers: int | None) -> Segments:
        if workers is None:
            workers = _available_cpus() if rows * columns >= _THREADED_CELLS else 1
        workers = max(1, min(workers, columns or 1))
        count = max(workers, math.ceil(columns / _SEGMENT_COLUMNS))
        count = math.ceil(count / workers) * workers
        width = max(1, math.ceil(columns / count))
        bounds = tuple(slice(a, min(a + width, columns)) for a in range(0, columns, width))
        return cls(bounds=bounds, workers=workers)

    def map(self, task: Callable[[slice], R]) -> list[R]:
        """``task`` on every segment, in threads when there are several workers."""
        if self.workers == 1 or len(self.bounds) == 1:
            return [task(bound) for bound in self.bounds]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="allocation") as pool:
            return list(pool.map(task, self.bounds))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _block_rows(width: int) -> int:
    return max(1, _BLOCK_CELLS // max(width, 1))


def column_totals(side: Side, columns: slice) -> Column:
    """First pass over one segment: Σ G.01T per column and the largest G.01 (unsigned)."""
    width = columns.stop - columns.start
    total = np.zeros(width, dtype=np.int64)
    block = _block_rows(width)
    buffer = np.empty((block, width), dtype=np.int64)
    largest = 0
    for start in range(0, side.rows, block):
        rows = slice(start, start + block)
        energy = side.energy_wh[rows, columns]
        # A negative energy read as uint64 is above 2**63: one comparison catches both ends.
        largest = max(largest, int(energy.view(np.uint64).max()))
        _add_rows(total, side.participating(rows, columns, buffer))
    return Column(total_wh=total, largest_unsigned=largest)


def _add_rows(accumulator: Int64Array, block: IntArray) -> None:
    if block.shape[0] == 1:
        np.add(accumulator, block[0], out=accumulator)
    else:
        np.add(accumulator, block.sum(axis=0), out=accumulator)


def _running_sum(
    block: Int64Array, carry: Int64Array, out: Int64Array
) -> tuple[Int64Array, Int64Array]:
    """``carry + cumsum(block, axis=0)`` into ``out``, and its last row (the next carry).

    ``carry`` may be the last row of ``out`` from the block before: it is read first.
    """
    rows = block.shape[0]
    out = out[:rows]
    if block.shape[1] >= _LOOP_ROWS_FROM_WIDTH:
        previous = carry
        for row in range(rows):
            np.add(previous, block[row], out=out[row])
            previous = out[row]
    else:
        carry = carry.copy()  # cumsum writes every row before the carry is added
        np.cumsum(block, axis=0, out=out)
        out += carry
    return out, out[-1]


def _differences(floors: Int64Array, previous: Int64Array, out: IntArray) -> None:
    """Row differences of the running floors, continuing from ``previous``."""
    np.subtract(floors[0], previous, out=out[0])
    if floors.shape[0] > 1:
        np.subtract(floors[1:], floors[:-1], out=out[1:])


@dataclass(frozen=True)
class Shares:
    """How consumers' shares are weighted: ``G.02_i = total × weight_i / denominator``."""

    #: Dynamic: None, the weights are G.01T. Static: each consumer's key numerator.
    numerators: Int64Array | None = None
    #: Static: the keys' common denominator.
    denominator: int = 1
    #: Static with factors constant over the intervals: the running sums of the numerators of
    #: the consumers taking part, the same in every column.
    running_numerators: Int64Array | None = None


def allocate_segment(
    consumers: Side,
    producers: Side,
    shares: Shares,
    columns: slice,
    consumption: Column,
    production: Column,
    allocated: IntArray,
    covered: IntArray,
    surplus: IntArray,
) -> None:
    """Second pass over one segment: G.02 and G.03 of every consumer, producers' surplus."""
    width = columns.stop - columns.start
    block = _block_rows(width)
    running = np.empty((block, width), dtype=np.int64)
    buffer = np.empty((block, width), dtype=np.int64)
    scratch = np.empty((block, width), dtype=np.float64)
    # Two buffers of floors, taken in turn: a block's differences start from the last floors of
    # the block before, which must not be overwritten yet.
    floor_buffers = (np.empty((block, width), dtype=np.int64), np.empty_like(running))
    zeros = np.zeros(width, dtype=np.int64)
    taken = np.zeros(width, dtype=np.int64)

    total_c, total_p = consumption.total_wh, production.total_wh
    if shares.numerators is None:
        # Dynamic: G.02_i = P · c_i / C; nothing to share where no one consumes.
        floors_of = ScaledFloors.of(np.where(total_c > 0, total_p, 0), np.maximum(total_c, 1))
    else:
        floors_of = ScaledFloors.of(total_p, np.full(width, shares.denominator, dtype=np.int64))

    carry, previous = zeros, zeros
    for number, start in enumerate(range(0, consumers.rows, block)):
        rows = slice(start, start + block)
        c = consumers.participating(rows, columns, buffer)
        if shares.numerators is None:
            sums, carry = _running_sum(c, carry, running)
        elif shares.running_numerators is not None:
            sums = shares.running_numerators[rows, np.newaxis]
        else:
            weights = _key_weights(consumers, shares, rows, columns)
            sums, carry = _running_sum(weights, carry, running)
        size = sums.shape[0]
        floors = floor_buffers[number % 2][:size]
        floors_of(sums, scratch=scratch[:size], out=floors)
        g02 = allocated[rows, columns]
        _differences(floors, previous, g02)
        previous = floors[-1]
        g03 = covered[rows, columns]
        np.minimum(g02, c, out=g03)
        _add_rows(taken, g03)

    # Producers are credited Σ G.03 pro rata to their G.01T, by the same rounding rule.
    floors_of = ScaledFloors.of(taken, np.maximum(total_p, 1))
    carry, previous = zeros, zeros
    for number, start in enumerate(range(0, producers.rows, block)):
        rows = slice(start, start + block)
        p = producers.participating(rows, columns, buffer)
        sums, carry = _running_sum(p, carry, running)
        size = sums.shape[0]
        floors = floor_buffers[number % 2][:size]
        floors_of(sums, scratch=scratch[:size], out=floors)
        rest = surplus[rows, columns]
        _differences(floors, previous, rest)
        previous = floors[-1]
        np.subtract(p, rest, out=rest)


def _key_weights(consumers: Side, shares: Shares, rows: slice, columns: slice) -> Int64Array:
    """Static: each consumer's key numerator where it takes part (factor above 0), else 0."""
    assert shares.numerators is not None
    numerators = shares.numerators[rows, np.newaxis]
    return numerators * (consumers.tf_percent[rows, columns] > 0)
