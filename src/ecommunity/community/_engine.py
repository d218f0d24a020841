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

The second pass works in int32 (every energy, running sum and share is below 2**31, checked by
the first pass) with one float64 step for the floors: half the bytes of int64 to move through the
cache in every operation, and no mixed-type operations (NumPy casts those through a buffer).

Most of the time goes into moving memory: reading the input twice and writing the results.
Intervals without production (nights, about half) are not left out although their shares are
0: taking only each day's daylight quarter hours (a window per four weeks, as strided views of
the rows) cost more in strided reads and writes than it saved in arithmetic (0.49 s against
0.45 s of CPU for a year of 2,000 members).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np

from ecommunity.community.rounding import (
    Float64Array,
    Int32Array,
    Int64Array,
    IntArray,
    ScaledFloors,
)

R = TypeVar("R")

#: Cells (rows × intervals) per block: a few such int32/float64 buffers fit a core's L2 cache.
_BLOCK_CELLS: Final = 1 << 15
#: Columns per segment at most (fewer segments than workers are never made). Long rows: each
#: row of a segment costs a dozen NumPy calls, and a row's work arrays still fit the L2 cache.
_SEGMENT_COLUMNS: Final = 1 << 16
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

    def participating32(
        self, rows: slice, columns: slice, product: Int64Array, out: Int32Array
    ) -> Int32Array:
        """G.01T of a block as int32: only after the first pass checked the energies' range."""
        energy = self.energy_wh[rows, columns]
        out = out[: energy.shape[0]]
        np.copyto(out, energy, casting="unsafe")
        # Rows with a factor below 100 again, one by one: in blocks of several rows, a tenth
        # of the members taking part with 50 % would otherwise make most blocks compute in
        # int64.
        for offset, full in enumerate(self.full_rows[rows]):
            if not full:
                row = rows.start + offset
                np.multiply(energy[offset], self.tf_percent[row, columns], out=product)
                np.floor_divide(product, 100, out=product)
                np.copyto(out[offset], product, casting="unsafe")
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
    def plan(cls, columns: int, workers: int) -> Segments:
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


def _add_rows(accumulator: IntArray, block: IntArray) -> None:
    if block.shape[0] == 1:
        np.add(accumulator, block[0], out=accumulator)
    else:
        np.add(accumulator, block.sum(axis=0, dtype=accumulator.dtype), out=accumulator)


def _running_sum(
    block: Int32Array, carry: Int32Array, out: Int32Array
) -> tuple[Int32Array, Int32Array]:
    """``carry + cumsum(block, axis=0)`` into ``out``, and its last row (the next carry).

    ``carry`` may be the last row of ``out`` from the block before: it is read first. The sums
    stay below 2**31: they are partial sums of a column total the first pass checked.
    """
    rows = block.shape[0]
    out = out[:rows]
    if block[0].size >= _LOOP_ROWS_FROM_WIDTH:
        previous = carry
        for row in range(rows):
            np.add(previous, block[row], out=out[row])
            previous = out[row]
    else:
        carry = carry.copy()  # cumsum writes every row before the carry is added
        np.cumsum(block, axis=0, dtype=np.int32, out=out)
        out += carry
    return out, out[-1]


def _differences(floors: Int32Array, previous: Int32Array, out: Int32Array) -> None:
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


@dataclass
class _Buffers:
    """A segment's block-sized work arrays, allocated once and reused by every block."""

    #: One row of G.01 × TF.
    product: Int64Array
    energy: Int32Array
    #: Static keys with factors that change over the intervals: the weights taking part.
    weights: Int32Array
    running: Int32Array
    scratch: Float64Array
    #: Two buffers of floors, taken in turn: a block's differences start from the last floors
    #: of the block before, which must not be overwritten yet.
    floors: tuple[Int32Array, Int32Array]

    @classmethod
    def of(cls, rows: int, width: int, *, weights: bool) -> _Buffers:
        full = (rows, width)
        return cls(
            product=np.empty(width, dtype=np.int64),
            energy=np.empty(full, dtype=np.int32),
            weights=np.empty(full if weights else (0, width), dtype=np.int32),
            running=np.empty(full, dtype=np.int32),
            scratch=np.empty(full, dtype=np.float64),
            floors=(np.empty(full, dtype=np.int32), np.empty(full, dtype=np.int32)),
        )


