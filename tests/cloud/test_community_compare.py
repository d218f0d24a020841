"""``GET /api/v1/communities/compare``: side by side with the caller's estimated yearly savings,
against hand-computed cases; who may ask and bad input; on SQLite and PostgreSQL.

The case (clock: 2025-06-16, so the year is 2024-06-16 to 2025-06-16 Vienna and today's rules
apply: local EEG 57 % off the grid fee, Elektrizitätsabgabe 1.5 ct/kWh and Förderbeitrag
charged on the grid side, both exempt in the EEG):

- You (U): a paired gateway whose meter counted 105 Wh in each quarter hour of 2025-06-15 and
  nothing else in the year: ``basis: metered``, 96 quarter hours, scaled × 365 to 3,679.2 kWh.
- "Sonne" (dynamic): producer P feeds in 60 Wh each quarter hour of that day; no consumers.
  You alone: G.02 = 60, G.03 = min(60, 105) = 60 Wh per quarter hour: 2,102.4 kWh a year.
- "Schatten" (static): producer Q feeds in 60 Wh per quarter hour; consumer C (no gateway) holds
  the key 0.6. Your key: min(1 − 0.6, 1/2) = 0.4: G.02 = G.03 = 24 Wh per quarter hour.
- Per kWh covered (reference tariff 14.6667 + 6.64 + 1.30 ct/kWh): community 12.5 + 6.64 × 0.43
  = 15.3552 ct, grid 14.6667 + 6.64 + 1.5 + 1.30 = 24.1067 ct, saved 8.7515 ct.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ecommunity.cloud.community_view.compare import whole_wh
from ecommunity.forecast import StandardLoadProfile
from tests.cloud.community_helpers import API, Clock, create_community, error_code
from tests.cloud.community_view_helpers import (
    DAY_START,
    QUARTER,
    Member,
    meter_minutes,
    set_key,
    view_community,
)
from tests.cloud.helpers import Login, register_and_login
from tests.cloud.test_ingest import Account, add_gateway

COMPARED_AT = DAY_START + timedelta(days=1, hours=14)  # 2025-06-16 16:00 Vienna
YEAR_START = "2024-06-15T22:00:00Z"
QUARTERS_PER_YEAR = 35_040
COMMUNITY_CT = Decimal("15.3552")
GRID_CT = Decimal("24.1067")


def _euro(wh_per_quarter: int, ct_per_kwh: Decimal, quarters: int = QUARTERS_PER_YEAR) -> Decimal:
    """wh × ct/kWh over a year of quarter hours, in euros to a hundredth of a cent."""
    return (Decimal(wh_per_quarter * quarters) * ct_per_kwh / 1000 / 100).quantize(
        Decimal("0.0001")
    )


def compare(client: TestClient, login: Login | None, ids: str, **params: Any) -> Any:
    headers = {} if login is None else login.headers
    return client.get(f"{API}/communities/compare", params={"ids": ids, **params}, headers=headers)


def _quarterly(client: TestClient, member: Member, **energy: int) -> None:
    """A reading at every quarter hour of 2025-06-15 (Vienna), energy per quarter hour
    (multiples of 15 Wh)."""
    assert all(value % 15 == 0 for value in energy.values())
    per_minute = {f"{key}_per_minute": value // 15 for key, value in energy.items()}
    meter_minutes(client, member, DAY_START, 24 * 60, every=QUARTER, **per_minute)


class Case:
    def __init__(self, client: TestClient) -> None:
        sonne = view_community(
            client, name="Sonne", roles=(("producer", 100),), member_fee_eur_per_year="12"
        )
        schatten = view_community(
            client,
            name="Schatten",
            model="static",
            roles=(("producer", 100), ("consumer", 100)),
            number_base=10,
            member_fee_eur_per_year="0",
        )
        set_key(client, schatten, schatten.member(1), "0.6")
        _quarterly(client, sonne.member(0), export_wh=60)
        _quarterly(client, schatten.member(0), export_wh=60)
        self.you = register_and_login(client, display_name="You")
        you = Member(self.you, "AT0030000000000000000000000999999", "consumer", 100, 0)
        you.gateway = add_gateway(client, Account(self.you.user_id, self.you.headers), "pi-you")
        _quarterly(client, you, import_wh=105)
        self.clock = Clock(COMPARED_AT)
        self.clock.install(cast(FastAPI, client.app))
        self.sonne, self.schatten = sonne, schatten
        self.ids = f"{sonne.id},{schatten.id}"


@pytest.fixture
def case(client: TestClient) -> Case:
    return Case(client)


def test_the_metered_estimate_is_the_hand_computed_one(client: TestClient, case: Case) -> None:
    response = compare(client, case.you, case.ids)
    assert response.status_code == 200, response.text
    body = response.json()
    assumptions = body["assumptions"]
    assert assumptions["basis"] == "metered"
    assert Decimal(assumptions["annual_consumption_kwh"]) == Decimal("3679.2")
    assert assumptions["history"] == {
        "intervals": 96,
        "days": 1.0,
        "first": "2025-06-14T22:00:00Z",
        "last": "2025-06-15T22:00:00Z",
    }
    assert (assumptions["year_start"], assumptions["year_end"]) == (
        YEAR_START,
        "2025-06-15T22:00:00Z",
    )
    assert assumptions["priced_on"] == "2025-06-16"
    assert assumptions["participation_factor"] == 100
    assert any("96 quarter hours" in note for note in assumptions["notes"])
    sonne, schatten = body["communities"]
    assert (sonne["id"], schatten["id"]) == (case.sonne.id, case.schatten.id)
    assert (sonne["kind"], sonne["allocation_model"], schatten["allocation_model"]) == (
        "eeg_local",
        "dynamic",
        "static",
    )
    assert (sonne["member_count"], schatten["member_count"]) == (1, 2)
    assert Decimal(sonne["generation_kwp"]) == Decimal("55.5")
    assert sonne["open_for_members"] is True

    estimate = sonne["estimate"]
    assert sonne["estimate_unavailable"] is None
    assert (estimate["production_basis"], estimate["community_consumption_basis"]) == (
        "metered",
        "none",
    )
    assert estimate["static_key"] is None
    assert Decimal(estimate["consumption_kwh"]) == Decimal("3679.2")
    assert Decimal(estimate["covered_kwh"]) == Decimal("2102.4")
    assert estimate["coverage_share"] == round(60 / 105, 4)
    assert Decimal(estimate["community_cost_eur"]) == _euro(60, COMMUNITY_CT)  # 322.8277
    assert Decimal(estimate["grid_cost_eur"]) == _euro(60, GRID_CT)  # 506.8193
    assert Decimal(estimate["savings_eur"]) == _euro(60, GRID_CT - COMMUNITY_CT)  # 183.9915
    assert Decimal(estimate["member_fee_eur"]) == Decimal("12")
    assert Decimal(estimate["net_savings_eur"]) == _euro(60, GRID_CT - COMMUNITY_CT) - 12

    static = schatten["estimate"]
    assert (static["production_basis"], static["community_consumption_basis"]) == (
        "metered",
        "assumed",
    )
    assert Decimal(static["static_key"]) == Decimal("0.4")
    assert Decimal(static["covered_kwh"]) == Decimal("841.0")  # 24 Wh × 35,040
    assert static["coverage_share"] == round(24 / 105, 4)
    assert Decimal(static["savings_eur"]) == _euro(24, GRID_CT - COMMUNITY_CT)  # 73.5966
    assert Decimal(static["net_savings_eur"]) == Decimal(static["savings_eur"])
    assert any("0.4" in note for note in static["notes"])


def test_your_own_tariff_is_used(client: TestClient, case: Case) -> None:
    """A supplier price of 20 ct/kWh: grid 20 + 6.64 + 1.5 + 1.30 = 29.44 ct/kWh."""
    body = compare(client, case.you, case.ids, supplier_ct_per_kwh="20").json()
    assert Decimal(body["assumptions"]["tariff"]["energy_ct_per_kwh"]) == Decimal("20")
    estimate = body["communities"][0]["estimate"]
    assert Decimal(estimate["grid_cost_eur"]) == _euro(60, Decimal("29.44"))
    assert Decimal(estimate["savings_eur"]) == _euro(60, Decimal("29.44") - COMMUNITY_CT)


def test_without_a_gateway_your_annual_consumption_shaped_by_h0(
    client: TestClient, case: Case
) -> None:
    """No gateway: annual_kwh through H0. In "Sonne" you are the only consumer, so each
    quarter hour of 2025-06-15 (where P's meter reported) you get min(60, your H0 energy)."""
    other = register_and_login(client)
    response = compare(client, other, case.ids)
    assert error_code(response, 400) == "consumption_needed"
    assert "annual_kwh" in response.json()["detail"]
    body = compare(client, other, case.ids, annual_kwh="4200").json()
    assert body["assumptions"]["basis"] == "h0"
    assert body["assumptions"]["history"] is None
    assert Decimal(body["assumptions"]["annual_consumption_kwh"]) == Decimal("4200")
    year = StandardLoadProfile(4200).quarter_hour_energies_wh(
        DAY_START - timedelta(days=364), QUARTERS_PER_YEAR
    )
    h0_wh = whole_wh(year)[-96:]  # 2025-06-15, the year's last day
    estimate = body["communities"][0]["estimate"]
    assert estimate["production_basis"] == "metered"
    covered = sum(min(60, int(wh)) for wh in h0_wh)
    assert Decimal(estimate["consumption_kwh"]) == (
        Decimal(int(h0_wh.sum()) * 365) / 1000
    ).quantize(Decimal("0.1"))
    assert Decimal(estimate["covered_kwh"]) == (Decimal(covered * 365) / 1000).quantize(
        Decimal("0.1")
    )
    saved = (Decimal(covered * 365) * (GRID_CT - COMMUNITY_CT) / 100_000).quantize(
        Decimal("0.0001")
    )
    assert Decimal(estimate["savings_eur"]) == saved


def test_plants_through_a_typical_pv_year(client: TestClient, case: Case) -> None:
    """A community with plants and no producer member: its PV kWp in a typical year, against a
    year of your H0; a hydro plant has no profile and is left out with a note."""
    operator = register_and_login(client)
    plants = [
        {"source": "pv", "peak_power_kwp": "10"},
        {"source": "hydro", "peak_power_kwp": "30"},
    ]
    kwp = create_community(client, operator, name="Dach", plants=plants)
    someone = register_and_login(client)
    body = compare(client, someone, f"{kwp['id']},{case.sonne.id}", annual_kwh="3500").json()
    estimate = body["communities"][0]["estimate"]
    assert estimate["production_basis"] == "kwp"
    assert any("hydro" in note for note in estimate["notes"])
    consumption = Decimal(estimate["consumption_kwh"])
    covered = Decimal(estimate["covered_kwh"])
    assert abs(consumption - 3500) < 20  # the year spans two calendar years of H0
    # 10 kWp yield ~10 MWh, but only while the sun shines: daytime use is covered.
    assert Decimal("0.25") * consumption < covered < Decimal("0.6") * consumption
    saved = (covered * (GRID_CT - COMMUNITY_CT) / 100).quantize(Decimal("0.0001"))
    assert abs(Decimal(estimate["savings_eur"]) - saved) < Decimal("0.01")


def test_a_member_is_left_out_of_the_others(client: TestClient, case: Case) -> None:
    """P compares: in "Sonne" P is the producer, so no producer remains but the plants."""
    producer = case.sonne.member(0).login
    body = compare(client, producer, case.ids, annual_kwh="3000").json()
    sonne = body["communities"][0]["estimate"]
    assert sonne["production_basis"] == "kwp"
    assert any("you are a member" in note for note in sonne["notes"])


def test_a_gea_has_no_estimate_and_says_why(client: TestClient, case: Case) -> None:
    operator = register_and_login(client)
    gea = create_community(client, operator, name="Haus", kind="gea")
    body = compare(client, case.you, f"{case.sonne.id},{gea['id']}").json()
    assert body["communities"][0]["estimate"] is not None
    assert body["communities"][1]["estimate"] is None
    assert "gea" in body["communities"][1]["estimate_unavailable"]


@pytest.mark.parametrize(
    "ids", ["1", "1,1", "1,2,3,4,5", "a,b", "1,,2", "0,1", "1,99999999999", ""]
)
def test_bad_ids_are_refused_with_a_reason(client: TestClient, ids: str) -> None:
    login = register_and_login(client)
    assert error_code(compare(client, login, ids, annual_kwh="3500"), 400) == "bad_ids"


def test_who_may_compare(client: TestClient, case: Case) -> None:
    assert error_code(compare(client, None, case.ids, annual_kwh="3500"), 401) == (
        "not_authenticated"
    )
    missing = compare(client, case.you, f"{case.sonne.id},987654")
    assert error_code(missing, 404) == "not_found"
    for bad in ({"annual_kwh": "0"}, {"annual_kwh": "-5"}, {"supplier_ct_per_kwh": "1.23456"}):
        assert error_code(compare(client, case.you, case.ids, **bad), 422) == "invalid_request"
    assert error_code(compare(client, case.you, case.ids, grid_level="9"), 422)
    # A regional EEG member at grid level 4: the rules doc has no figure, so no estimate.
    body = compare(client, case.you, case.ids, grid_level="4").json()
    assert body["communities"][0]["estimate"] is None
    assert "level 4" in body["communities"][0]["estimate_unavailable"]
