"""Decoder and store benchmarks, side by side, in one run.

1. DLMS push decoding: our decoder vs. the gurux-dlms baseline (``_gurux_baseline.py``) on every
   DLMS vector in ``tests/data/meter-vectors``. Gurux never checks the GCM tag, so the main
   comparison runs ours without the authentication key (tag unchecked, same work); a second
   column runs ours with the key (tag verified).
2. AMIS: our decoder on the AMIS vectors' long frames and on a generated stream of distinct
   frames (``encode_amis``).
3. Gateway store: ``ReadingStore.add`` (one commit per reading, the live path) vs. a raw
   ``sqlite3`` ``executemany`` of the same rows in one transaction.

Every side first warms up, then the sides of a comparison take turns in short slices until
each has run for ``--seconds``; rates are units over summed ``time.perf_counter`` time.

Run: ``python bench/decode.py [--seconds S] [--json]``. Exit 1 if a decoder gives wrong
values, else 0 (targets missed are reported, not failed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from time import perf_counter
from typing import Any, Final

from _turns import FreshFiles, Side, Tally, take_turns
from ecommunity.gateway.store import INSERT_SQL, ReadingStore, row_of
from ecommunity.meter import (
    Keys,
    Reading,
    StreamDecoder,
    TagCheck,
    decode_apdu,
    encode_amis,
    get_profile,
)

try:
    from _gurux_baseline import GuruxDecoder, quiet_gurux, supported
except ImportError as exc:  # gurux-dlms is an optional dependency
    print(f"bench/decode.py needs gurux-dlms ({exc}): pip install -e '.[bench]'", file=sys.stderr)
    sys.exit(2)

VECTOR_DIR: Final = Path(__file__).resolve().parent.parent / "tests" / "data" / "meter-vectors"

#: Profiles by vector id; vectors not listed are decoded without a profile (auto-detect).
DLMS_PROFILES: Final[dict[str, str]] = {
    "lg-e450-netzburgenland": "netzburgenland",
    "siemens-im350-wienernetze": "wienernetze",
    "iskra-am550-wienernetze": "wienernetze",
    "lg-e450-wienernetze": "wienernetze",
    "kaifa-netznoe-official-example": "netznoe",
    "sagemcom-t210dr-energiesteiermark-p1": "energienetze-steiermark",
}
#: A bare plaintext APDU without transport framing: decoded with ``decode_apdu`` directly.
BARE_APDU: Final[dict[str, str]] = {"kaifa-salzburgnetz-decrypted-apdu": "salzburgnetz"}
ENERGY_IMPORT: Final = "1.0.1.8.0.255"

DLMS_TARGET: Final = 10.0
DLMS_GOAL: Final = 20.0
AMIS_TARGET: Final = 5000.0
#: The vector the generated AMIS stream is derived from.
AMIS_SEED_VECTOR: Final = "amis-netzooe-spec-example"
#: Serial reads deliver arbitrary chunks; frames of the generated stream straddle their borders.
AMIS_CHUNK: Final = 4096


class WrongValueError(Exception):
    """A decoder gave a wrong result: the benchmark exits 1."""


# --------------------------------------------------------------------------- timing


class LoopSide:
    """Calls ``call`` in a tight loop; each call counts ``units_per_call`` units (frames)."""

    def __init__(self, call: Callable[[], object], units_per_call: int) -> None:
        self.call = call
        self.units_per_call = units_per_call
        self._per_call = 0.0

    def run(self, budget: float) -> tuple[int, float]:
        count = max(1, int(budget / self._per_call)) if self._per_call > 0 else 1
        call = self.call
        start = perf_counter()
        for _ in range(count):
            call()
        elapsed = perf_counter() - start
        self._per_call = elapsed / count
        return count * self.units_per_call, elapsed


def measure(sides: Sequence[Side], seconds: float) -> list[Tally]:
    """Warm every side up, then let them take turns until each has run for ``seconds``."""
    warmup = min(0.3, seconds / 4)
    turn = max(0.02, min(0.25, seconds / 8))
    for side in sides:
        spent = 0.0
        while spent < warmup:
            spent += side.run(warmup - spent)[1]
    return take_turns(sides, seconds, turn)


# --------------------------------------------------------------------------- vectors


def load_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        vectors.extend(json.loads(path.read_text())["vectors"])
    return vectors


def is_amis(vector: dict[str, Any]) -> bool:
    return str(vector["protocol"]).startswith("mbus-sndud")


def frames_of(vector: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(frame) for frame in vector["frames_hex"]]


def key_of(vector: dict[str, Any], field: str) -> bytes | None:
    value = vector.get(field)
    return bytes.fromhex(value) if value else None


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WrongValueError(message)


# --------------------------------------------------------------------------- 1. DLMS


@dataclasses.dataclass(slots=True)
class DlmsResult:
    vector_id: str
    frames_per_push: int
    gurux_mode: str  # "full" or "decrypt-only" (not comparable)
    ours: Tally
    ours_tag: Tally | None  # None: the frame has no tag, ours == ours with tag check
    gurux: Tally

    @property
    def comparable(self) -> bool:
        return self.gurux_mode == "full"

    @property
    def ours_tag_or_same(self) -> Tally:
        return self.ours if self.ours_tag is None else self.ours_tag

    def json(self) -> dict[str, Any]:
        return {
            "vector": self.vector_id,
            "frames_per_push": self.frames_per_push,
            "gurux_mode": self.gurux_mode,
            "ours_frames_per_s": self.ours.rate,
            "ours_tag_check_frames_per_s": None if self.ours_tag is None else self.ours_tag.rate,
            "gurux_frames_per_s": self.gurux.rate,
            "ratio": self.ours.rate / self.gurux.rate if self.comparable else None,
            "ratio_tag_check": (
                self.ours_tag_or_same.rate / self.gurux.rate if self.comparable else None
            ),
        }


def _has_tag(vector: dict[str, Any]) -> bool:
    control = vector.get("dlms", {}).get("security_control")
    return control is not None and bool(int(str(control), 16) & 0x10)


def _expected_tag(vector: dict[str, Any], with_auth_key: bool) -> TagCheck:
    if not _has_tag(vector):
        return TagCheck.NOT_PRESENT
    if not with_auth_key:
        return TagCheck.UNCHECKED
    verdict = str(vector.get("dlms", {}).get("gcm_tag", ""))
    return TagCheck.FAILED if verdict.upper().startswith("DOES NOT VERIFY") else TagCheck.VERIFIED


def _ours_push(vector: dict[str, Any], *, with_auth_key: bool) -> Callable[[], Reading]:
    """One push through our decoder; raises WrongValueError unless it gives exactly one reading."""
    frames = frames_of(vector)
    key = key_of(vector, "key_hex")
    auth_key = key_of(vector, "auth_key_hex") if with_auth_key else None
    bare_profile = BARE_APDU.get(vector["id"])
    if bare_profile is not None:
        apdu, profile, keys = frames[0], get_profile(bare_profile), Keys(key, auth_key)

        def push_apdu() -> Reading:
            return decode_apdu(apdu, profile, keys)

        return push_apdu

    profile_name = DLMS_PROFILES.get(vector["id"])
    decoder = StreamDecoder(
        get_profile(profile_name) if profile_name else None, key=key, auth_key=auth_key
    )
    wire = b"".join(frames)
    feed = decoder.feed

    def push() -> Reading:
        feed(wire)
        readings = list(decoder)
        if len(readings) != 1:
            raise WrongValueError(f"{vector['id']}: one push gave {len(readings)} readings, not 1")
        return readings[0]

    return push


def _check_ours(vector: dict[str, Any], reading: Reading, *, with_auth_key: bool) -> None:
    name = f"{vector['id']} (ours{', tag check' if with_auth_key else ''})"
    expected = vector["expected"].get(ENERGY_IMPORT)
    if expected is not None:
        _check(
            reading.energy_import_wh == expected["value"],
            f"{name}: energy_import_wh {reading.energy_import_wh} != {expected['value']}",
        )
    tag = _expected_tag(vector, with_auth_key)
    _check(reading.tag_check is tag, f"{name}: tag {reading.tag_check.value}, not {tag.value}")


def _numbers(value: Any) -> Iterator[int]:
    if isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value


def _check_gurux(vector: dict[str, Any], decoder: GuruxDecoder, values: list[Any]) -> None:
    name = f"{vector['id']} (gurux)"
    if decoder.decrypt_only:
        expected_text = vector.get("expected_plaintext_dsmr")
        if expected_text is not None:
            _check(values == [expected_text.encode()], f"{name}: wrong plaintext")
        return
    expected = vector["expected"].get(ENERGY_IMPORT)
    if expected is not None:
        # Gurux returns raw register values: the scaler is not applied.
        wanted = expected["value"]
        _check(
            any(n == wanted * 10**k for n in _numbers(values) for k in range(4)),
            f"{name}: energy import {wanted} not among the decoded values",
        )


def bench_dlms(vector: dict[str, Any], seconds: float) -> DlmsResult:
    frames = frames_of(vector)
    pushes: list[tuple[Callable[[], Reading], bool]] = [
        (_ours_push(vector, with_auth_key=False), False)
    ]
    if vector.get("auth_key_hex"):
        pushes.append((_ours_push(vector, with_auth_key=True), True))
    gurux = GuruxDecoder(vector)

    def gurux_push() -> list[Any]:
        return gurux.decode(frames)

    for push, with_auth_key in pushes:
        _check_ours(vector, push(), with_auth_key=with_auth_key)
    with quiet_gurux():
        _check_gurux(vector, gurux, gurux_push())
        sides: list[Side] = [LoopSide(push, len(frames)) for push, _ in pushes]
        sides.append(LoopSide(gurux_push, len(frames)))
        tallies = measure(sides, seconds)
        _check_gurux(vector, gurux, gurux_push())
    for push, with_auth_key in pushes:  # still right after many pushes on the same decoder
        _check_ours(vector, push(), with_auth_key=with_auth_key)
    return DlmsResult(
        vector_id=vector["id"],
        frames_per_push=len(frames),
        gurux_mode="decrypt-only" if gurux.decrypt_only or not supported(vector) else "full",
        ours=tallies[0],
        ours_tag=tallies[1] if len(pushes) == 2 else None,
        gurux=tallies[-1],
    )


def dlms_overall(results: Sequence[DlmsResult]) -> dict[str, Any]:
    both = [r for r in results if r.comparable]

    def total(tallies: Sequence[Tally]) -> Tally:
        return Tally(sum(t.units for t in tallies), sum(t.elapsed for t in tallies))

    ours = total([r.ours for r in both]).rate
    ours_tag = total([r.ours_tag_or_same for r in both]).rate
    gurux = total([r.gurux for r in both]).rate
    ratio = ours / gurux if gurux else 0.0
    ratios = [r.ours.rate / r.gurux.rate for r in both if r.gurux.rate > 0]
    geomean = math.prod(ratios) ** (1 / len(ratios)) if ratios else 0.0
    return {
        "vectors": len(both),
        "ours_frames_per_s": ours,
        "ours_tag_check_frames_per_s": ours_tag,
        "gurux_frames_per_s": gurux,
        "ratio": ratio,
        "ratio_tag_check": ours_tag / gurux if gurux else 0.0,
        # Each vector counts once here, however fast gurux is on it.
        "ratio_geometric_mean": geomean,
        "target_ratio": DLMS_TARGET,
        "goal_ratio": DLMS_GOAL,
        "target_met": ratio >= DLMS_TARGET,
        "goal_met": ratio >= DLMS_GOAL,
    }


# --------------------------------------------------------------------------- 2. AMIS


def _long_frames(vector: dict[str, Any]) -> list[bytes]:
    return [frame for frame in frames_of(vector) if frame[:1] == b"\x68"]


def _amis_expected_energies(vector: dict[str, Any]) -> list[int | None]:
    expected = vector["expected"]
    if "1.8.0" in expected:
        return [expected["1.8.0"]["value"]]
    return [entry["1.8.0"]["value"] for entry in expected.values() if "1.8.0" in entry]


def _amis_push(vector: dict[str, Any]) -> Callable[[], list[Reading]]:
    """All long frames of the vector fed as one chunk; E5 answers collected as a reader would."""
    wire = b"".join(_long_frames(vector))
    count = len(_long_frames(vector))
    decoder = StreamDecoder(get_profile("amis"), key=key_of(vector, "key_hex"))

    def push() -> list[Reading]:
        decoder.feed(wire)
        readings = list(decoder)
        decoder.data_to_send()
        if len(readings) != count:
            raise WrongValueError(f"{vector['id']}: {len(readings)} readings from {count} frames")
        return readings

    return push


def generated_readings(seed: dict[str, Any], count: int) -> list[Reading]:
    """``count`` distinct readings: the seed vector's reading with new energies and clocks."""
    push = _amis_push(seed)
    base = push()[0]
    assert base.meter_timestamp is not None
    assert base.energy_import_wh is not None
    return [
        dataclasses.replace(
            base,
            energy_import_wh=base.energy_import_wh + 7 * i,
            meter_timestamp=base.meter_timestamp + timedelta(seconds=i),
            frame_counter=i & 0xFF,
        )
        for i in range(count)
    ]


