"""Savings and revenue against hand-computed cases, each rule change on its date."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from ecommunity.community import (
    STATUTORY_PARAMETERS,
    AllocationInputError,
    AllocationModel,
    CommunityKind,
    CommunityPrices,
    ConsumerCategory,
    ConsumerTariff,
    Dated,
    GenerationSource,
    MissingParameterError,
    ProducerTariff,
    Schedule,
    TariffError,
    allocate,
    consumer_savings,
    nct_to_euro,
    producer_revenue,
    regular_starts,
)

CT = 10**9  # nct per ct
PV = frozenset({GenerationSource.PV})
PRICES = Schedule.constant("prices", CommunityPrices(Decimal(12), Decimal(10)))
TARIFF = Schedule.constant(
    "tariff", ConsumerTariff(Decimal(20), Decimal(8), renewable_levy_ct_per_kwh=Decimal("1.3"))
)
FEED_IN = Schedule.constant("feed-in", ProducerTariff(Decimal(6)))
# One consumer, one producer, two quarter hours: 1 kWh and 0.2 kWh covered.
ALLOCATION = allocate([[1000, 500]], [[1000, 200]], model=AllocationModel.DYNAMIC)


def starts(day: date) -> np.ndarray:
    return regular_starts(datetime(day.year, day.month, day.day, 10, tzinfo=UTC), 2)


def savings_per_kwh_ct(
    kind: CommunityKind,
    day: date,
    *,
    sources: frozenset[GenerationSource] = PV,
    tariff: ConsumerTariff | None = None,
) -> Decimal:
    schedule = TARIFF if tariff is None else Schedule.constant("t", tariff)
    result = consumer_savings(
        ALLOCATION,
        starts(day),
        kind=kind,
        sources=sources,
        prices=PRICES,
        tariffs=schedule,
        emission_factor_g_per_kwh=200,
    )
    assert result.savings_nct[0, 0] * 2 == result.savings_nct[0, 1] * 10  # linear in energy
    return Decimal(int(result.savings_nct[0, 0])) / CT


def test_local_eeg_2025_worked_example() -> None:
    result = consumer_savings(
        ALLOCATION,
        starts(date(2025, 3, 3)),
        kind=CommunityKind.EEG_LOCAL,
        sources=PV,
        prices=PRICES,
        tariffs=TARIFF,
        emission_factor_g_per_kwh=200,
    )
    # In the community: 12 ct + 8 ct grid fee less 57 % (3.44 ct), no levies = 15.44 ct/kWh.
    # From the supplier: 20 + 8 + 1.5 (Elektrizitätsabgabe) + 1.3 (Förderbeitrag) = 30.8 ct/kWh.
    assert result.community_cost_nct.tolist() == [[1544 * CT // 100, 3088 * CT // 1000]]
    assert result.grid_cost_nct.tolist() == [[308 * CT // 10, 616 * CT // 100]]
    assert result.savings_nct.tolist() == [[1536 * CT // 100, 3072 * CT // 1000]]
    assert result.co2_avoided_mg.tolist() == [[200_000, 40_000]]
    totals = result.totals()
    assert nct_to_euro(totals["savings_nct"]) == Decimal("0.18432")
    assert totals["co2_avoided_mg"] == 240_000


@pytest.mark.parametrize(
    ("kind", "day", "expected_ct"),
    [
        # Regional, member at level 7: 28 % off 8 ct = 5.76 ct; 30.8 − (12 + 5.76) = 13.04.
        (CommunityKind.EEG_REGIONAL, date(2025, 3, 3), "13.04"),
        # BEG: neither reduction nor exemptions, so only the energy price differs: 20 − 12.
        (CommunityKind.BEG, date(2025, 3, 3), "8"),
        # 2023: Elektrizitätsabgabe 0.1 ct, Förderbeitrag suspended: 28.1 − 15.44.
        (CommunityKind.EEG_LOCAL, date(2023, 6, 1), "12.66"),
        # Before the SNE-V amendment (2021-11-01): no grid fee reduction yet: 30.8 − 20.
        (CommunityKind.EEG_LOCAL, date(2021, 10, 15), "10.8"),
    ],
)
def test_savings_follow_the_dated_rules(kind: CommunityKind, day: date, expected_ct: str) -> None:
    assert savings_per_kwh_ct(kind, day) == Decimal(expected_ct)


def test_regional_member_at_level_5() -> None:
    tariff = ConsumerTariff(Decimal(20), Decimal(8), Decimal("1.3"), grid_level=5)
    # 64 % off 8 ct = 2.88 ct: 30.8 − (12 + 2.88).
    assert savings_per_kwh_ct(CommunityKind.EEG_REGIONAL, date(2025, 3, 3), tariff=tariff) == (
        Decimal("15.92")
    )


def test_levy_exemption_covered_pv_only_before_july_2022() -> None:
    mixed = frozenset({GenerationSource.PV, GenerationSource.WIND})
    june, july = date(2022, 6, 15), date(2022, 7, 15)
    # June 2022 (levy 0.1 ct, Förderbeitrag suspended): wind is not yet exempt, so the levy is
    # due on community energy too: 28.1 − 15.54; PV alone is exempt: 28.1 − 15.44.
    assert savings_per_kwh_ct(CommunityKind.EEG_LOCAL, june, sources=mixed) == Decimal("12.56")
    assert savings_per_kwh_ct(CommunityKind.EEG_LOCAL, june, sources=PV) == Decimal("12.66")
    assert savings_per_kwh_ct(CommunityKind.EEG_LOCAL, july, sources=mixed) == Decimal("12.66")


def test_business_rate_of_2026() -> None:
    business = ConsumerTariff(
        Decimal(20), Decimal(8), Decimal("1.3"), category=ConsumerCategory.BUSINESS
    )
    # 20 + 8 + 0.82 + 1.3 = 30.12 from the supplier, 15.44 in the community.
    day = date(2026, 2, 2)
    assert savings_per_kwh_ct(CommunityKind.EEG_LOCAL, day, tariff=business) == Decimal("14.68")
    assert savings_per_kwh_ct(CommunityKind.EEG_LOCAL, day) == Decimal("13.96")  # household 0.1


def test_tariffs_change_at_vienna_midnight_and_per_member() -> None:
    july = date(2025, 7, 1)
    summer = Schedule(
        "supplier",
        [
            Dated(ConsumerTariff(Decimal(19), Decimal(9)), valid_to=date(2025, 1, 1)),
            Dated(ConsumerTariff(Decimal(20), Decimal(8)), date(2025, 1, 1), july),
            Dated(ConsumerTariff(Decimal(25), Decimal(8)), valid_from=july),
        ],
    )
    allocation = allocate(
        [[1000, 1000], [1000, 1000]], [[4000, 4000]], model=AllocationModel.DYNAMIC
    )
    # 23:45 on 30 June and midnight on 1 July, Vienna time (UTC+2).
    interval_starts = regular_starts(datetime(2025, 6, 30, 21, 45, tzinfo=UTC), 2)
    result = consumer_savings(
        allocation,
        interval_starts,
        kind=CommunityKind.EEG_LOCAL,
        sources=PV,
        prices=PRICES,
        tariffs=[summer, TARIFF],
        emission_factor_g_per_kwh=0,
    )
    # Member 0: 20 + 8 + 1.5 = 29.5, then 34.5; member 1 as in the worked example: 30.8.
    assert (result.grid_cost_nct // (CT // 10)).tolist() == [[295, 345], [308, 308]]
    assert result.co2_avoided_mg.tolist() == [[0, 0], [0, 0]]


def test_producer_revenue_against_feed_in() -> None:
    result = producer_revenue(ALLOCATION, starts(date(2025, 3, 3)), prices=PRICES, feed_in=FEED_IN)
    # 1.2 kWh taken by consumers: 10 ct/kWh from the community instead of 6 from the buyer.
    assert result.community_revenue_nct.tolist() == [[10 * CT, 2 * CT]]
    assert result.feed_in_revenue_nct.tolist() == [[6 * CT, 12 * CT // 10]]
    assert result.totals() == {
        "community_revenue_nct": 12 * CT,
        "feed_in_revenue_nct": 72 * CT // 10,
        "gain_nct": 48 * CT // 10,
    }


def test_surplus_earns_nothing_from_the_community() -> None:
    allocation = allocate([[100]], [[1000]], model=AllocationModel.DYNAMIC)
    result = producer_revenue(
        allocation, starts(date(2025, 3, 3))[:1], prices=PRICES, feed_in=[FEED_IN]
    )
    assert result.community_revenue_nct.tolist() == [[CT]]  # 0.1 kWh × 10 ct


def test_unusable_input_is_refused() -> None:
    kwargs: dict[str, object] = {
        "kind": CommunityKind.EEG_LOCAL,
        "sources": PV,
        "prices": PRICES,
        "tariffs": TARIFF,
        "emission_factor_g_per_kwh": 200,
    }
    day = starts(date(2025, 3, 3))
    with pytest.raises(AllocationInputError, match="1 interval starts for an allocation of 2"):
        consumer_savings(ALLOCATION, day[:1], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(AllocationInputError, match="2 consumer tariffs for 1 members"):
        consumer_savings(ALLOCATION, day, **{**kwargs, "tariffs": [TARIFF, TARIFF]})  # type: ignore[arg-type]
    for factor in (1.5, -1, True, 10_001):
        with pytest.raises(TariffError, match="emission factor"):
            consumer_savings(ALLOCATION, day, **{**kwargs, "emission_factor_g_per_kwh": factor})  # type: ignore[arg-type]
    with pytest.raises(TariffError, match="generation source"):
        consumer_savings(ALLOCATION, day, **{**kwargs, "sources": frozenset()})  # type: ignore[arg-type]
    with pytest.raises(MissingParameterError, match="gea"):
        consumer_savings(ALLOCATION, day, **{**kwargs, "kind": CommunityKind.GEA})  # type: ignore[arg-type]
    late = Schedule("prices", [Dated(CommunityPrices(Decimal(1), Decimal(1)), date(2026, 1, 1))])
    with pytest.raises(MissingParameterError, match="prices"):
        consumer_savings(ALLOCATION, day, **{**kwargs, "prices": late})  # type: ignore[arg-type]
    with pytest.raises(MissingParameterError, match="prices"):
        producer_revenue(ALLOCATION, day, prices=late, feed_in=FEED_IN)


def test_reductions_must_be_whole_percent() -> None:
    odd = dataclasses.replace(
        STATUTORY_PARAMETERS,
        grid_fee_reduction_percent={
            (CommunityKind.EEG_LOCAL, 7): Schedule.constant("odd", Decimal("57.5"))
        },
    )
    with pytest.raises(TariffError, match="whole percent"):
        consumer_savings(
            ALLOCATION,
            starts(date(2025, 3, 3)),
            kind=CommunityKind.EEG_LOCAL,
            sources=PV,
            prices=PRICES,
            tariffs=TARIFF,
            emission_factor_g_per_kwh=0,
            parameters=odd,
        )


def test_euros() -> None:
    assert nct_to_euro(1) == Decimal("1E-11")
    assert nct_to_euro(15_440_000_000) == Decimal("0.1544")
    assert nct_to_euro(-3 * 10**11) == Decimal(-3)


def test_savings_are_exact_over_a_year() -> None:
    # A year of quarter hours with awkward energies: the sum of the per-interval amounts is the
    # same as the covered energy times the rate, computed with Decimal.
    count = 35_040
    rng = np.random.default_rng(3)
    consumption = rng.integers(0, 997, size=(3, count))
    allocation = allocate(
        consumption, rng.integers(0, 1999, size=(1, count)), model=AllocationModel.DYNAMIC
    )
    interval_starts = regular_starts(datetime(2025, 1, 1, tzinfo=UTC) - timedelta(hours=1), count)
    result = consumer_savings(
        allocation,
        interval_starts,
        kind=CommunityKind.EEG_LOCAL,
        sources=PV,
        prices=Schedule.constant("p", CommunityPrices(Decimal("11.2347"), Decimal("9.1"))),
        tariffs=Schedule.constant("t", ConsumerTariff(Decimal("21.0013"), Decimal("7.4321"))),
        emission_factor_g_per_kwh=123,
    )
    covered_kwh = Decimal(int(allocation.covered_wh.sum())) / 1000
    rate = (
        Decimal("21.0013")
        + Decimal("7.4321") * Decimal("0.57")
        + Decimal("1.5")
        - Decimal("11.2347")
    )
    assert nct_to_euro(result.totals()["savings_nct"]) == covered_kwh * rate / 100


def test_days_add_up_the_intervals_over_summer_time_and_a_price_change() -> None:
    # 30 March 2025 (92 quarter hours) to 1 April, the supplier's price changing on 31 March,
    # one producer with a feed-in tariff changing too.
    change = date(2025, 3, 31)
    supplier = Schedule(
        "supplier",
        [
            Dated(ConsumerTariff(Decimal(20), Decimal(8)), valid_to=change),
            Dated(ConsumerTariff(Decimal("23.1234"), Decimal(8)), valid_from=change),
        ],
    )
    feed_in = Schedule(
        "feed-in",
        [
            Dated(ProducerTariff(Decimal(6)), valid_to=change),
            Dated(ProducerTariff(Decimal("4.5")), valid_from=change),
        ],
    )
    count = 92 + 96 + 20
    rng = np.random.default_rng(8)
    allocation = allocate(
        rng.integers(0, 700, size=(3, count)),
        rng.integers(0, 900, size=(2, count)),
        model=AllocationModel.DYNAMIC,
        producer_tf_percent=[[100], [60]],
    )
    interval_starts = regular_starts(datetime(2025, 3, 29, 23, tzinfo=UTC), count)
    consumers = consumer_savings(
        allocation,
        interval_starts,
        kind=CommunityKind.EEG_REGIONAL,
        sources=PV,
        prices=PRICES,
        tariffs=[supplier, TARIFF, supplier],
        emission_factor_g_per_kwh=250,
    )
    producers = producer_revenue(allocation, interval_starts, prices=PRICES, feed_in=feed_in)
    days = consumers.daily()
    assert days.days.astype(str).tolist() == ["2025-03-30", "2025-03-31", "2025-04-01"]
    bounds = [0, 92, 188, count]
    for name in ("covered_wh", "community_cost_nct", "grid_cost_nct", "co2_avoided_mg"):
        per_interval = allocation.covered_wh if name == "covered_wh" else getattr(consumers, name)
        expected = np.add.reduceat(per_interval, bounds[:-1], axis=1)
        assert np.array_equal(getattr(days, name), expected), name
    assert np.array_equal(days.savings_nct, np.add.reduceat(consumers.savings_nct, bounds[:-1], 1))
    assert consumers.totals()["savings_nct"] == int(consumers.savings_nct.sum())
    assert consumers.totals()["co2_avoided_mg"] == int(allocation.covered_wh.sum()) * 250
    produced = producers.daily()
    assert np.array_equal(
        produced.credited_wh, np.add.reduceat(allocation.credited_wh, bounds[:-1], axis=1)
    )
    assert np.array_equal(
        produced.gain_nct, np.add.reduceat(producers.gain_nct, bounds[:-1], axis=1)
    )
    assert producers.totals()["feed_in_revenue_nct"] == int(producers.feed_in_revenue_nct.sum())
    assert np.array_equal(producers.credited_wh, allocation.credited_wh)
    # The price per day really changed: 23.1234 ct from 31 March.
    rate = consumers.grid_rate_uct_per_kwh
    assert rate[0, 1] - rate[0, 0] == 3_123_400


def test_starts_out_of_order_give_the_same_days() -> None:
    count = 200
    rng = np.random.default_rng(9)
    consumption = rng.integers(0, 700, size=(2, count))
    production = rng.integers(0, 900, size=(1, count))
    interval_starts = regular_starts(datetime(2025, 6, 30, 12, tzinfo=UTC), count)
    order = rng.permutation(count)

    def days_of(columns: np.ndarray) -> tuple[list[str], list[list[int]], list[list[int]]]:
        allocation = allocate(
            consumption[:, columns], production[:, columns], model=AllocationModel.DYNAMIC
        )
        result = consumer_savings(
            allocation,
            interval_starts[columns],
            kind=CommunityKind.EEG_LOCAL,
            sources=PV,
            prices=PRICES,
            tariffs=TARIFF,
            emission_factor_g_per_kwh=1,
        )
        revenue = producer_revenue(
            allocation, interval_starts[columns], prices=PRICES, feed_in=FEED_IN
        )
        days = result.daily()
        return (
            days.days.astype(str).tolist(),
            days.community_cost_nct.tolist(),
            revenue.daily().community_revenue_nct.tolist(),
        )

    assert days_of(order) == days_of(np.arange(count))


def test_amounts_beyond_int64_are_refused() -> None:
    # 96 quarter hours of 2**31 − 1 Wh at 1000 ct/kWh: about 2·10²⁰ nct in one day.
    whole = [[2**31 - 1] * 96]
    allocation = allocate(whole, whole, model=AllocationModel.DYNAMIC)
    dear = Schedule.constant("dear", ConsumerTariff(Decimal(1000), Decimal(1000)))
    result = consumer_savings(
        allocation,
        regular_starts(datetime(2025, 3, 2, 23, tzinfo=UTC), 96),
        kind=CommunityKind.EEG_LOCAL,
        sources=PV,
        prices=PRICES,
        tariffs=dear,
        emission_factor_g_per_kwh=0,
    )
    # 1000 + 1000 + 1.5 (Elektrizitätsabgabe) ct/kWh: still within int64 per interval, from
    # G.03 held as int32.
    assert allocation.covered_wh.dtype == np.int32
    assert result.grid_cost_nct.dtype == np.int64
    assert int(result.grid_cost_nct[0, 0]) == (2**31 - 1) * 2_001_500_000
    heavy = consumer_savings(
        allocation,
        regular_starts(datetime(2025, 3, 2, 23, tzinfo=UTC), 96),
        kind=CommunityKind.EEG_LOCAL,
        sources=PV,
        prices=PRICES,
        tariffs=TARIFF,
        emission_factor_g_per_kwh=10_000,
    )
    assert int(heavy.co2_avoided_mg[0, 95]) == (2**31 - 1) * 10_000
    assert int(heavy.daily().co2_avoided_mg[0, 0]) == 96 * (2**31 - 1) * 10_000
    with pytest.raises(AllocationInputError, match="int64"):
        result.totals()


def test_no_intervals() -> None:
    allocation = allocate(
        np.zeros((2, 0), dtype=np.int64),
        np.zeros((1, 0), dtype=np.int64),
        model=AllocationModel.DYNAMIC,
    )
    result = consumer_savings(
        allocation,
        np.zeros(0, dtype="datetime64[s]"),
        kind=CommunityKind.EEG_LOCAL,
        sources=PV,
        prices=PRICES,
        tariffs=TARIFF,
        emission_factor_g_per_kwh=1,
    )
    assert result.totals() == {
        "community_cost_nct": 0,
        "grid_cost_nct": 0,
        "savings_nct": 0,
        "co2_avoided_mg": 0,
    }
    assert result.community_cost_nct.shape == (2, 0)
    assert result.daily().covered_wh.shape == (2, 0)
