"""Creating, editing, finding and showing communities, on SQLite and PostgreSQL; every route
tried as the operator, another user, a member of another community and no one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.cloud.community_helpers import (
    API,
    LINZ,
    VIENNA,
    WELS,
    community_body,
    create_community,
    error_code,
    join,
    metering_point,
)
from tests.cloud.helpers import Login, register_and_login


@pytest.fixture
def operator(client: TestClient) -> Login:
    return register_and_login(client, display_name="Olga Operator")


@pytest.fixture
def someone(client: TestClient) -> Login:
    return register_and_login(client, display_name="Sam Someone")


@pytest.fixture
def other_member(client: TestClient) -> Login:
    """An active member of another community (run by someone else)."""
    other_operator = register_and_login(client)
    other = create_community(client, other_operator, name="Windkraft Wels", postal_codes=["4600"])
    member = register_and_login(client, display_name="Mia Member-elsewhere")
    join(client, member, other_operator, other["id"], metering_point())
    return member


def find(client: TestClient, login: Login, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/communities", params=params, headers=login.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def names(found: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in found]


# --- create ---------------------------------------------------------------------------------


def test_create_keeps_exact_decimals_and_makes_the_caller_operator(
    client: TestClient, operator: Login
) -> None:
    created = create_community(
        client,
        operator,
        consumer_price_ct_per_kwh="16.691",
        producer_price_ct_per_kwh=7.1234,
        member_fee_eur_per_year="12.5",
        plants=[
            {"source": "pv", "peak_power_kwp": "55.5"},
            {"source": "hydro", "peak_power_kwp": 0.123, "name": "Mill"},
        ],
        postal_codes=["4020", "4040", "4020"],
    )
    assert created["consumer_price_ct_per_kwh"] == "16.6910"
    assert created["producer_price_ct_per_kwh"] == "7.1234"
    assert created["member_fee_eur_per_year"] == "12.50"
    assert created["generation_kwp"] == "55.623"
    assert [p["peak_power_kwp"] for p in created["plants"]] == ["55.5", "0.123"]
    assert created["postal_codes"] == ["4020", "4040"]
    assert created["operator_id"] == operator.user_id
    assert created["you_operate"] is True
    assert created["members"] == []
    assert created["member_count"] == 0
    assert created["performance"] is None  # no readings yet: nothing to show
    assert created["kind"] == "eeg_local"
    assert created["allocation_model"] == "dynamic"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"postal_codes": ["40200"]}, "postal_codes"),
        ({"postal_codes": []}, "postal_codes"),
        ({"consumer_price_ct_per_kwh": "12.12345"}, "consumer_price_ct_per_kwh"),
        ({"producer_price_ct_per_kwh": -1}, "producer_price_ct_per_kwh"),
        ({"member_fee_eur_per_year": "1.001"}, "member_fee_eur_per_year"),
        ({"name": "Sonnen\x00strom"}, "name"),
        ({"name": ""}, "name"),
        ({"kind": "eeg"}, "kind"),
        ({"allocation_model": "fair"}, "allocation_model"),
        ({"location": {"latitude": 91, "longitude": 14}}, "location"),
        ({"plants": [{"source": "pv", "peak_power_kwp": 0}]}, "plants"),
        ({"colour": "green"}, "colour"),
    ],
)
def test_create_refuses_bad_fields_with_a_reason(
    client: TestClient, operator: Login, change: dict[str, Any], where: str
) -> None:
    response = client.post(
        f"{API}/communities", json=community_body(**change), headers=operator.headers
    )
    assert error_code(response, 422) == "invalid_request"
    assert any(where in problem["loc"] for problem in response.json()["detail"])


def test_an_eeg_takes_renewable_plants_only(client: TestClient, operator: Login) -> None:
    diesel = [{"source": "non_renewable", "peak_power_kwp": 100}]
    response = client.post(
        f"{API}/communities", json=community_body(plants=diesel), headers=operator.headers
    )
    assert error_code(response, 400) == "renewable_only"
    # A BEG may have any source (rules doc 1.1).
    beg = create_community(client, operator, kind="beg", plants=diesel)
    assert beg["plants"][0]["source"] == "non_renewable"


def test_create_needs_a_login(client: TestClient) -> None:
    response = client.post(f"{API}/communities", json=community_body())
    assert error_code(response, 401) == "not_authenticated"


# --- edit -----------------------------------------------------------------------------------


def test_the_operator_edits_and_lists_replace_whole(client: TestClient, operator: Login) -> None:
    created = create_community(client, operator)
    response = client.patch(
        f"{API}/communities/{created['id']}",
        json={
            "consumer_price_ct_per_kwh": "13",
            "open_for_members": False,
            "postal_codes": ["4030"],
            "plants": [],
            "area_id": "",
            "kind": "eeg_local",  # the current value: allowed
            "location": {"latitude": WELS[0], "longitude": WELS[1]},
        },
        headers=operator.headers,
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["consumer_price_ct_per_kwh"] == "13.0000"
    assert edited["producer_price_ct_per_kwh"] == created["producer_price_ct_per_kwh"]
    assert edited["open_for_members"] is False
    assert edited["postal_codes"] == ["4030"]
    assert edited["plants"] == []
    assert edited["generation_kwp"] == "0"
    assert edited["area_id"] is None
    assert edited["location"] == {"latitude": WELS[0], "longitude": WELS[1]}
    assert edited["name"] == created["name"]


@pytest.mark.parametrize(("field", "value"), [("allocation_model", "static"), ("kind", "beg")])
def test_kind_and_allocation_model_are_fixed(
    client: TestClient, operator: Login, field: str, value: str
) -> None:
    created = create_community(client, operator)
    response = client.patch(
        f"{API}/communities/{created['id']}", json={field: value}, headers=operator.headers
    )
    assert error_code(response, 409) == "fixed_field"
    assert field in response.json()["detail"]
    page = client.get(f"{API}/communities/{created['id']}", headers=operator.headers).json()
    assert page[field] == created[field]


def test_edit_refuses_non_renewable_plants_in_an_eeg(client: TestClient, operator: Login) -> None:
    created = create_community(client, operator)
    response = client.patch(
        f"{API}/communities/{created['id']}",
        json={"plants": [{"source": "non_renewable", "peak_power_kwp": 5}]},
        headers=operator.headers,
    )
    assert error_code(response, 400) == "renewable_only"


def test_only_the_operator_edits(
    client: TestClient, operator: Login, someone: Login, other_member: Login
) -> None:
    created = create_community(client, operator)
    url = f"{API}/communities/{created['id']}"
    for login in (someone, other_member):
        response = client.patch(url, json={"name": "Mine now"}, headers=login.headers)
        assert error_code(response, 403) == "not_operator"
    assert error_code(client.patch(url, json={"name": "Mine now"}), 401) == "not_authenticated"
    unknown = client.patch(
        f"{API}/communities/999999", json={"name": "x"}, headers=operator.headers
    )
    assert error_code(unknown, 404) == "not_found"
    assert client.get(url, headers=operator.headers).json()["name"] == created["name"]


def test_a_cookie_write_needs_the_csrf_header(client: TestClient) -> None:
    login = register_and_login(client, keep_cookie=True)
    refused = client.post(f"{API}/communities", json=community_body())
    assert error_code(refused, 403) == "forbidden"
    accepted = client.post(
        f"{API}/communities", json=community_body(), headers={"X-CSRF-Token": login.csrf_token}
    )
    assert accepted.status_code == 201, accepted.text


# --- the page -------------------------------------------------------------------------------


def test_the_page_shows_members_to_the_operator_only(
    client: TestClient, operator: Login, someone: Login, other_member: Login
) -> None:
    created = create_community(client, operator)
    member = register_and_login(client, display_name="Max Member")
    point = metering_point()
    join(client, member, operator, created["id"], point, tf=40)
    url = f"{API}/communities/{created['id']}"

    as_operator = client.get(url, headers=operator.headers).json()
    assert as_operator["member_count"] == 1
    (listed,) = as_operator["members"]
    assert (listed["display_name"], listed["metering_point"]) == ("Max Member", point)
    assert listed["participation_factor"] == 40
    assert listed["status"] == "active"

    for login in (someone, other_member, member):
        page = client.get(url, headers=login.headers).json()
        assert page["members"] is None
        assert page["you_operate"] is False
        assert page["member_count"] == 1
        assert page["statutes"] == created["statutes"]
    assert error_code(client.get(url), 401) == "not_authenticated"
    assert error_code(client.get(f"{API}/communities/424242", headers=someone.headers), 404)


# --- the finder -----------------------------------------------------------------------------


@pytest.fixture
def landscape(client: TestClient, operator: Login) -> dict[str, int]:
    """Communities around Linz, in Wels and Vienna, of every kind."""
    made = {
        "linz_local": create_community(
            client, operator, name="Linz local", postal_codes=["4020", "4040"]
        ),
        "linz_regional": create_community(
            client,
            operator,
            name="Linz regional",
            kind="eeg_regional",
            area_id="UW-Linz-Mitte",
            postal_codes=["4020", "4030", "4040"],
            location={"latitude": LINZ[0] + 0.05, "longitude": LINZ[1]},
        ),
        "linz_gea_closed": create_community(
            client,
            operator,
            name="Linz house GEA",
            kind="gea",
            area_id="",
            postal_codes=["4020"],
            open_for_members=False,
        ),
        "wels": create_community(
            client,
            operator,
            name="Wels local",
            postal_codes=["4600"],
            location={"latitude": WELS[0], "longitude": WELS[1]},
        ),
        "vienna_beg": create_community(
            client,
            operator,
            name="Citizens of Austria",
            kind="beg",
            area_id="",
            postal_codes=["1010"],
            location={"latitude": VIENNA[0], "longitude": VIENNA[1]},
        ),
    }
    return {key: value["id"] for key, value in made.items()}


def test_a_postal_code_finds_its_area_and_every_beg(
    client: TestClient, someone: Login, landscape: dict[str, int]
) -> None:
    found = find(client, someone, near="4020")
    assert names(found) == [
        "Linz local",
        "Linz regional",
        "Linz house GEA",
        "Citizens of Austria",
    ]
    assert [c["match"] for c in found] == ["postal_code"] * 3 + ["nationwide"]
    assert all(c["distance_km"] is None for c in found)
    assert names(find(client, someone, near="4600")) == ["Wels local", "Citizens of Austria"]
    assert names(find(client, someone, near="9020")) == ["Citizens of Austria"]


def test_coordinates_find_communities_within_the_radius_nearest_first(
    client: TestClient, someone: Login, landscape: dict[str, int]
) -> None:
    near = f"{LINZ[0]},{LINZ[1]}"
    found = find(client, someone, near=near, radius_km=10)
    assert names(found) == ["Linz local", "Linz house GEA", "Linz regional", "Citizens of Austria"]
    assert found[0]["distance_km"] == 0.0
    assert found[2]["distance_km"] == pytest.approx(5.56, abs=0.05)
    assert found[-1]["match"] == "nationwide"  # a BEG is joinable however far
    assert found[-1]["distance_km"] == pytest.approx(154.9, abs=1.0)
    wider = find(client, someone, near=near, radius_km=30)
    assert "Wels local" in names(wider)
    assert wider[names(wider).index("Wels local")]["distance_km"] == pytest.approx(25.5, abs=1)


def test_filters_kind_open_and_area_id(
    client: TestClient, someone: Login, landscape: dict[str, int]
) -> None:
    assert names(find(client, someone, near="4020", kind="eeg_regional")) == ["Linz regional"]
    assert names(find(client, someone, near="4020", kind=["gea", "beg"])) == [
        "Linz house GEA",
        "Citizens of Austria",
    ]
    assert "Linz house GEA" not in names(find(client, someone, near="4020", open="true"))
    assert names(find(client, someone, near="4020", open="false")) == ["Linz house GEA"]
    # The area id narrows EEGs to the one the metering point is in; GEAs and BEGs stay.
    assert names(find(client, someone, near="4020", area_id="uw-linz-mitte")) == [
        "Linz regional",
        "Linz house GEA",
        "Citizens of Austria",
    ]
    everything = find(client, someone)
    assert len(everything) == 5
    assert {c["match"] for c in everything} == {"any"}
    assert names(find(client, someone, limit=2, offset=1)) == names(everything)[1:3]


def test_results_carry_price_members_and_generation(
    client: TestClient, operator: Login, someone: Login, landscape: dict[str, int]
) -> None:
    member = register_and_login(client)
    # One household with a consumption and a generation point counts once.
    join(client, member, operator, landscape["linz_local"], metering_point(), tf=50)
    join(client, member, operator, landscape["linz_local"], metering_point(), role="producer")
    (local,) = [c for c in find(client, someone, near="4040") if c["name"] == "Linz local"]
    assert local["member_count"] == 1
    assert local["consumer_price_ct_per_kwh"] == "12.5000"
    assert local["producer_price_ct_per_kwh"] == "9.2500"
    assert local["member_fee_eur_per_year"] == "12.00"
    assert local["generation_kwp"] == "55.5"
    assert local["open_for_members"] is True
    assert local["performance"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"near": "40"},
        {"near": "Linz"},
        {"near": "48.3,200"},
        {"near": "4020", "radius_km": 0},
        {"near": "4020", "radius_km": 5000},
        {"kind": "eeg"},
        {"open": "maybe"},
        {"limit": 0},
    ],
)
def test_finder_refuses_bad_parameters_with_a_reason(
    client: TestClient, someone: Login, params: dict[str, Any]
) -> None:
    response = client.get(f"{API}/communities", params=params, headers=someone.headers)
    assert error_code(response, 422) == "invalid_request"


def test_finder_needs_a_login(client: TestClient) -> None:
    assert error_code(client.get(f"{API}/communities", params={"near": "4020"}), 401)