def _amis_stream_pass(
    readings: Sequence[Reading], key: bytes
) -> tuple[Callable[[], int], Callable[[], None]]:
    """(one pass over the generated stream, a checked pass that compares every reading)."""
    stream = b"".join(
        encode_amis(reading, key, access_number=i) for i, reading in enumerate(readings)
    )
    chunks = [stream[i : i + AMIS_CHUNK] for i in range(0, len(stream), AMIS_CHUNK)]
    decoder = StreamDecoder(get_profile("amis"), key=key)
    expected = [(r.energy_import_wh, r.meter_timestamp) for r in readings]

    def one_pass() -> int:
        count = 0
        for chunk in chunks:
            decoder.feed(chunk)
            for _reading in decoder:
                count += 1
            decoder.data_to_send()
        if count != len(readings):
            raise WrongValueError(f"generated AMIS stream: {count} readings from {len(readings)}")
        return count

    def checked_pass() -> None:
        got: list[Reading] = []
        for chunk in chunks:
            decoder.feed(chunk)
            got.extend(decoder)
            decoder.data_to_send()
        _check(
            [(r.energy_import_wh, r.meter_timestamp) for r in got] == expected,
            "generated AMIS stream: decoded energies/clocks differ from the encoded ones",
        )

    return one_pass, checked_pass


