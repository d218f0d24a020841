"""The 15-minute allocation: hand-computed cases, the rules as properties, an exact oracle."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ecommunity.community import (
    MAX_INTERVAL_WH,
    AllocationInputError,
    AllocationKeyError,
    AllocationModel,
    StaticKeys,
    allocate,
)
from tests.community.reference import allocate_interval

DYNAMIC = AllocationModel.DYNAMIC
STATIC = AllocationModel.STATIC

# Three consumers A, B, C and two producers over four intervals (the same numbers as
# tests/data/community/community.csv). Interval 2: A takes part with 50 %. Interval 4: only A
# and the producers take part (B and C have factor 0).
CONSUMPTION = np.array([[400, 100, 1, 2], [100, 50, 1, 0], [500, 0, 1, 0]])
CONSUMER_TF = np.array([[100, 50, 100, 100], [100, 100, 100, 0], [100, 100, 100, 0]])
PRODUCTION = np.array([[600, 300, 1, 1], [200, 100, 1, 2]])
KEYS = StaticKeys.from_values(["0.5", "0.3", "0.2"])


def test_dynamic_worked_example() -> None:
    result = allocate(CONSUMPTION, PRODUCTION, model=DYNAMIC, consumer_tf_percent=CONSUMER_TF)
    # 1: P = 800 < C = 1000: everyone gets 80 % of their consumption, production used up.
    # 2: c_A = 50 (TF 50 %), P = 400 > C = 100: shares 200/200/0 cover everyone; consumers take
    #    100 Wh, credited 3:1 to the producers (75/25), surplus 225/75.
    # 3: P = 2, C = 3: shares of 2/3 each; running sums 2/3, 4/3, 2 round down to 0, 1, 2, so
    #    A, B, C get 0, 1, 1.
    # 4: A alone: share 3, covers its 2 Wh; credits 2/3 and 4/3: running sums 2/3 and 2 give
    #    0 and 2, so P1 has one Wh of surplus and P2 none.
    assert result.consumption_t_wh.tolist() == [[400, 50, 1, 2], [100, 50, 1, 0], [500, 0, 1, 0]]
    assert result.allocated_wh.tolist() == [[320, 200, 0, 3], [80, 200, 1, 0], [400, 0, 1, 0]]
    assert result.covered_wh.tolist() == [[320, 50, 0, 2], [80, 50, 1, 0], [400, 0, 1, 0]]
    assert result.surplus_wh.tolist() == [[0, 225, 0, 1], [0, 75, 0, 0]]
    assert result.credited_wh.tolist() == [[600, 75, 1, 0], [200, 25, 1, 2]]
    assert result.residual_wh.tolist() == [[80, 50, 1, 0], [20, 0, 0, 0], [100, 0, 0, 0]]
    totals = result.totals()
    assert (totals.covered_wh, totals.credited_wh, totals.surplus_wh) == (904, 904, 301)
    assert totals.consumption_wh == 1155
    assert totals.consumption_t_wh == 1105
    assert totals.to_json()["residual_wh"] == 251
    assert set(totals.to_json()) == set(totals.__dataclass_fields__)


def test_static_worked_example() -> None:
    result = allocate(
        CONSUMPTION, PRODUCTION, model=STATIC, consumer_tf_percent=CONSUMER_TF, keys=KEYS
    )
    # 1: shares 400/240/160 of P = 800; B uses only 100 of its 240: the 140 are surplus, not
    #    given to C (who could use them). Consumers take 660, credited 495/165.
    # 3: shares 1, 0.6, 0.4 of P = 2: running sums 1, 1.6, 2 give 1, 0, 1.
    # 4: only A's key is active: 0.5 × 3 = 1.5 rounds down to 1; B's and C's shares are surplus.
    #    Consumers take 1 Wh: credits 1/3 and 2/3 (running sums 1/3, 1) give 0 and 1.
    assert result.allocated_wh.tolist() == [[400, 200, 1, 1], [240, 120, 0, 0], [160, 80, 1, 0]]
    assert result.covered_wh.tolist() == [[400, 50, 1, 1], [100, 50, 0, 0], [160, 0, 1, 0]]
    assert result.surplus_wh.tolist() == [[105, 225, 0, 1], [35, 75, 0, 1]]
    assert result.totals().covered_wh == 763
    assert result.totals().surplus_wh == 442


def test_no_members_or_no_intervals() -> None:
    empty = allocate(np.zeros((0, 3), dtype=np.int64), [[5, 0, 1]], model=DYNAMIC)
    assert empty.surplus_wh.tolist() == [[5, 0, 1]]
    none = allocate(
        np.zeros((2, 0), dtype=np.int64), np.zeros((1, 0), dtype=np.int64), model=DYNAMIC
    )
    assert none.totals().intervals == 0
    no_producers = allocate([[3, 4]], np.zeros((0, 2), dtype=np.int64), model=DYNAMIC)
    assert no_producers.covered_wh.tolist() == [[0, 0]]


def test_largest_energies_do_not_overflow() -> None:
    consumption = np.array([[MAX_INTERVAL_WH // 3], [MAX_INTERVAL_WH // 3 - 7], [5]])
    production = np.array([[MAX_INTERVAL_WH - 11]])
    for keys in (None, [Fraction(1, 3), Fraction(1, 3), Fraction(1, 3)]):
        model = DYNAMIC if keys is None else STATIC
        result = allocate(
            consumption,
            production,
            model=model,
            keys=None if keys is None else StaticKeys.from_values(keys),
        )
        expected = allocate_interval(
            consumption[:, 0].tolist(), production[:, 0].tolist(), [100] * 3, [100], keys
        )
        assert result.allocated_wh[:, 0].tolist() == expected["g02"]
        assert result.surplus_wh[:, 0].tolist() == expected["p01t"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consumption_wh": [[1.5]]}, "whole numbers"),
        ({"consumption_wh": [[True]]}, "whole numbers"),
        ({"consumption_wh": [1, 2]}, "dimensions"),
        ({"consumption_wh": [[-1]]}, "0 to"),
        ({"consumption_wh": [[MAX_INTERVAL_WH + 1]]}, "0 to"),
        ({"consumption_wh": [[MAX_INTERVAL_WH], [1]]}, "above"),
        ({"production_wh": [[1, 2]]}, "intervals"),
        ({"consumer_tf_percent": 101}, "0 to 100"),
        ({"consumer_tf_percent": [[-1]]}, "0 to 100"),
        ({"consumer_tf_percent": [50, 50]}, "do not fit"),
        ({"producer_tf_percent": 50.0}, "whole numbers"),
        ({"keys": StaticKeys.from_values(["1"])}, "no allocation keys"),
        ({"model": STATIC}, "needs one allocation key"),
        ({"model": STATIC, "keys": StaticKeys.from_values(["0.5", "0.5"])}, "2 allocation keys"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "consumption_wh": [[10]],
        "production_wh": [[10]],
        "model": DYNAMIC,
    }
    arguments.update(kwargs)
    with pytest.raises(AllocationInputError, match=message):
        allocate(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["0.6", "0.5"], "more than 1"),
        (["-0.1"], "between 0 and 1"),
        (["1.01"], "between 0 and 1"),
        (["half"], "is a number"),
        (["1/0"], "is a number"),
        ([Fraction(1, 2**31)], "too fine"),
    ],
)
def test_bad_keys_are_refused(values: list[object], message: str) -> None:
    with pytest.raises(AllocationKeyError, match=message):
        StaticKeys.from_values(values)  # type: ignore[arg-type]


def test_keys_are_exact() -> None:
    keys = StaticKeys.from_values(["1/3", " 0.25 ", 0, Fraction(1, 6)])
    assert keys.fractions() == [Fraction(1, 3), Fraction(1, 4), 0, Fraction(1, 6)]
    assert keys.total == Fraction(3, 4)
    assert keys.denominator == 12


# --- Properties ------------------------------------------------------------------------------

energies = st.integers(0, 5_000) | st.sampled_from([0, 1, 2, 3])
factors = st.sampled_from([0, 1, 33, 50, 99, 100])


@st.composite
def communities(draw: st.DrawFn) -> dict[str, object]:
    consumers = draw(st.integers(0, 6))
    producers = draw(st.integers(0, 4))
    intervals = draw(st.integers(1, 5))

    def matrix(rows: int, values: st.SearchStrategy[int]) -> np.ndarray:
        cells = draw(st.lists(values, min_size=rows * intervals, max_size=rows * intervals))
        return np.array(cells, dtype=np.int64).reshape(rows, intervals)

    keys = None
    if draw(st.booleans()):
        weights = draw(st.lists(st.integers(0, 10), min_size=consumers, max_size=consumers))
        scale = max(sum(weights), 1) + draw(st.integers(0, 5))
        keys = [Fraction(w, scale) for w in weights]
    return {
        "consumption": matrix(consumers, energies),
        "production": matrix(producers, energies),
        "consumer_tf": matrix(consumers, factors),
        "producer_tf": matrix(producers, factors),
        "keys": keys,
    }


def run(case: dict[str, object]) -> object:
    keys = case["keys"]
    return allocate(
        case["consumption"],  # type: ignore[arg-type]
        case["production"],  # type: ignore[arg-type]
        model=DYNAMIC if keys is None else STATIC,
        consumer_tf_percent=case["consumer_tf"],  # type: ignore[arg-type]
        producer_tf_percent=case["producer_tf"],  # type: ignore[arg-type]
        keys=None if keys is None else StaticKeys.from_values(keys),  # type: ignore[arg-type]
    )


@settings(max_examples=300, deadline=None)
@given(communities())
def test_matches_the_exact_reference(case: dict[str, np.ndarray]) -> None:
    result = run(case)
    for t in range(case["consumption"].shape[1]):
        expected = allocate_interval(
            case["consumption"][:, t].tolist(),
            case["production"][:, t].tolist(),
            case["consumer_tf"][:, t].tolist(),
            case["producer_tf"][:, t].tolist(),
            case["keys"],  # type: ignore[arg-type]
        )
        assert result.consumption_t_wh[:, t].tolist() == expected["g01t_consumers"]  # type: ignore[attr-defined]
        assert result.allocated_wh[:, t].tolist() == expected["g02"]  # type: ignore[attr-defined]
        assert result.covered_wh[:, t].tolist() == expected["g03"]  # type: ignore[attr-defined]
        assert result.production_t_wh[:, t].tolist() == expected["g01t_producers"]  # type: ignore[attr-defined]
        assert result.surplus_wh[:, t].tolist() == expected["p01t"]  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(communities())
def test_never_more_than_consumption_or_production(case: dict[str, np.ndarray]) -> None:
    result = run(case)
    c, p = result.consumption_t_wh, result.production_t_wh  # type: ignore[attr-defined]
    covered = result.covered_wh  # type: ignore[attr-defined]
    assert np.all(covered >= 0)
    assert np.all(covered <= c)
    assert np.all(covered <= result.allocated_wh)  # type: ignore[attr-defined]
    assert np.all(covered.sum(axis=0) <= p.sum(axis=0))
    assert np.all(result.allocated_wh.sum(axis=0) <= p.sum(axis=0))  # type: ignore[attr-defined]
    assert np.all((result.surplus_wh >= 0) & (result.surplus_wh <= p))  # type: ignore[attr-defined]
    assert np.all(c <= case["consumption"])
    assert np.all(p <= case["production"])


@settings(max_examples=300, deadline=None)
@given(communities())
def test_conservation_in_every_interval(case: dict[str, np.ndarray]) -> None:
    # What consumers are allocated as covered energy (Σ G.03) is what producers are credited
    # (Σ G.01T − P.01T), to the Wh, and production is either taken or surplus.
    result = run(case)
    covered = result.covered_wh.sum(axis=0)  # type: ignore[attr-defined]
    credited = result.credited_wh.sum(axis=0)  # type: ignore[attr-defined]
    assert covered.tolist() == credited.tolist()
    production = result.production_t_wh.sum(axis=0)  # type: ignore[attr-defined]
    assert (covered + result.surplus_wh.sum(axis=0)).tolist() == production.tolist()  # type: ignore[attr-defined]
    # Each producer's credit is its pro-rata part of the covered energy, rounded.
    total = np.maximum(production, 1)
    exact = result.production_t_wh * covered / total  # type: ignore[attr-defined]
    assert np.all(np.abs(result.credited_wh - exact) < 1)  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(communities())
def test_members_with_factor_zero_get_nothing(case: dict[str, np.ndarray]) -> None:
    result = run(case)
    off = case["consumer_tf"] == 0
    assert np.all(result.consumption_t_wh[off] == 0)  # type: ignore[attr-defined]
    assert np.all(result.allocated_wh[off] == 0)  # type: ignore[attr-defined]
    assert np.all(result.covered_wh[off] == 0)  # type: ignore[attr-defined]
    off = case["producer_tf"] == 0
    assert np.all(result.credited_wh[off] == 0)
    assert np.all(result.surplus_wh[off] == 0)


@settings(max_examples=200, deadline=None)
@given(communities(), st.data())
def test_static_unused_share_is_surplus_not_redistributed(
    case: dict[str, np.ndarray], data: st.DataObject
) -> None:
    assume(case["keys"] is not None and case["consumption"].shape[0] >= 2)
    result = run(case)
    # Another consumer's consumption changes nothing about consumer 0's share or coverage.
    changed = dict(case)
    consumption = case["consumption"].copy()
    consumption[1] = data.draw(
        st.lists(energies, min_size=consumption.shape[1], max_size=consumption.shape[1])
    )
    changed["consumption"] = consumption
    other = run(changed)
    assert result.allocated_wh[0].tolist() == other.allocated_wh[0].tolist()  # type: ignore[attr-defined]
    assert result.covered_wh[0].tolist() == other.covered_wh[0].tolist()  # type: ignore[attr-defined]
    # Whatever a share leaves unused, and what the keys leave unassigned, is surplus.
    production = result.production_t_wh.sum(axis=0)  # type: ignore[attr-defined]
    unused = (result.allocated_wh - result.covered_wh).sum(axis=0)  # type: ignore[attr-defined]
    unassigned = production - result.allocated_wh.sum(axis=0)  # type: ignore[attr-defined]
    assert (result.surplus_wh.sum(axis=0)).tolist() == (unused + unassigned).tolist()  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(communities())
def test_dynamic_with_ample_production_covers_everyone(case: dict[str, np.ndarray]) -> None:
    case = {**case, "keys": None}
    result = run(case)
    c = result.consumption_t_wh  # type: ignore[attr-defined]
    ample = result.production_t_wh.sum(axis=0) >= c.sum(axis=0)  # type: ignore[attr-defined]
    assert np.array_equal(result.covered_wh[:, ample], c[:, ample])  # type: ignore[attr-defined]
    # And short of that, everyone gets the same fraction of their consumption, within a Wh.
    production = result.production_t_wh.sum(axis=0)  # type: ignore[attr-defined]
    total = np.maximum(c.sum(axis=0), 1)
    exact = c * production / total
    assert np.all(np.abs(result.allocated_wh - exact) < 1)  # type: ignore[attr-defined]


def test_static_key_sum_below_one_leaves_surplus() -> None:
    keys = StaticKeys.from_values(["0.4", "0.4"])
    result = allocate([[1000], [1000]], [[100]], model=STATIC, keys=keys)
    assert result.covered_wh[:, 0].tolist() == [40, 40]
    assert result.surplus_wh[0, 0] == 20


# --- The engine: segments, blocks, threads, exact fallback -----------------------------------


def random_community(seed: int, consumers: int, producers: int, intervals: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    consumption = rng.integers(0, 400, size=(consumers, intervals))
    consumption[rng.random(consumption.shape) < 0.1] = 0
    production = rng.integers(0, 900, size=(producers, intervals))
    production[:, rng.random(intervals) < 0.3] = 0  # nights: nothing to share
    weights = rng.integers(0, 5, size=consumers)
    return {
        "consumption": consumption,
        "production": production,
        "consumer_tf": rng.choice([0, 1, 50, 99, 100, 100, 100], size=(consumers, 1)),
        "producer_tf": rng.choice([50, 100], size=(producers, 1)),
        "keys": [Fraction(int(w), int(weights.sum()) + 3) for w in weights],
    }


def check_against_reference(result: Any, case: dict[str, Any], columns: list[int]) -> None:
    keys = case["keys"]
    consumer_tf = np.broadcast_to(case["consumer_tf"], case["consumption"].shape)
    producer_tf = np.broadcast_to(case["producer_tf"], case["production"].shape)
    for t in columns:
        expected = allocate_interval(
            case["consumption"][:, t].tolist(),
            case["production"][:, t].tolist(),
            consumer_tf[:, t].tolist(),
            producer_tf[:, t].tolist(),
            keys,
        )
        assert result.allocated_wh[:, t].tolist() == expected["g02"]
        assert result.covered_wh[:, t].tolist() == expected["g03"]
        assert result.surplus_wh[:, t].tolist() == expected["p01t"]


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("per_interval_factors", [False, True])
def test_segments_blocks_and_threads_change_nothing(
    monkeypatch: pytest.MonkeyPatch, static: bool, per_interval_factors: bool
) -> None:
    from ecommunity.community import _engine

    case = random_community(11, consumers=41, producers=6, intervals=1300)
    if per_interval_factors:
        rng = np.random.default_rng(12)
        case["consumer_tf"] = rng.choice([0, 50, 100], size=(41, 1300))
    if not static:
        case["keys"] = None
    reference = run(case)
    # Tiny blocks and segments: rows carried across blocks, both running-sum paths (row loop
    # for segments of 512 columns and more, cumsum below), several threads.
    monkeypatch.setattr(_engine, "_BLOCK_CELLS", 2**11)
    monkeypatch.setattr(_engine, "_SEGMENT_COLUMNS", 700)
    for workers in (1, 2, 3, 5):
        keys = case["keys"]
        result = allocate(
            case["consumption"],
            case["production"],
            model=STATIC if static else DYNAMIC,
            consumer_tf_percent=case["consumer_tf"],
            producer_tf_percent=case["producer_tf"],
            keys=None if keys is None else StaticKeys.from_values(keys),
            workers=workers,
        )
        for name in ("allocated_wh", "covered_wh", "surplus_wh", "credited_wh"):
            assert np.array_equal(getattr(result, name), getattr(reference, name)), name
    check_against_reference(reference, case, [0, 1, 511, 512, 699, 700, 1299])


def test_large_inputs_in_threads_give_the_same_result() -> None:
    case = random_community(13, consumers=1100, producers=40, intervals=3900)
    case["keys"] = None
    result = run(case)  # one thread by default
    two = allocate(
        case["consumption"],
        case["production"],
        model=DYNAMIC,
        consumer_tf_percent=case["consumer_tf"],
        producer_tf_percent=case["producer_tf"],
        workers=2,
    )
    assert np.array_equal(result.allocated_wh, two.allocated_wh)  # type: ignore[attr-defined]
    assert np.array_equal(result.surplus_wh, two.surplus_wh)  # type: ignore[attr-defined]
    check_against_reference(result, case, [0, 1000, 3899])


def test_columns_beyond_float_precision_are_computed_in_integers() -> None:
    # Column 0 shares 2**31 - 2 Wh among as much consumption (P·C > 2**49: integer path for
    # its segment); column 1 is small. Both must match the exact reference.
    big = MAX_INTERVAL_WH // 3
    consumption = np.array([[big, 7], [big - 1, 0], [big + 2, 5]])
    production = np.array([[MAX_INTERVAL_WH - 5, 9], [3, 2]])
    case: dict[str, Any] = {
        "consumption": consumption,
        "production": production,
        "consumer_tf": np.full((3, 1), 100),
        "producer_tf": np.full((2, 1), 100),
        "keys": None,
    }
    check_against_reference(run(case), case, [0, 1])
    case["keys"] = [Fraction(1, 3), Fraction(1, 7), Fraction(2, 5)]
    check_against_reference(run(case), case, [0, 1])


def test_inputs_are_kept_read_only_and_derived_arrays_computed_once() -> None:
    consumption = np.array([[400, 100], [100, 50]])
    result = allocate(consumption, [[300, 900]], model=DYNAMIC)
    assert not result.consumption_wh.flags.writeable
    consumption[0, 0] = 1  # the caller's array is not copied: a year of members is large
    assert result.consumption_wh[0, 0] == 1
    assert result.consumption_t_wh is result.consumption_wh  # every factor 100 %
    assert result.credited_wh is result.credited_wh
    halves = allocate(consumption, [[300, 900]], model=DYNAMIC, consumer_tf_percent=[[50], [100]])
    assert halves.consumption_t_wh.tolist() == [[0, 50], [100, 50]]
    with pytest.raises(AllocationInputError, match="workers"):
        allocate(consumption, [[300, 900]], model=DYNAMIC, workers=0)
    with pytest.raises(AllocationInputError, match="do not fit"):
        allocate(consumption, [[300, 900]], model=DYNAMIC, consumer_tf_percent=[[[100]]])
