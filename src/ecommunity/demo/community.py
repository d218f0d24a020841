"""The demo's energy communities, set up through the public API as an operator and members would.

A local EEG in the simulated street with every household as a member (the community's PV plant
as its producer), and a regional one nearby with a hydro plant and no members yet, so that the
finder and the comparison have something to compare. Idempotent: a demo started again with the
same data directory finds what it made before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from ecommunity.demo.neighbourhood import Household

LOCAL_NAME: Final = "Sonnenstrom Lindenweg"
REGIONAL_NAME: Final = "Bürgerkraftwerk Traun"
POSTAL_CODE: Final = "4020"
_VIENNA: Final = ZoneInfo("Europe/Vienna")
_STATUTES: Final = (
    "§ 1 The association produces, stores and shares renewable energy among its members. "
    "§ 2 Members pay the internal price per kWh received; producers are paid the producer price "
    "per kWh shared. § 3 Membership can be ended at the end of any day."
)

Headers = dict[str, str]


class DemoCommunityError(Exception):
    """The cloud refused a step of the community setup."""


def set_up_community(
    api: httpx.Client,
    operator: Headers,
    members: list[tuple[Household, Headers]],
    plant: Household,
) -> str:
    """Create (or find) the communities, apply as every member, approve and activate today.

    Returns a one-line summary for the demo's output.

    Raises:
        DemoCommunityError: a request was refused.
    """
    local = _find_or_create(api, operator, _local_community(plant))
    _find_or_create(api, operator, _regional_community())
    for person, headers in [*members, (plant, operator)]:
        own = _ok(api.get("/api/v1/memberships", headers=headers), "list memberships")
        if any(item["community_id"] == local for item in own):
            continue
        _ok(
            api.post(
                f"/api/v1/communities/{local}/applications",
                json={
                    "metering_point": person.metering_point,
                    "participation_factor": 100,
                    "role": "producer" if person.plant else "consumer",
                    "accept_statutes": True,
                },
                headers=headers,
            ),
            f"apply as {person.email}",
        )
    today = datetime.now(_VIENNA).date().isoformat()
    memberships = _ok(
        api.get(f"/api/v1/communities/{local}/memberships", headers=operator), "list members"
    )
    active = 0
    for membership in memberships:
        path = f"/api/v1/communities/{local}/memberships/{membership['id']}"
        if membership["status"] == "applied":
            membership = _ok(api.post(path + "/approve", headers=operator), "approve")
        if membership["status"] == "approved":
            membership = _ok(
                api.post(path + "/activate", json={"active_on": today}, headers=operator),
                "activate",
            )
        active += membership["status"] == "active"
    return f"community {LOCAL_NAME!r}: {active} members (and {REGIONAL_NAME!r} nearby)"


def _find_or_create(api: httpx.Client, operator: Headers, spec: dict[str, Any]) -> int:
    found = _ok(
        api.get("/api/v1/communities", params={"near": POSTAL_CODE}, headers=operator),
        "find communities",
    )
    for community in found:
        if community["name"] == spec["name"]:
            return int(community["id"])
    created = _ok(api.post("/api/v1/communities", json=spec, headers=operator), "create")
    return int(created["id"])


def _local_community(plant: Household) -> dict[str, Any]:
    return {
        "name": LOCAL_NAME,
        "description": "Neighbours in the Lindenweg share the power of the PV plant on the "
        "gym roof and their own rooftops (simulated for the demo).",
        "kind": "eeg_local",
        "allocation_model": "dynamic",
        "grid_operator": "Netz Oberösterreich GmbH",
        "municipality": "Linz",
        "area_id": "NOOE-UW-LINZ-SUED-07",
        "postal_codes": [POSTAL_CODE],
        "consumer_price_ct_per_kwh": "11.5",
        "producer_price_ct_per_kwh": "9.0",
        "member_fee_eur_per_year": "24",
        "plants": [{"source": "pv", "peak_power_kwp": str(plant.pv_kwp), "name": "Gym roof"}],
        "open_for_members": True,
        "statutes": _STATUTES,
        "location": {"latitude": 48.2781, "longitude": 14.3050},
    }


def _regional_community() -> dict[str, Any]:
    return {
        "name": REGIONAL_NAME,
        "description": "A run-of-river plant on the Traun shared across the substation area "
        "(simulated for the demo; no members yet).",
        "kind": "eeg_regional",
        "allocation_model": "static",
        "grid_operator": "Netz Oberösterreich GmbH",
        "municipality": "Traun",
        "area_id": "NOOE-UW-TRAUN-02",
        "postal_codes": [POSTAL_CODE, "4050", "4052"],
        "consumer_price_ct_per_kwh": "13.0",
        "producer_price_ct_per_kwh": "10.5",
        "member_fee_eur_per_year": "12",
        "plants": [{"source": "hydro", "peak_power_kwp": "250", "name": "Traun weir"}],
        "open_for_members": True,
        "statutes": _STATUTES,
        "location": {"latitude": 48.2220, "longitude": 14.2400},
    }


def _ok(answer: httpx.Response, what: str) -> Any:
    if not answer.is_success:
        raise DemoCommunityError(f"{what}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer.json()