def _amis_check(vector: dict[str, Any], push: Callable[[], list[Reading]]) -> Callable[[], None]:
    expected = _amis_expected_energies(vector)

    def check() -> None:
        energies = [r.energy_import_wh for r in push()]
        _check(
            energies == expected,
            f"{vector['id']} (ours): energy_import_wh {energies} != {expected}",
        )

    return check


def bench_amis(
    vectors: Sequence[dict[str, Any]],
    stream_readings: Sequence[Reading],
    key: bytes,
    seconds: float,
    errors: list[str],
) -> dict[str, Any] | None:
    """AMIS lines that decode right, timed together; wrong ones go to ``errors``."""
    names: list[str] = []
    sides: list[Side] = []
    checks: list[Callable[[], None]] = []
    for vector in vectors:
        push = _amis_push(vector)
        names.append(vector["id"])
        sides.append(LoopSide(push, len(_long_frames(vector))))
        checks.append(_amis_check(vector, push))
    one_pass, checked_pass = _amis_stream_pass(stream_readings, key)
    names.append(f"generated stream ({len(stream_readings):,} distinct frames)")
    sides.append(LoopSide(one_pass, len(stream_readings)))
    checks.append(checked_pass)

    good: list[int] = []
    for index, check in enumerate(checks):
        try:
            check()
        except WrongValueError as exc:
            errors.append(str(exc))
        else:
            good.append(index)
    if not good:
        return None
    tallies = measure([sides[i] for i in good], seconds)
    for i in good:  # still right after the timed runs
        checks[i]()
    rows = [{"name": names[i], "frames_per_s": t.rate} for i, t in zip(good, tallies, strict=True)]
    slowest = min(t.rate for t in tallies)
    return {"rows": rows, "target_frames_per_s": AMIS_TARGET, "target_met": slowest >= AMIS_TARGET}


