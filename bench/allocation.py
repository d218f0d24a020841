"""Allocation and savings for a community of 2,000 members over a year, side by side, in one run.

Our engine (``ecommunity.community``: ``allocate``, then ``consumer_savings`` and
``producer_revenue`` with their per-day amounts and totals) against a straightforward
per-interval pure-Python loop implementing the same rules: G.01T, running-sum rounding of G.02,
G.03, the producers' credits and surplus, and each member's costs, savings, CO₂ and revenue at
the tariffs valid on the interval's Vienna day. The loop runs on a sample of whole days and is
scaled to the year; the engine's results on those days must equal the loop's exactly.

The community is synthetic but shaped like a real one: every member's consumption follows an
H0-like household day (morning, noon and evening peaks, later on weekends, more in winter) scaled
to its annual consumption, with random quarter-hour noise; a quarter of the members also own a PV
system (clear-sky sun over Linz under a random sky per day); one in ten consumers takes part with
50 % (multiple participation); four supplier tariffs, two feed-in tariffs and the community's
own prices change during the year, and so do the statutory levies (2026).

Engine rounds and parts of the loop's sample take turns, so that both meet the same load from
other processes; the targets apply to the engine's median round, and the comparison in CPU time
takes the median round's CPU time (a process's first round also pays the kernel for memory it
touches for the first time). The engine runs in one thread unless ``--workers`` says otherwise,
like the loop.

Run: ``python bench/allocation.py [--model dynamic|static|both] [--json]``. Exit 1 if a result
is wrong, 3 if a target is missed (engine ≤ 2 s, ≥ 50× the loop), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from time import perf_counter, process_time
from typing import Any, Final

import numpy as np

from ecommunity.community import (
    STATUTORY_PARAMETERS,
    VIENNA,
    Allocation,
    AllocationModel,
    CommunityKind,
    CommunityPrices,
    ConsumerCategory,
    ConsumerSavings,
    ConsumerTariff,
    Dated,
    GenerationSource,
    ProducerRevenue,
    ProducerTariff,
    Schedule,
    StaticKeys,
    allocate,
    consumer_savings,
    epoch_seconds,
    producer_revenue,
    regular_starts,
)
from ecommunity.community.tariffs import price_uct_per_kwh

TIME_TARGET_S: Final = 2.0
RATIO_TARGET: Final = 50.0
KIND: Final = CommunityKind.EEG_LOCAL
SOURCES: Final = frozenset({GenerationSource.PV})
EMISSION_FACTOR_G_PER_KWH: Final = 200
#: The year starts at midnight in Vienna on 1 July 2025 and so spans the 2026 levy change.
FIRST_DAY: Final = date(2025, 7, 1)
NEW_YEAR: Final = date(2026, 1, 1)
SPRING: Final = date(2026, 4, 1)
MB: Final = 1024 * 1024


class WrongResultError(Exception):
    """The engine and the loop disagree: the benchmark exits 1."""


# --------------------------------------------------------------------------- the community


@dataclass(frozen=True)
class Community:
    starts: np.ndarray  # (T,) datetime64[s], UTC
    consumption_wh: np.ndarray  # (N_c, T)
    production_wh: np.ndarray  # (N_p, T)
    consumer_tf: np.ndarray  # (N_c, 1) [%]
    producer_tf: np.ndarray  # (N_p, 1) [%]
    keys: StaticKeys
    prices: Schedule[CommunityPrices]
    tariffs: list[Schedule[ConsumerTariff]]  # one per consumer (four shared objects)
    feed_in: list[Schedule[ProducerTariff]]  # one per producer (two shared objects)

    @property
    def intervals(self) -> int:
        return int(self.starts.size)


def _ct(value: str) -> Decimal:
    return Decimal(value)


def _tariff_schedules() -> list[Schedule[ConsumerTariff]]:
    def tariff(
        energy: str, grid: str, level: int = 7, category: ConsumerCategory | None = None
    ) -> ConsumerTariff:
        return ConsumerTariff(
            _ct(energy),
            _ct(grid),
            renewable_levy_ct_per_kwh=_ct("0.62"),
            grid_level=level,
            category=category or ConsumerCategory.HOUSEHOLD,
        )

    return [
        Schedule(
            "supplier A",
            [
                Dated(tariff("19.8", "7.86"), valid_to=NEW_YEAR),
                Dated(tariff("22.4", "8.02"), valid_from=NEW_YEAR),
            ],
        ),
        Schedule.constant("supplier B", tariff("24.9", "8.12")),
        Schedule(
            "supplier C (business, level 6)",
            [
                Dated(tariff("17.5", "6.1", 6, ConsumerCategory.BUSINESS), valid_to=NEW_YEAR),
                Dated(tariff("18.25", "6.3", 6, ConsumerCategory.BUSINESS), valid_from=NEW_YEAR),
            ],
        ),
        Schedule(
            "supplier D",
            [
                Dated(tariff("21.2", "7.86"), valid_to=SPRING),
                Dated(tariff("16.9", "7.86"), valid_from=SPRING),
            ],
        ),
    ]


def _household_wh(starts_s: np.ndarray) -> np.ndarray:
    """A household's mean energy per quarter hour for 1,000 kWh a year: an H0-like day. [Wh]"""
    offsets = np.array(
        [datetime.fromtimestamp(s, VIENNA).utcoffset() // timedelta(seconds=1) for s in starts_s],
        dtype=np.int64,
    )
    local_s = starts_s + offsets + 450  # the middle of the quarter hour, local time
    hour = (local_s % 86_400) / 3600.0
    day = local_s // 86_400
    weekend = ((day + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    morning = np.where(weekend, 9.0, 7.0)
    shape = (
        0.55
        + 0.5 * np.exp(-(((hour - morning) / 1.3) ** 2))
        + np.where(weekend, 0.55, 0.3) * np.exp(-(((hour - 12.5) / 1.5) ** 2))
        + 0.9 * np.exp(-(((hour - 19.0) / 2.0) ** 2))
    )
    season = 1.0 + 0.22 * np.cos(2 * np.pi * (day % 365.25 - 15.0) / 365.25)
    wh = shape * season
    return (wh / wh.mean() * (1_000_000 / 35_040)).astype(np.float32)


def _pv_wh_per_kwp(starts_s: np.ndarray) -> np.ndarray:
    """1 kWp facing the sky in Linz under a clear sky, per quarter hour (AC, 85 %). [Wh]"""
    latitude, longitude = np.radians(48.3), 14.3
    middle = starts_s + 450
    solar_hour = (middle % 86_400) / 3600.0 + longitude / 15.0
    day_of_year = (middle // 86_400) % 365.25
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365.25)
    elevation = np.sin(latitude) * np.sin(declination) + np.cos(latitude) * np.cos(
        declination
    ) * np.cos(np.radians(15.0 * (solar_hour - 12.0)))
    irradiance = 1000.0 * np.clip(elevation, 0.0, None) ** 1.15  # [W/m²]
    return (irradiance / 1000.0 * 0.85 * 250.0).astype(np.float32)


def make_community(members: int, prosumer_share: float, days: int, seed: int) -> Community:
    """A synthetic community of ``members`` consumers over ``days`` Vienna days."""
    rng = np.random.default_rng(seed)
    first = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=VIENNA)
    end = first + timedelta(days=days)
    count = int((end - first) / timedelta(minutes=15))
    starts = regular_starts(first.astimezone(UTC), count)
    starts_s = epoch_seconds(starts)

    h0_wh = _household_wh(starts_s)
    pv_wh = _pv_wh_per_kwp(starts_s)
    day_of = (starts_s - starts_s[0]) // 86_400
    sky = rng.uniform(0.15, 1.0, size=days + 1).astype(np.float32)[day_of]

    annual_kwh = rng.lognormal(np.log(3200.0), 0.45, size=members).clip(900, 15_000)
    consumption = np.empty((members, count), dtype=np.int64)
    for start in range(0, members, 250):
        rows = slice(start, min(start + 250, members))
        noise = rng.uniform(0.25, 1.75, size=(rows.stop - rows.start, count)).astype(np.float32)
        scale = (annual_kwh[rows] / 1000.0).astype(np.float32)[:, np.newaxis]
        consumption[rows] = (h0_wh * scale * noise).astype(np.int64)

    producers = round(members * prosumer_share)
    kwp = rng.uniform(3.0, 15.0, size=producers).astype(np.float32)[:, np.newaxis]
    weather = rng.uniform(0.85, 1.0, size=(producers, count)).astype(np.float32)
    production = (pv_wh * sky * kwp * weather).astype(np.int64)

    consumer_tf = np.where(rng.random(members) < 0.1, 50, 100).astype(np.int64)[:, np.newaxis]
    producer_tf = np.full((producers, 1), 100, dtype=np.int64)
    # Static keys in proportion to annual consumption, six decimals, adding up to at most 1.
    millionths = np.floor(annual_kwh / annual_kwh.sum() * 1_000_000).astype(np.int64)
    keys = StaticKeys.from_values(Fraction(int(m), 1_000_000) for m in millionths)

    prices = Schedule(
        "community prices",
        [
            Dated(CommunityPrices(_ct("11"), _ct("9")), valid_to=NEW_YEAR),
            Dated(CommunityPrices(_ct("12.5"), _ct("9.5")), valid_from=NEW_YEAR),
        ],
    )
    schedules = _tariff_schedules()
    feed_in = [
        Schedule(
            "OeMAG market price",
            [
                Dated(ProducerTariff(_ct("5.81")), valid_to=NEW_YEAR),
                Dated(ProducerTariff(_ct("4.93")), valid_from=NEW_YEAR),
            ],
        ),
        Schedule.constant("supplier buy-back", ProducerTariff(_ct("7"))),
    ]
    return Community(
        starts=starts,
        consumption_wh=consumption,
        production_wh=production,
        consumer_tf=consumer_tf,
        producer_tf=producer_tf,
        keys=keys,
        prices=prices,
        tariffs=[schedules[i % 4] for i in range(members)],
        feed_in=[feed_in[j % 2] for j in range(producers)],
    )


# --------------------------------------------------------------------------- the engine


@dataclass
class EngineResult:
    allocation: Allocation
    consumers: ConsumerSavings
    producers: ProducerRevenue
    totals: dict[str, int]
    allocate_s: float
    savings_s: float
    cpu_s: float
    #: The part of ``cpu_s`` spent in the kernel: mostly the page faults of fresh results.
    kernel_s: float

    @property
    def seconds(self) -> float:
        return self.allocate_s + self.savings_s


def run_engine(community: Community, model: AllocationModel, workers: int) -> EngineResult:
    cpu, kernel = process_time(), _kernel_s()
    start = perf_counter()
    allocation = allocate(
        community.consumption_wh,
        community.production_wh,
        model=model,
        consumer_tf_percent=community.consumer_tf,
        producer_tf_percent=community.producer_tf,
        keys=community.keys if model is AllocationModel.STATIC else None,
        workers=workers,
    )
    allocated = perf_counter()
    consumers = consumer_savings(
        allocation,
        community.starts,
        kind=KIND,
        sources=SOURCES,
        prices=community.prices,
        tariffs=community.tariffs,
        emission_factor_g_per_kwh=EMISSION_FACTOR_G_PER_KWH,
    )
    producers = producer_revenue(
        allocation, community.starts, prices=community.prices, feed_in=community.feed_in
    )
    # Per member and day, and the community's totals: what members and operators are shown.
    consumers.daily()
    producers.daily()
    totals = {**consumers.totals(), **producers.totals()}
    done = perf_counter()
    return EngineResult(
        allocation=allocation,
        consumers=consumers,
        producers=producers,
        totals=totals,
        allocate_s=allocated - start,
        savings_s=done - allocated,
        cpu_s=process_time() - cpu,
        kernel_s=_kernel_s() - kernel,
    )


def _kernel_s() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


# --------------------------------------------------------------------------- the loop


@dataclass
class LoopResult:
    """Per sampled interval: G.02, G.03, P.01T; per sampled day and member: amounts."""

    seconds: float
    cpu_s: float
    g02: list[list[int]]
    g03: list[list[int]]
    p01t: list[list[int]]
    #: day -> [community cost, grid cost, CO₂] per consumer, [community, feed-in] per producer.
    consumer_days: dict[date, list[list[int]]]
    producer_days: dict[date, list[list[int]]]


def _day_rates(
    community: Community, day: date
) -> tuple[dict[int, tuple[int, int]], int, dict[int, int]]:
    """The day's rates, from the schedules and the statutory rules, as a plain loop would.

    Returns (community and grid rate by consumer schedule, producer price, feed-in by producer
    schedule), all µct/kWh.
    """
    rules = STATUTORY_PARAMETERS
    prices = community.prices.at(day)
    consumer_price = price_uct_per_kwh(prices.consumer_ct_per_kwh)
    exempt = rules.levy_exempt_sources(KIND).at(day) >= SOURCES
    charged = rules.renewable_levy_charged.at(day)
    renewable_exempt = rules.renewable_levy_exemption(KIND).at(day)
    consumer_rates: dict[int, tuple[int, int]] = {}
    for schedule in {id(s): s for s in community.tariffs}.values():
        tariff = schedule.at(day)
        energy = price_uct_per_kwh(tariff.energy_ct_per_kwh)
        grid = price_uct_per_kwh(tariff.grid_usage_ct_per_kwh)
        reduction = rules.grid_fee_reduction(KIND, tariff.grid_level).at(day)
        levy = price_uct_per_kwh(rules.electricity_levy(tariff.category).at(day))
        renewable = price_uct_per_kwh(tariff.renewable_levy_ct_per_kwh) if charged else 0
        in_community = (
            consumer_price
            + grid * (100 - reduction) // 100
            + (0 if exempt else levy)
            + (0 if renewable_exempt else renewable)
        )
        consumer_rates[id(schedule)] = (in_community, energy + grid + levy + renewable)
    feed_in = {
        id(s): price_uct_per_kwh(s.at(day).feed_in_ct_per_kwh)
        for s in {id(s): s for s in community.feed_in}.values()
    }
    return consumer_rates, price_uct_per_kwh(prices.producer_ct_per_kwh), feed_in


def run_loop(community: Community, model: AllocationModel, sample: Sequence[int]) -> LoopResult:
    """The rules interval by interval and member by member, in plain Python integers."""
    # The sampled intervals' energies as Python lists, one per interval (prepared untimed).
    consumption = community.consumption_wh[:, sample].T.tolist()
    production = community.production_wh[:, sample].T.tolist()
    starts_s = epoch_seconds(community.starts)[list(sample)].tolist()
    consumer_tf = community.consumer_tf[:, 0].tolist()
    producer_tf = community.producer_tf[:, 0].tolist()
    numerators = community.keys.numerators.tolist()
    denominator = community.keys.denominator
    consumer_schedule = [id(s) for s in community.tariffs]
    producer_schedule = [id(s) for s in community.feed_in]
    static = model is AllocationModel.STATIC

    result = LoopResult(0.0, 0.0, [], [], [], {}, {})
    rates: dict[date, tuple[dict[int, tuple[int, int]], int, dict[int, int]]] = {}
    cpu = process_time()
    start = perf_counter()
    for g01, g01_p, start_s in zip(consumption, production, starts_s, strict=True):
        day = datetime.fromtimestamp(start_s, VIENNA).date()
        if day not in rates:
            rates[day] = _day_rates(community, day)
            result.consumer_days[day] = [[0, 0, 0] for _ in consumer_tf]
            result.producer_days[day] = [[0, 0] for _ in producer_tf]
        consumer_rates, producer_price, feed_in = rates[day]
        c = [g * tf // 100 for g, tf in zip(g01, consumer_tf, strict=True)]
        p = [g * tf // 100 for g, tf in zip(g01_p, producer_tf, strict=True)]
        total_c, total_p = sum(c), sum(p)
        if static:
            weights = [k if tf > 0 else 0 for k, tf in zip(numerators, consumer_tf, strict=True)]
            shared, whole = total_p, denominator
        else:
            weights, shared, whole = c, (total_p if total_c else 0), (total_c or 1)
        g02, g03 = [], []
        running = before = taken = 0
        for weight, ci in zip(weights, c, strict=True):
            running += weight
            now = running * shared // whole
            share = now - before
            before = now
            covered = min(share, ci)
            g02.append(share)
            g03.append(covered)
            taken += covered
        p01t = []
        running = before = 0
        for pj in p:
            running += pj
            now = running * taken // (total_p or 1)
            p01t.append(pj - (now - before))
            before = now
        days = result.consumer_days[day]
        for i, covered in enumerate(g03):
            in_community, from_grid = consumer_rates[consumer_schedule[i]]
            amounts = days[i]
            amounts[0] += covered * in_community
            amounts[1] += covered * from_grid
            amounts[2] += covered * EMISSION_FACTOR_G_PER_KWH
        days_p = result.producer_days[day]
        for j, pj in enumerate(p):
            credited = pj - p01t[j]
            days_p[j][0] += credited * producer_price
            days_p[j][1] += credited * feed_in[producer_schedule[j]]
        result.g02.append(g02)
        result.g03.append(g03)
        result.p01t.append(p01t)
    result.seconds = perf_counter() - start
    result.cpu_s = process_time() - cpu
    return result


def sample_days(community: Community, days: int, parts: int) -> list[list[int]]:
    """The intervals of ``days`` whole Vienna days spread evenly over the period, in ``parts``
    parts that each take days from all seasons (part k: the k-th, (k + parts)-th, … day)."""
    local_days = [
        datetime.fromtimestamp(s, VIENNA).date() for s in epoch_seconds(community.starts).tolist()
    ]
    distinct = sorted(set(local_days))
    chosen = [distinct[k * len(distinct) // days] for k in range(days)]
    part_of = {day: k % parts for k, day in enumerate(chosen)}
    sample: list[list[int]] = [[] for _ in range(parts)]
    for t, day in enumerate(local_days):
        if day in part_of:
            sample[part_of[day]].append(t)
    return [part for part in sample if part]


def merge(results: Sequence[LoopResult]) -> LoopResult:
    merged = LoopResult(0.0, 0.0, [], [], [], {}, {})
    for result in results:
        merged.seconds += result.seconds
        merged.cpu_s += result.cpu_s
        merged.g02 += result.g02
        merged.g03 += result.g03
        merged.p01t += result.p01t
        merged.consumer_days.update(result.consumer_days)
        merged.producer_days.update(result.producer_days)
    return merged


# --------------------------------------------------------------------------- checks


def check(engine: EngineResult, loop: LoopResult, sample: Sequence[int]) -> list[str]:
    """Where the engine and the loop differ (an empty list when they agree exactly)."""
    errors: list[str] = []
    allocation = engine.allocation
    for k, t in enumerate(sample):
        for name, got, want in (
            ("G.02", allocation.allocated_wh[:, t].tolist(), loop.g02[k]),
            ("G.03", allocation.covered_wh[:, t].tolist(), loop.g03[k]),
            ("P.01T", allocation.surplus_wh[:, t].tolist(), loop.p01t[k]),
        ):
            if got != want:
                errors.append(f"{name} differs from the loop in interval {t}")
    consumer_days = engine.consumers.daily()
    producer_days = engine.producers.daily()
    day_index = {np.datetime64(day, "D"): d for d, day in enumerate(consumer_days.days)}
    for day, amounts in loop.consumer_days.items():
        d = day_index[np.datetime64(day, "D")]
        got = np.stack(
            [
                consumer_days.community_cost_nct[:, d],
                consumer_days.grid_cost_nct[:, d],
                consumer_days.co2_avoided_mg[:, d],
            ],
            axis=1,
        ).tolist()
        if got != amounts:
            errors.append(f"consumers' costs on {day} differ from the loop")
        got_p = np.stack(
            [producer_days.community_revenue_nct[:, d], producer_days.feed_in_revenue_nct[:, d]],
            axis=1,
        ).tolist()
        if got_p != loop.producer_days[day]:
            errors.append(f"producers' revenue on {day} differs from the loop")
    covered = allocation.covered_wh.sum(axis=0)
    credited = allocation.credited_wh.sum(axis=0)
    if not np.array_equal(covered, credited):
        errors.append("Σ G.03 differs from Σ credited in some interval")
    if not np.all(allocation.covered_wh <= allocation.consumption_t_wh):
        errors.append("G.03 above G.01T")
    return errors


# --------------------------------------------------------------------------- measuring


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy, all) CPU jiffies of the machine from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def bench_model(
    community: Community,
    model: AllocationModel,
    *,
    rounds: int,
    days: int,
    workers: int,
) -> dict[str, Any]:
    """Engine rounds and parts of the loop's sample in turn, so both meet the same load."""
    parts = sample_days(community, days, rounds)
    hz = os.sysconf("SC_CLK_TCK")
    before = _busy_jiffies()
    cpu_before, wall_before = process_time(), perf_counter()
    timed: list[dict[str, float]] = []
    totals: list[dict[str, int]] = []
    loops: list[LoopResult] = []
    for round_number in range(rounds):
        result = run_engine(community, model, workers)
        timed.append(
            {
                "seconds": result.seconds,
                "allocate_s": result.allocate_s,
                "savings_s": result.savings_s,
                "cpu_s": result.cpu_s,
                "kernel_s": result.kernel_s,
            }
        )
        totals.append(result.totals)
        del result  # the next round allocates its own results, as a caller's would
        if round_number < len(parts):
            loops.append(run_loop(community, model, parts[round_number]))
    wall_all = perf_counter() - wall_before
    engine_cpu = statistics.median(r["cpu_s"] for r in timed)
    loop = merge(loops)
    after = _busy_jiffies()
    others = None
    if before is not None and after is not None:
        busy_s = (after[0] - before[0]) / hz
        own_s = process_time() - cpu_before
        others = max(0.0, busy_s - own_s) / (wall_all * (os.cpu_count() or 1))

    # One more round under tracemalloc (NumPy reports its buffers to it): the engine's peak.
    tracemalloc.start()
    engine = run_engine(community, model, workers)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    sample = [t for part in parts for t in part]
    errors = check(engine, loop, sample)
    if any(t != totals[0] for t in [*totals, engine.totals]):
        errors.append("the rounds gave different totals")
    median = statistics.median(r["seconds"] for r in timed)
    scale = community.intervals / len(sample)
    loop_all_s = loop.seconds * scale
    ratio = loop_all_s / median
    allocation = engine.allocation
    return {
        "model": model.value,
        "consumers": int(allocation.consumption_wh.shape[0]),
        "producers": int(allocation.production_wh.shape[0]),
        "intervals": community.intervals,
        "engine": {
            "rounds": timed,
            "median_s": median,
            "best_s": min(r["seconds"] for r in timed),
            "cpu_median_s": engine_cpu,
            "cpu_per_interval_us": engine_cpu / community.intervals * 1e6,
            "workers": workers,
            "peak_traced_mb": peak / MB,
            "other_processes_cpu_share": others,
        },
        "loop": {
            "sample_days": len(loop.consumer_days),
            "sample_intervals": len(sample),
            "seconds": loop.seconds,
            "cpu_s": loop.cpu_s,
            "scale": scale,
            "all_intervals_s": loop_all_s,
            "cpu_per_interval_us": loop.cpu_s / len(sample) * 1e6,
        },
        "ratio": ratio,
        # The same comparison in CPU time, which others' load changes less.
        "cpu_ratio": loop.cpu_s * scale / engine_cpu,
        "totals": engine.totals,
        "allocation_totals": allocation.totals().to_json(),
        "targets": {"time": median <= TIME_TARGET_S, "ratio": ratio >= RATIO_TARGET},
        "errors": errors,
    }


# --------------------------------------------------------------------------- output


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_model(number: int, result: dict[str, Any]) -> None:
    engine, loop, totals = result["engine"], result["loop"], result["allocation_totals"]
    print(
        f"{number}. {result['model'].capitalize()} model: {result['consumers']:,} consumers,"
        f" {result['producers']:,} producers, {result['intervals']:,} intervals"
    )
    rounds = "; ".join(
        f"{r['seconds']:.2f} s (allocate {r['allocate_s']:.2f}, savings {r['savings_s']:.2f},"
        f" CPU {r['cpu_s']:.2f}, of it kernel {r['kernel_s']:.2f})"
        for r in engine["rounds"]
    )
    print(f"   engine  allocate + savings: median {engine['median_s']:.2f} s; rounds: {rounds}")
    if engine["other_processes_cpu_share"] is not None:
        print(
            f"           other processes used {engine['other_processes_cpu_share']:.0%} of the"
            f" machine's {os.cpu_count()} cores meanwhile"
        )
    print(
        f"   loop    {loop['sample_days']} sampled days ({loop['sample_intervals']:,} intervals,"
        f" between the engine's rounds): {loop['seconds']:.2f} s, scaled ×{loop['scale']:.1f}"
        f" to {loop['all_intervals_s']:.0f} s for all {result['intervals']:,} intervals"
    )
    print(
        f"   ratio   {result['ratio']:.0f}× the loop (engine median);"
        f" in CPU time {result['cpu_ratio']:.0f}× (loop {loop['cpu_s']:.2f} s on the sample,"
        f" engine {engine['cpu_median_s']:.2f} s in the median round; per interval"
        f" {loop['cpu_per_interval_us']:,.0f} µs vs {engine['cpu_per_interval_us']:.1f} µs)"
    )
    print(
        f"   memory  engine peak {engine['peak_traced_mb']:,.0f} MB"
        " (tracemalloc, the input not counted)"
    )
    covered = totals["covered_wh"] / max(totals["consumption_wh"], 1)
    money = result["totals"]
    print(
        f"   result  G.03 {totals['covered_wh'] / 1e6:,.1f} MWh of"
        f" {totals['consumption_wh'] / 1e6:,.1f} MWh consumed ({covered:.1%});"
        f" savings {money['savings_nct'] / 1e11:,.0f} €,"
        f" producers' gain {money['gain_nct'] / 1e11:,.0f} €,"
        f" CO₂ {money['co2_avoided_mg'] / 1e9:,.0f} t"
    )
    checked = "WRONG: " + "; ".join(result["errors"][:3]) if result["errors"] else "equal"
    print(f"   check   sampled intervals and days vs the loop, conservation: {checked}")


def print_summary(report: dict[str, Any]) -> None:
    print("Summary")
    for result in report["models"]:
        targets = result["targets"]
        print(
            f"   {result['model']:<8} {result['engine']['median_s']:.2f} s"
            f" (target ≤ {TIME_TARGET_S:g} s: {_met(targets['time'])}),"
            f" {result['ratio']:.0f}× the loop (target ≥ {RATIO_TARGET:g}×:"
            f" {_met(targets['ratio'])}), peak {result['engine']['peak_traced_mb']:,.0f} MB"
        )
    print(f"   max RSS of the process {report['max_rss_mb']:,.0f} MB (input included)")
    verdict = "ok"
    if any(r["errors"] for r in report["models"]):
        verdict = "FAILED (wrong results)"
    elif not all(all(r["targets"].values()) for r in report["models"]):
        verdict = "targets missed"
    print(f"   result: {verdict}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=("dynamic", "static", "both"), default="both", help="default both"
    )
    parser.add_argument("--members", type=int, default=2000, help="consumers (default 2,000)")
    parser.add_argument(
        "--prosumers", type=float, default=0.25, help="share owning PV (default 0.25)"
    )
    parser.add_argument("--days", type=int, default=365, help="Vienna days (default 365)")
    parser.add_argument("--rounds", type=int, default=5, help="engine runs per model (default 5)")
    parser.add_argument(
        "--sample-days", type=int, default=6, help="days the loop runs on (default 6)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="engine threads (default 1, as the loop)"
    )
    parser.add_argument("--seed", type=int, default=1, help="of the synthetic community")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    args = parser.parse_args(argv)
    if (
        args.members < 1
        or not 0 < args.prosumers <= 1
        or not 1 <= args.sample_days <= args.days
        or args.rounds < 1
        or args.workers < 1
    ):
        parser.error(
            "--members, --rounds, --workers ≥ 1; --prosumers in (0, 1]; 1 ≤ --sample-days ≤ --days"
        )
    show = not args.json
    if show:
        print(
            f"eCommunity allocation benchmark — {os.cpu_count()} cores ({platform.machine()}),"
            f" Python {platform.python_version()}, NumPy {np.__version__}\n"
        )
    start = perf_counter()
    community = make_community(args.members, args.prosumers, args.days, args.seed)
    if show:
        print(
            f"A synthetic EEG of {args.members:,} members ({community.production_wh.shape[0]:,}"
            f" with PV) over {args.days} days from {FIRST_DAY} (Vienna): built in"
            f" {perf_counter() - start:.1f} s, input"
            f" {(community.consumption_wh.nbytes + community.production_wh.nbytes) / MB:,.0f} MB\n"
        )
    models = (
        [AllocationModel.DYNAMIC, AllocationModel.STATIC]
        if args.model == "both"
        else [AllocationModel(args.model)]
    )
    results = []
    for number, model in enumerate(models, start=1):
        result = bench_model(
            community, model, rounds=args.rounds, days=args.sample_days, workers=args.workers
        )
        results.append(result)
        if show:
            print_model(number, result)
            print()
    report: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "members": args.members,
        "days": args.days,
        "models": results,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "targets": {"time_s": TIME_TARGET_S, "ratio": RATIO_TARGET},
    }
    if show:
        print_summary(report)
    else:
        json.dump(report, sys.stdout, indent=2)
        print()
    if any(r["errors"] for r in results):
        return 1
    return 0 if all(all(r["targets"].values()) for r in results) else 3


if __name__ == "__main__":
    sys.exit(main())
