"""What the side-by-side benchmarks share: contenders that take turns for the same time, and a
fresh SQLite file per round (so every round inserts new rows)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class Side(Protocol):
    """One contender: ``run`` does about ``budget`` seconds of work, returns (units, time)."""

    def run(self, budget: float) -> tuple[int, float]: ...


@dataclasses.dataclass(slots=True)
class Tally:
    units: int = 0
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.units / self.elapsed if self.elapsed > 0 else 0.0


def take_turns(sides: Sequence[Side], seconds: float, turn: float) -> list[Tally]:
    """Let the (warmed-up) sides take turns of ``turn`` seconds until each has run for
    ``seconds``, so that both see the same machine load."""
    tallies = [Tally() for _ in sides]
    while True:
        pending = [(s, t) for s, t in zip(sides, tallies, strict=True) if t.elapsed < seconds]
        if not pending:
            return tallies
        for side, tally in pending:
            units, elapsed = side.run(min(turn, seconds - tally.elapsed))
            tally.units += units
            tally.elapsed += elapsed


class FreshFiles:
    """A new database file name per round, so every round inserts new rows."""

    def __init__(self, directory: Path, prefix: str, suffix: str = ".sqlite3") -> None:
        self.directory = directory
        self.prefix = prefix
        self.suffix = suffix
        self.number = 0

    def next(self) -> Path:
        self.number += 1
        return self.directory / f"{self.prefix}-{self.number}{self.suffix}"

    @staticmethod
    def remove(path: Path) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