# --------------------------------------------------------------------------- 3. store


def _count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    finally:
        conn.close()
    return int(count)


class StoreSide:
    """``ReadingStore.add``: one transaction and commit (synchronous=FULL) per reading."""

    def __init__(self, pairs: Sequence[tuple[Reading, datetime]], files: FreshFiles) -> None:
        self.pairs = pairs
        self.files = files
        self._per_add = 0.0

    def run(self, budget: float) -> tuple[int, float]:
        count = len(self.pairs)
        if self._per_add > 0:
            count = max(1, min(count, int(budget / self._per_add)))
        elif count > 10:
            count = 10
        path = self.files.next()
        store = ReadingStore(path)
        try:
            add = store.add
            new = 0
            start = perf_counter()
            for reading, received_at in self.pairs[:count]:
                new += add(reading, received_at)
            elapsed = perf_counter() - start
        finally:
            store.close()
        _check(new == count == _count_rows(path), f"store: {new} new rows of {count} adds")
        self.files.remove(path)
        self._per_add = elapsed / count
        return count, elapsed


class RawSide:
    """Raw ``sqlite3``: the same rows, prebuilt, ``executemany`` in one transaction."""

    def __init__(self, rows: Sequence[tuple[object, ...]], files: FreshFiles) -> None:
        self.rows = rows
        self.files = files

    def run(self, budget: float) -> tuple[int, float]:
        path = self.files.next()
        ReadingStore(path).close()  # same schema, WAL mode
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            start = perf_counter()
            conn.execute("BEGIN")
            conn.executemany(INSERT_SQL, self.rows)
            conn.execute("COMMIT")
            elapsed = perf_counter() - start
        finally:
            conn.close()
        _check(_count_rows(path) == len(self.rows), "raw sqlite3: rows missing")
        self.files.remove(path)
        return len(self.rows), elapsed