def allocate_segment(
    consumers: Side,
    producers: Side,
    shares: Shares,
    columns: slice,
    consumption: Column,
    production: Column,
    allocated: Int32Array,
    covered: Int32Array,
    surplus: Int32Array,
) -> None:
    """Second pass over one segment: G.02 and G.03 of every consumer, producers' surplus."""
    width = columns.stop - columns.start
    block = _block_rows(width)
    dynamic = shares.numerators is None
    buffers = _Buffers.of(block, width, weights=not dynamic and shares.running_numerators is None)
    zeros = np.zeros(width, dtype=np.int32)

    total_c, total_p = consumption.total_wh, production.total_wh
    if dynamic:
        # G.02_i = P · c_i / C; nothing to share where no one consumes.
        floors_of = ScaledFloors.of(np.where(total_c > 0, total_p, 0), np.maximum(total_c, 1))
    else:
        floors_of = ScaledFloors.of(total_p, np.full(width, shares.denominator, dtype=np.int64))
    # Σ G.03 ≤ Σ G.02 ≤ P < 2**31: an int32 accumulator does.
    taken = np.zeros(width, dtype=np.int32)

    carry, previous = zeros, zeros
    for number, start in enumerate(range(0, consumers.rows, block)):
        rows = slice(start, start + block)
        c = consumers.participating32(rows, columns, buffers.product, buffers.energy)
        size = c.shape[0]
        sums: IntArray
        if dynamic:
            sums, carry = _running_sum(c, carry, buffers.running)
        elif shares.running_numerators is not None:
            sums = shares.running_numerators[rows, np.newaxis]
        else:
            weights = _key_weights(consumers, shares, rows, columns, buffers.weights[:size])
            sums, carry = _running_sum(weights, carry, buffers.running)
        floors = buffers.floors[number % 2][:size]
        floors_of(sums, scratch=buffers.scratch[:size], out=floors)
        g02 = allocated[rows, columns]
        _differences(floors, previous, g02)
        previous = floors[-1]
        g03 = covered[rows, columns]
        np.minimum(g02, c, out=g03)
        if not dynamic:
            _add_rows(taken, g03)
    if dynamic:
        # Σ G.03 = min(P, C) without adding it up: where P ≤ C every share is at most the
        # consumption (G.03 = G.02, and Σ G.02 = P), where P > C every consumer is covered
        # (G.03 = c, Σ = C). Exact because the floors are.
        np.minimum(total_p, total_c, out=taken, casting="unsafe")

    # Producers are credited Σ G.03 pro rata to their G.01T, by the same rounding rule.
    floors_of = ScaledFloors.of(taken.astype(np.int64), np.maximum(total_p, 1))
    carry, previous = zeros, zeros
    for number, start in enumerate(range(0, producers.rows, block)):
        rows = slice(start, start + block)
        p = producers.participating32(rows, columns, buffers.product, buffers.energy)
        sums, carry = _running_sum(p, carry, buffers.running)
        floors = buffers.floors[number % 2][: p.shape[0]]
        floors_of(sums, scratch=buffers.scratch[: p.shape[0]], out=floors)
        rest = surplus[rows, columns]
        _differences(floors, previous, rest)
        previous = floors[-1]
        np.subtract(p, rest, out=rest)


def _key_weights(
    consumers: Side, shares: Shares, rows: slice, columns: slice, out: Int32Array
) -> Int32Array:
    """Static: each consumer's key numerator where it takes part (factor above 0), else 0."""
    assert shares.numerators is not None
    numerators = shares.numerators[rows, np.newaxis]
    taking_part = consumers.tf_percent[rows, columns] > 0
    np.multiply(numerators, taking_part, out=out, casting="unsafe")
    return out