def _filesystem(path: Path) -> str:
    """The filesystem type of ``path`` (fsync cost depends on it), or "?"."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


def bench_store(
    readings: Sequence[Reading], seconds: float, directory: str | None
) -> dict[str, Any]:
    received = datetime(2026, 11, 1, tzinfo=UTC)
    pairs = [(r, received + timedelta(seconds=i)) for i, r in enumerate(readings)]
    rows = [row_of(r, t) for r, t in pairs]
    with tempfile.TemporaryDirectory(prefix="ecommunity-bench-", dir=directory) as tmp:
        where = Path(tmp)
        store, raw = measure(
            [
                StoreSide(pairs, FreshFiles(where, "store", ".sqlite")),
                RawSide(rows, FreshFiles(where, "raw", ".sqlite")),
            ],
            seconds,
        )
        filesystem = _filesystem(where)
    return {
        "store_add_per_s": store.rate,
        "raw_executemany_per_s": raw.rate,
        "ratio_raw_over_store": raw.rate / store.rate if store.rate else 0.0,
        "rows_per_raw_transaction": len(rows),
        "synchronous": "FULL",
        "directory": str(Path(directory or tempfile.gettempdir())),
        "filesystem": filesystem,
    }


# --------------------------------------------------------------------------- output


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}×"


def print_dlms_header(seconds: float) -> None:
    print(f"1. DLMS push decoding, frames/s ({seconds:g} s per side, sides interleaved)")
    print("   ours = StreamDecoder without the auth key (tag unchecked, as gurux: fair)")
    print("   ours+tag = with the auth key (GCM tag checked); gurux = gurux-dlms baseline")
    print(
        f"   {'vector':<38} {'fr':>2} {'ours':>9} {'ours+tag':>9} {'gurux':>8}"
        f" {'ours/gx':>8} {'+tag/gx':>8}"
    )


def print_dlms_row(result: DlmsResult) -> None:
    data = result.json()
    tag = "no tag" if result.ours_tag is None else _rate(result.ours_tag.rate)
    gurux = _rate(result.gurux.rate) + ("" if result.comparable else "*")
    print(
        f"   {result.vector_id:<38} {result.frames_per_push:>2} {_rate(result.ours.rate):>9}"
        f" {tag:>9} {gurux:>8} {_ratio(data['ratio']):>8} {_ratio(data['ratio_tag_check']):>8}"
    )


def print_dlms_footer(results: Sequence[DlmsResult], overall: dict[str, Any]) -> None:
    if any(not r.comparable for r in results):
        print("   * gurux only decrypts this one (DSMR text inside GCM): not compared")
    print(
        f"   {'overall (' + str(overall['vectors']) + ' vectors both decode)':<41}"
        f" {_rate(overall['ours_frames_per_s']):>9}"
        f" {_rate(overall['ours_tag_check_frames_per_s']):>9}"
        f" {_rate(overall['gurux_frames_per_s']):>8} {_ratio(overall['ratio']):>8}"
        f" {_ratio(overall['ratio_tag_check']):>8}"
    )
    print(f"   geometric mean of the per-vector ratios: {overall['ratio_geometric_mean']:.1f}×")
    print(f"   target ours ≥ {DLMS_TARGET:g}× gurux (goal {DLMS_GOAL:g}×): {_verdict(overall)}")


def _verdict(overall: dict[str, Any]) -> str:
    if overall["goal_met"]:
        return f"{overall['ratio']:.1f}× — goal met"
    if overall["target_met"]:
        return f"{overall['ratio']:.1f}× — target met, goal not"
    return f"{overall['ratio']:.1f}× — TARGET MISSED"


def print_amis(amis: dict[str, Any], seconds: float) -> None:
    print(f"2. AMIS decoding (ours, one thread), frames/s ({seconds:g} s each, interleaved)")
    for row in amis["rows"]:
        print(f"   {row['name']:<60} {_rate(row['frames_per_s']):>9}")
    met = "met" if amis["target_met"] else "MISSED"
    print(f"   target ≥ {AMIS_TARGET:,.0f} frames/s on every line: {met}")


def print_store(store: dict[str, Any], seconds: float) -> None:
    print(f"3. Gateway store, readings/s ({seconds:g} s per side, interleaved)")
    print(f"   in {store['directory']} ({store['filesystem']}), WAL, synchronous=FULL")
    print(
        f"   {'ReadingStore.add (one commit per reading)':<60} {_rate(store['store_add_per_s']):>9}"
    )
    label = f"raw sqlite3 executemany ({store['rows_per_raw_transaction']:,} rows per transaction)"
    print(f"   {label:<60} {_rate(store['raw_executemany_per_s']):>9}")
    print(f"   raw / store: {store['ratio_raw_over_store']:.1f}× (raw rows prebuilt: no JSON cost)")


def print_summary(report: dict[str, Any]) -> None:
    print("Summary")
    dlms = report["dlms"]["overall"]
    print(
        f"   DLMS  ours {_rate(dlms['ours_frames_per_s'])} frames/s vs gurux"
        f" {_rate(dlms['gurux_frames_per_s'])}: {_verdict(dlms)}"
    )
    print(
        f"         with tag check {dlms['ratio_tag_check']:.1f}×;"
        f" geometric mean of the per-vector ratios {dlms['ratio_geometric_mean']:.1f}×"
    )
    amis = report["amis"]
    if amis is not None:
        rates = {row["name"]: row["frames_per_s"] for row in amis["rows"]}
        stream = next((rate for name, rate in rates.items() if name.startswith("generated")), 0)
        print(
            f"   AMIS  {_rate(stream)} frames/s on the generated stream,"
            f" slowest line {_rate(min(rates.values()))}:"
            f" target ≥ {AMIS_TARGET:,.0f} {'met' if amis['target_met'] else 'MISSED'}"
        )
    store = report["store"]
    if store is not None:
        print(
            f"   Store {_rate(store['store_add_per_s'])} readings/s with a commit each vs"
            f" {_rate(store['raw_executemany_per_s'])} raw in one transaction"
            f" ({store['ratio_raw_over_store']:.0f}×)"
        )
    for error in report["errors"]:
        print(f"   WRONG VALUE: {error}")
    print(f"   result: {'ok' if report['ok'] else 'FAILED (wrong values)'}")


# --------------------------------------------------------------------------- main


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per side (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument(
        "--amis-frames", type=int, default=5000, help="frames in the generated AMIS stream"
    )
    parser.add_argument(
        "--store-dir", default=None, help="where the store's temp dir goes (default: system temp)"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.amis_frames < 1:
        parser.error("--seconds and --amis-frames must be positive")
    show = not args.json
    errors: list[str] = []
    vectors = load_vectors()

    if show:
        print(
            f"eCommunity decode benchmark — Python {platform.python_version()},"
            f" gurux-dlms {_package_version('gurux-dlms')}, one thread\n"
        )
        print_dlms_header(args.seconds)
    results: list[DlmsResult] = []
    for vector in (v for v in vectors if not is_amis(v)):
        try:
            result = bench_dlms(vector, args.seconds)
        except WrongValueError as exc:
            errors.append(str(exc))
            if show:
                print(f"   {vector['id']:<38} WRONG VALUE: {exc}")
            continue
        results.append(result)
        if show:
            print_dlms_row(result)
    overall = dlms_overall(results)
    if show:
        print_dlms_footer(results, overall)
        print()

    amis_vectors = [v for v in vectors if is_amis(v)]
    seed = next(v for v in amis_vectors if v["id"] == AMIS_SEED_VECTOR)
    seed_key = key_of(seed, "key_hex")
    assert seed_key is not None
    amis: dict[str, Any] | None = None
    store: dict[str, Any] | None = None
    try:
        readings = generated_readings(seed, args.amis_frames)
        amis = bench_amis(amis_vectors, readings, seed_key, args.seconds, errors)
        if show and amis is not None:
            print_amis(amis, args.seconds)
            print()
        store = bench_store(readings, args.seconds, args.store_dir)
        if show:
            print_store(store, args.seconds)
            print()
    except WrongValueError as exc:
        errors.append(str(exc))

    report: dict[str, Any] = {
        "seconds_per_side": args.seconds,
        "python": platform.python_version(),
        "gurux_dlms": _package_version("gurux-dlms"),
        "dlms": {"vectors": [r.json() for r in results], "overall": overall},
        "amis": amis,
        "store": store,
        "errors": errors,
        "ok": not errors,
    }
    if show:
        print_summary(report)
    else:
        json.dump(report, sys.stdout, indent=2)
        print()
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
