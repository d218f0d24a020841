"""The community screens in real headless Chromium against a real ``ecommunity cloud serve``:
finding communities near an address (list, map, filters), a community's page, applying with a
metering point (refusals with their reasons), the operator approving and activating in a second
browser context, the application's state and the notifications on the member's side, the
operator's members with participation factors and static keys, creating and editing a community,
and account settings. Every number on screen is compared with the API's answer.

One cloud for the module; each test makes the communities and accounts it needs through the API
(the finder's communities once, for all).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser import DESKTOP, PHONE, Screenshots, open_page, page_log
from tests.e2e.processes import PASSWORD, Cloud
from tests.web.ui import (
    ct_per_kwh,
    euro,
    km,
    kwp,
    log_in,
    no_horizontal_scroll,
    percent,
    share,
    unlabelled_fields,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

VIENNA = ZoneInfo("Europe/Vienna")
LINZ = {"latitude": 48.3059, "longitude": 14.2862}
WELS = {"latitude": 48.1575, "longitude": 14.0289}  # ~25 km from Linz
URFAHR = {"latitude": 48.3155, "longitude": 14.2840}
GRAZ = {"latitude": 47.0707, "longitude": 15.4395}
_numbers = itertools.count(1)


def metering_point(number: int | None = None) -> str:
    return f"AT003000{next(_numbers) if number is None else number:025d}"


def community_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Sonnenstrom Linz",
        "description": "PV on the school roof, shared with the neighbourhood.",
        "kind": "eeg_local",
        "allocation_model": "dynamic",
        "grid_operator": "Netz Oberösterreich",
        "municipality": "Linz",
        "area_id": "T-4020-117",
        "postal_codes": ["4020"],
        "consumer_price_ct_per_kwh": "12.5",
        "producer_price_ct_per_kwh": "9.25",
        "member_fee_eur_per_year": "12",
        "plants": [{"source": "pv", "peak_power_kwp": "55.5", "name": "School roof"}],
        "open_for_members": True,
        "statutes": "§ 1 The association shares renewable energy among its members.\n§ 2 Fees.",
        "location": LINZ,
    }
    return body | overrides


@dataclass
class World:
    cloud: Cloud
    operator: httpx.Client
    operator_email: str
    #: The finder's communities by name: their ids.
    found: dict[str, int]

    def user(self, prefix: str) -> tuple[httpx.Client, str]:
        email = f"{prefix}{next(_numbers)}@example.org"
        return self.cloud.user(email), email

    def create(self, **overrides: Any) -> dict[str, Any]:
        created = self.operator.post("/api/v1/communities", json=community_body(**overrides))
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        return body

    def join(self, member: httpx.Client, community_id: int, point: str, **extra: Any) -> int:
        """Apply, approve and activate today: the membership's id."""
        applied = member.post(
            f"/api/v1/communities/{community_id}/applications",
            json={"metering_point": point, "participation_factor": 100, "accept_statutes": True}
            | extra,
        )
        assert applied.status_code == 201, applied.text
        membership_id: int = applied.json()["id"]
        path = f"/api/v1/communities/{community_id}/memberships/{membership_id}"
        assert self.operator.post(path + "/approve").status_code == 200
        today = datetime.now(VIENNA).date().isoformat()
        activated = self.operator.post(path + "/activate", json={"active_on": today})
        assert activated.status_code == 200, activated.text
        return membership_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    cloud = Cloud.embedded(tmp_path_factory.mktemp("web-communities"))
    clients: list[httpx.Client] = []
    try:
        cloud.start_and_wait()
        operator = cloud.user("olga@example.org")
        clients.append(operator)
        world = World(cloud, operator, "olga@example.org", {})
        for body in (
            community_body(),
            community_body(
                name="Wels Sonnenkraft",
                kind="eeg_regional",
                allocation_model="static",
                postal_codes=["4600", "4020"],
                location=WELS,
                consumer_price_ct_per_kwh="11.2345",
                member_fee_eur_per_year="0",
                plants=[
                    {"source": "pv", "peak_power_kwp": "120.25", "name": "Hall"},
                    {"source": "hydro", "peak_power_kwp": "30", "name": "Mill"},
                ],
            ),
            community_body(
                name="Bürgerstrom Österreich",
                kind="beg",
                postal_codes=["1010"],
                location={"latitude": 48.2085, "longitude": 16.3721},
                plants=[{"source": "wind", "peak_power_kwp": "2000", "name": "Park"}],
            ),
            community_body(
                name="Urfahr Nachbarschaft",
                kind="gea",
                postal_codes=["4040"],
                location=URFAHR,
                open_for_members=False,
            ),
        ):
            world.found[body["name"]] = world.create(**body)["id"]
        yield world
    finally:
        for client in clients:
            client.close()
        if cloud.alive():
            cloud.stop()


def shot(screenshots: Screenshots, page: Page, name: str) -> None:
    """A main screen: every field labelled, saved as a test artifact."""
    assert unlabelled_fields(page) == []
    screenshots.save(page, name)


def clean(page: Page, world: World) -> None:
    """Nothing loaded from elsewhere, no script errors."""
    log = page_log(page)
    assert log.foreign(world.cloud.url) == []
    assert log.errors == []


def found_cards(page: Page) -> list[str]:
    return page.locator("#community-list > li h3").all_text_contents()


def check_card(page: Page, community: dict[str, Any]) -> None:
    """A finder card shows the API's figures of ``community``."""
    from playwright.sync_api import expect

    prefix = f"#c{community['id']}"
    expect(page.locator(f"{prefix}-consumer-price")).to_have_text(
        ct_per_kwh(community["consumer_price_ct_per_kwh"])
    )
    expect(page.locator(f"{prefix}-producer-price")).to_have_text(
        ct_per_kwh(community["producer_price_ct_per_kwh"])
    )
    expect(page.locator(f"{prefix}-member-fee")).to_have_text(
        f"{euro(community['member_fee_eur_per_year'])} a year"
    )
    expect(page.locator(f"{prefix}-members")).to_have_text(str(community["member_count"]))
    expect(page.locator(f"{prefix}-generation")).to_contain_text(kwp(community["generation_kwp"]))
    if community["performance"] is None:
        expect(page.locator(f"{prefix}-performance")).to_have_text("No data yet")


# --- finding --------------------------------------------------------------------------------


def test_find_communities_near_an_address(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    member, email = world.user("finder")
    member.close()
    log_in(page, world.cloud.url, email)
    page.get_by_role("navigation").get_by_role("link", name="Communities").click()
    expect(page.get_by_role("heading", name="Find a community")).to_be_visible()

    # By postal code: the API's answer, in its order, with its figures.
    page.get_by_label("Your address: postal code or coordinates").fill("4020")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/communities\?near=4020$"))
    answer = world.operator.get(
        "/api/v1/communities", params={"near": "4020", "open": "true", "limit": 200}
    ).json()
    names = [c["name"] for c in answer]
    assert {"Sonnenstrom Linz", "Wels Sonnenkraft", "Bürgerstrom Österreich"} <= set(names)
    assert "Urfahr Nachbarschaft" not in names  # closed: not by default
    expect(page.locator("#find-summary")).to_have_text(f"{len(answer)} communities found.")
    assert found_cards(page) == names
    for community in answer:
        check_card(page, community)
    wels = next(c for c in answer if c["name"] == "Wels Sonnenkraft")
    card = page.locator(f"#community-list > li[data-community-id='{wels['id']}']")
    expect(card.locator(".match")).to_have_text(
        "Lists your postal code (the grid operator confirms)"
    )
    expect(page.locator(f"#c{wels['id']}-generation")).to_contain_text(
        "PV 120.25 kWp, Hydro 30 kWp"
    )
    # The map has a marker per result, numbered as the list.
    assert page.locator("svg.map a.map-marker").count() == len(answer)
    shot(screenshots, page, "web-communities-find-desktop")

    # By coordinates within 10 km: Wels (25 km off) drops out, the BEG stays (nationwide).
    page.get_by_label("Your address: postal code or coordinates").fill("48.3059,14.2862")
    page.get_by_label("Radius (km)").fill("10")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"near=48\.3059%2C14\.2862&radius_km=10"))
    answer = world.operator.get(
        "/api/v1/communities",
        params={"near": "48.3059,14.2862", "radius_km": 10, "open": "true", "limit": 200},
    ).json()
    expect(page.locator("#find-summary")).to_have_text(f"{len(answer)} communities found.")
    assert found_cards(page) == [c["name"] for c in answer]
    assert "Wels Sonnenkraft" not in found_cards(page)
    for community in answer:
        assert community["distance_km"] is not None
        card = page.locator(f"#community-list > li[data-community-id='{community['id']}']")
        expect(card.locator(".match")).to_contain_text(km(community["distance_km"]))
    expect(page.locator("svg.map .map-you")).to_have_count(1)

    # Filters: kinds, and closed ones too.
    page.get_by_label("Citizens' energy community (BEG)").check()
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"kind=beg"))
    expect(page.locator("#community-list > li")).to_have_count(1)
    expect(page.locator("#community-list h3")).to_have_text("Bürgerstrom Österreich")
    page.get_by_label("Citizens' energy community (BEG)").uncheck()
    page.get_by_label("Shared generation plant (GEA)").check()
    page.get_by_label("New members").select_option("any")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#community-list h3")).to_have_text(["Urfahr Nachbarschaft"])
    closed = page.locator("#community-list > li").first
    expect(closed.locator(".badge")).to_have_text("Not taking new members")

    # A bad address is refused with the API's reason.
    page.get_by_label("Shared generation plant (GEA)").uncheck()
    page.get_by_label("Your address: postal code or coordinates").fill("Linz Hauptplatz")
    page.get_by_role("button", name="Search").click()
    alert = page.locator("#find-error")
    expect(alert).to_contain_text("Please check your entries.")
    expect(alert).to_contain_text("The server says: near:")

    # A marker leads to the community's page.
    page.get_by_label("Your address: postal code or coordinates").fill("4020")
    page.get_by_role("button", name="Search").click()
    page.locator(f"svg.map a[data-community-id='{wels['id']}']").click()
    expect(page).to_have_url(re.compile(rf"/communities/{wels['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Wels Sonnenkraft")
    clean(page, world)


def test_a_communitys_page_shows_the_apis_figures(page: Page, world: World) -> None:
    from playwright.sync_api import expect

    member, email = world.user("reader")
    wels_id = world.found["Wels Sonnenkraft"]
    shown = member.get(f"/api/v1/communities/{wels_id}").json()
    member.close()
    log_in(page, world.cloud.url, email)
    page.goto(f"{world.cloud.url}/communities/{wels_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Wels Sonnenkraft")
    expect(page.locator("#page-consumer-price")).to_have_text(ct_per_kwh("11.2345"))
    expect(page.locator("#page-consumer-price")).to_have_text(
        ct_per_kwh(shown["consumer_price_ct_per_kwh"])
    )
    expect(page.locator("#page-member-fee")).to_have_text("€0.00 a year")
    expect(page.locator("#page-generation")).to_contain_text(kwp(shown["generation_kwp"]))
    rows = page.locator("#plants tbody tr")
    expect(rows).to_have_count(len(shown["plants"]))
    for row, plant in zip(rows.all(), shown["plants"], strict=True):
        expect(row.locator("td").nth(2)).to_have_text(kwp(plant["peak_power_kwp"]))
    expect(page.locator("#page-performance")).to_have_text("No data yet")
    expect(page.get_by_text("static allocation").first).to_be_visible()
    page.get_by_text("Show the statutes").click()
    expect(page.locator(".statutes")).to_have_text(shown["statutes"])
    expect(page.locator("#no-application")).to_have_text("You have not applied to this community.")
    # Someone who does not operate it gets no link to run it.
    expect(page.get_by_role("link", name="Run this community")).to_have_count(0)
    clean(page, world)


def test_performance_is_shown_as_the_api_answers_it(page: Page, world: World) -> None:
    """A community whose members have 30 days of data: its figures as the API writes them
    (the shape of ``performance`` in ``GET /communities``). The running app's own module
    renders them: no member here has taken part long enough for real ones."""
    member, email = world.user("performance")
    member.close()
    log_in(page, world.cloud.url, email)
    performance = {
        "period_days": 30,
        "self_sufficiency": 0.4567,
        "production_used_share": 0.8,
        "consumption_wh": 1000,
        "production_wh": 571,
        "covered_wh": 457,
        "estimate": True,
    }
    shown: dict[str, str] = page.evaluate(
        """async (performance) => {
            const facts = await import("/static/js/views/community_facts.js");
            const node = facts.performanceNode(performance, "x");
            const value = (name) => node.querySelector(`[data-value=${name}]`).textContent;
            return {
                self: value("self_sufficiency"),
                used: value("production_used_share"),
                text: node.textContent,
                badge: node.querySelector(".badge").textContent,
            };
        }""",
        performance,
    )
    assert shown["self"] == share(0.4567) == "45.7%"
    assert shown["used"] == share(0.8) == "80.0%"
    assert "Last 30 days" in shown["text"]
    assert shown["badge"] == "estimate"
    none: str = page.evaluate(
        """async () => {
            const facts = await import("/static/js/views/community_facts.js");
            return facts.performanceNode(null, "x").textContent;
        }"""
    )
    assert none == "No data yet"


# --- joining: the member applies, the operator decides ---------------------------------------


def test_apply_and_the_operator_approves_in_another_browser(
    browser: Browser, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    community = world.create(name="Lichtenberg Sonnenstrom", postal_codes=["4040"])
    community_id = community["id"]
    member, email = world.user("applicant")
    point = metering_point()
    member_context, page = open_page(browser, DESKTOP)
    operator_context, operator_page = open_page(browser, DESKTOP)
    try:
        log_in(page, world.cloud.url, email)
        page.goto(f"{world.cloud.url}/communities?near=4040")
        page.locator("#community-list").get_by_role("link", name="Lichtenberg Sonnenstrom").click()
        expect(page).to_have_url(re.compile(rf"/communities/{community_id}$"))
        join = page.locator("#join")

        # Refusals say what is wrong, in the user's words and with the API's reason.
        join.get_by_label("Metering point number").fill("AT 0030 1234")
        join.get_by_label("I accept the community's statutes.").check()
        join.get_by_role("button", name="Apply").click()
        alert = page.locator("#join-error")
        expect(alert).to_contain_text(
            "The metering point number is AT followed by 31 letters or digits."
        )
        expect(alert).to_contain_text("The server says:")
        expect(alert).to_contain_text("(10 characters)")

        join.get_by_label("Metering point number").fill(point)
        join.get_by_label("Participation factor (%)").fill("0")
        join.get_by_role("button", name="Apply").click()
        expect(alert).to_contain_text("The participation factor is a whole percent from 1 to 100.")

        join.get_by_label("Participation factor (%)").fill("60")
        join.get_by_label("I accept the community's statutes.").uncheck()
        join.get_by_role("button", name="Apply").click()
        expect(alert).to_contain_text("Please accept the statutes to apply.")
        assert member.get("/api/v1/memberships").json() == []  # nothing applied so far

        # Spaces and lower case as people copy the number: the API normalises it.
        spaced = " ".join([point[:2].lower(), point[2:10], point[10:]])
        join.get_by_label("Metering point number").fill(spaced)
        join.get_by_label("I accept the community's statutes.").check()
        join.get_by_role("button", name="Apply").click()
        expect(page.locator("#join-done")).to_contain_text(f"Application for {point} sent")
        (applied,) = member.get("/api/v1/memberships").json()
        assert (applied["metering_point"], applied["status"], applied["participation_factor"]) == (
            point,
            "applied",
            60,
        )
        mine = page.locator(f"#own-memberships li[data-membership-id='{applied['id']}']")
        expect(mine.locator(".badge")).to_have_text("Applied")
        expect(mine).to_contain_text("Waiting for the operator's decision.")
        expect(mine).to_contain_text(percent(60))
        shot(screenshots, page, "web-community-applied-desktop")

        # Applying with the same point again: the rule, and the API's reason.
        join.get_by_label("Metering point number").fill(point)
        join.get_by_label("I accept the community's statutes.").check()
        join.get_by_role("button", name="Apply").click()
        expect(alert).to_contain_text(
            "This metering point has already applied to or is in this community."
        )

        # The operator, in a browser of their own: the application waits.
        log_in(operator_page, world.cloud.url, world.operator_email)
        operator_page.get_by_role("navigation").get_by_role("link", name="Operate").click()
        operated = {c["id"]: c for c in world.operator.get("/api/v1/me/communities").json()}
        assert operated[community_id]["applied"] == 1
        expect(operator_page.locator(f"#operated-{community_id}-applied")).to_have_text("1")
        operator_page.locator("#operated-list").get_by_role(
            "link", name="Lichtenberg Sonnenstrom"
        ).click()
        expect(operator_page).to_have_url(re.compile(rf"/operate/{community_id}$"))
        application = operator_page.locator(
            f"#applications li[data-membership-id='{applied['id']}']"
        )
        expect(application).to_contain_text(email)
        expect(application).to_contain_text(point)
        expect(operator_page.locator("#count-applied")).to_have_text("(1)")
        shot(screenshots, operator_page, "web-operate-applications-desktop")
        application.get_by_role("button", name="Approve").click()
        expect(operator_page.locator("#members-done")).to_contain_text("application is approved")
        approved = operator_page.locator(f"#approved li[data-membership-id='{applied['id']}']")
        expect(approved.locator(".badge")).to_have_text("Approved")

        # The member's page follows by itself, and a notification says so.
        expect(mine.locator(".badge")).to_have_text("Approved", timeout=20_000)
        page.goto(f"{world.cloud.url}/notifications")
        notes = member.get("/api/v1/notifications").json()
        unread = [n for n in notes if n["read_at"] is None]
        expect(page.locator("#unread-count")).to_have_text(str(len(unread)))
        assert [n["kind"] for n in notes][:2] == ["membership_approved", "membership_applied"]
        first = page.locator("#notification-list > li").first
        expect(first.get_by_role("heading")).to_have_text("Application approved")
        expect(first.locator(".notification-message")).to_have_text(notes[0]["message"])

        # The operator activates it from today.
        today = datetime.now(VIENNA).date()
        approved.get_by_label("Takes part from (day)").fill(today.isoformat())
        approved.get_by_role("button", name="Activate").click()
        active = operator_page.locator(f"#members li[data-membership-id='{applied['id']}']")
        expect(active.locator(".badge")).to_have_text("Active")
        expect(active.locator("[data-value=tf]")).to_have_text(percent(60))
        (state,) = member.get("/api/v1/memberships").json()
        assert state["status"] == "active"
        assert datetime.fromisoformat(state["active_from"]).astimezone(VIENNA).date() == today

        # The member marks the notifications read; the count goes with the API's.
        page.reload()
        expect(page.locator("#notification-list > li")).to_have_count(3)
        expect(page.locator("#notification-list > li").first.get_by_role("heading")).to_have_text(
            "Membership active"
        )
        shot(screenshots, page, "web-notifications-desktop")
        newest = page.locator("#notification-list > li").first
        newest.get_by_role("button", name="Mark read").click()
        expect(newest.get_by_role("button", name="Mark read")).to_have_count(0)
        unread = member.get("/api/v1/notifications", params={"unread": "true"}).json()
        assert len(unread) == 2
        expect(page.locator("#unread-count")).to_have_text("2")
        page.get_by_role("button", name="Mark all read").click()
        expect(page.locator("#unread-count")).to_be_hidden()
        assert member.get("/api/v1/notifications", params={"unread": "true"}).json() == []

        # My community lists it as active; leaving asks first.
        page.get_by_role("navigation").get_by_role("link", name="My community").click()
        item = page.locator(f"#my-memberships li[data-membership-id='{applied['id']}']")
        expect(item.locator(".badge")).to_have_text("Active")
        expect(item).to_contain_text("Lichtenberg Sonnenstrom")
        item.get_by_role("button", name="Leave").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("takes part until midnight tonight")
        dialog.get_by_role("button", name="Cancel").click()
        assert member.get("/api/v1/memberships").json()[0]["status"] == "active"
        item.get_by_role("button", name="Leave").click()
        dialog.get_by_role("button", name="Yes, leave").click()
        expect(item.locator(".badge")).to_have_text("Left")
        (left,) = member.get("/api/v1/memberships").json()
        assert left["status"] == "left"
        until = datetime.fromisoformat(left["active_until"]).astimezone(VIENNA)
        assert (until.date(), until.hour) == (today + timedelta(days=1), 0)
        expect(item).to_contain_text(f"Takes part until{until.day} {until.strftime('%B %Y')}")
        expect(item).to_contain_text("No longer taking part. Your history stays.")
        expect(item.get_by_role("button")).to_have_count(0)
        clean(page, world)
        clean(operator_page, world)
    finally:
        member.close()
        member_context.close()
        operator_context.close()


def test_the_operator_rejects_with_a_reason_the_applicant_sees(
    browser: Browser, world: World
) -> None:
    from playwright.sync_api import expect

    community = world.create(name="Pöstlingberg Strom")
    member, email = world.user("rejected")
    point = metering_point()
    applied = member.post(
        f"/api/v1/communities/{community['id']}/applications",
        json={"metering_point": point, "participation_factor": 100, "accept_statutes": True},
    ).json()
    operator_context, operator_page = open_page(browser, DESKTOP)
    member_context, page = open_page(browser, DESKTOP)
    try:
        log_in(operator_page, world.cloud.url, world.operator_email)
        operator_page.goto(f"{world.cloud.url}/operate/{community['id']}")
        item = operator_page.locator(f"#applications li[data-membership-id='{applied['id']}']")
        item.get_by_role("button", name="Reject").click()
        dialog = operator_page.get_by_role("dialog")
        expect(dialog).to_contain_text(point)
        # Escape cancels: nothing happens.
        operator_page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert member.get("/api/v1/memberships").json()[0]["status"] == "applied"
        item.get_by_role("button", name="Reject").click()
        dialog.get_by_label("Reason (the applicant sees it)").fill("Outside our transformer area.")
        dialog.get_by_role("button", name="Reject").click()
        former = operator_page.locator(f"#former li[data-membership-id='{applied['id']}']")
        expect(former).to_have_attribute("data-status", "rejected")

        log_in(page, world.cloud.url, email)
        page.goto(f"{world.cloud.url}/communities/{community['id']}")
        mine = page.locator(f"#own-memberships li[data-membership-id='{applied['id']}']")
        expect(mine.locator(".badge")).to_have_text("Rejected")
        expect(mine).to_contain_text("Outside our transformer area.")
        expect(mine.get_by_role("button")).to_have_count(0)
        clean(page, world)
    finally:
        member.close()
        operator_context.close()
        member_context.close()


# --- the operator's members: participation factors and static keys ---------------------------


def test_factors_and_static_keys_with_the_rules_reasons(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    community = world.create(
        name="Kleinmünchen Statisch", allocation_model="static", postal_codes=["4030"]
    )
    members = [world.user("static") for _ in range(2)]
    ids = [world.join(client, community["id"], metering_point()) for client, _ in members]
    log_in(page, world.cloud.url, world.operator_email)
    page.goto(f"{world.cloud.url}/operate/{community['id']}")
    first = page.locator(f"#members li[data-membership-id='{ids[0]}']")
    second = page.locator(f"#members li[data-membership-id='{ids[1]}']")
    expect(page.locator("#count-active")).to_have_text("(2)")

    first.get_by_label("Static key (0 to 1)").fill("0,6")  # a German decimal comma works too
    first.get_by_role("button", name="Change").click()
    expect(page.locator("#members-done")).to_contain_text("Saved for")
    expect(first.locator("[data-value=static_key]")).to_have_text("0.6")
    listed = world.operator.get(f"/api/v1/communities/{community['id']}/memberships").json()
    assert {m["id"]: m["static_key"] for m in listed}[ids[0]] == "0.6"

    # Keys beyond 1 in all: refused, with the rule and the API's reason.
    second.get_by_label("Static key (0 to 1)").fill("0.5")
    second.get_by_role("button", name="Change").click()
    alert = page.locator("#members-error")
    expect(alert).to_contain_text("Static keys apply to consumers in static communities")
    expect(alert).to_contain_text("The server says:")
    expect(second.locator("[data-value=static_key]")).to_have_text("–")

    # A factor change of an active membership: received 09:00-17:00 Vienna time, from tomorrow,
    # once a day. What happens depends on when the test runs; the screen must say either way.
    def membership() -> dict[str, Any]:
        listed = world.operator.get(f"/api/v1/communities/{community['id']}/memberships")
        found: dict[str, Any] = next(m for m in listed.json() if m["id"] == ids[0])
        return found

    first.get_by_label("Participation factor (%)").fill("70")
    with page.expect_response(lambda r: r.request.method == "PATCH"):
        first.get_by_role("button", name="Change").click()
    rule = (
        "A participation factor changes once a day per community, received between 09:00 and "
        "17:00 Austrian time, from the next day on."
    )
    if membership()["pending_participation_factor"] == 70:
        # Within the window: from tomorrow; a second change today is refused.
        tomorrow = (datetime.now(VIENNA) + timedelta(days=1)).date()
        expect(first.locator("[data-value=tf]")).to_have_text(
            f"100%, then 70% from {tomorrow.day} {tomorrow.strftime('%B %Y')}"
        )
        first.get_by_label("Participation factor (%)").fill("60")
        first.get_by_role("button", name="Change").click()
        expect(alert).to_contain_text(rule)
        assert membership()["pending_participation_factor"] == 70
    else:
        expect(alert).to_contain_text(rule)
        assert membership()["pending_participation_factor"] is None
    assert membership()["participation_factor"] == 100
    shot(screenshots, page, "web-operate-members-desktop")
    for client, _ in members:
        client.close()
    clean(page, world)


# --- creating and editing a community ---------------------------------------------------------


def test_create_and_edit_a_community(page: Page, world: World, screenshots: Screenshots) -> None:
    from playwright.sync_api import expect

    owner, email = world.user("founder")
    log_in(page, world.cloud.url, email)
    page.get_by_role("navigation").get_by_role("link", name="Operate").click()
    expect(page.get_by_text("You do not run a community yet.")).to_be_visible()
    page.get_by_role("link", name="Create a community").click()
    expect(page).to_have_url(re.compile(r"/operate/new$"))
    form = page.locator("form.community-form")
    form.get_by_label("Name", exact=True).fill("Grazer Sonnendach")
    form.get_by_label("Kind").select_option("eeg_local")
    form.get_by_label("Allocation model").select_option("static")
    form.get_by_label("Grid operator").fill("Energienetze Steiermark")
    form.get_by_label("Municipality").fill("Graz")
    form.get_by_label("Postal codes").fill("8010, 8020")
    form.get_by_label("Price for members' energy (ct/kWh, net)").fill("13,9")
    form.get_by_label("Price for producers' energy (ct/kWh, net)").fill("8.1234")
    form.get_by_label("Member fee (€ a year)").fill("24")
    form.get_by_role("button", name="Add a plant").click()
    plant = form.locator(".plant-row").first
    plant.get_by_label("Source").select_option("non_renewable")
    plant.get_by_label("Peak power (kWp)").fill("9.9")
    plant.get_by_label("Plant name").fill("Diesel")
    form.get_by_label("Latitude").fill(str(GRAZ["latitude"]))
    form.get_by_label("Longitude").fill(str(GRAZ["longitude"]))
    form.get_by_label("Statutes").fill("§ 1 Sun for Graz.")
    shot(screenshots, page, "web-operate-new-desktop")

    # An EEG takes renewable plants only: the rule and the API's reason.
    form.get_by_role("button", name="Create the community").click()
    alert = page.locator("#community-form-error")
    expect(alert).to_contain_text("A renewable energy community (EEG) takes renewable plants only.")
    assert owner.get("/api/v1/me/communities").json() == []

    plant.get_by_label("Source").select_option("pv")
    form.get_by_label("Postal codes").fill("8010, 801")
    form.get_by_role("button", name="Create the community").click()
    expect(alert).to_contain_text("Postal codes are four digits, 1010 to 9992; at least one.")

    form.get_by_label("Postal codes").fill("8010, 8020")
    form.get_by_role("button", name="Create the community").click()
    expect(page).to_have_url(re.compile(r"/operate/\d+$"))
    (created,) = owner.get("/api/v1/me/communities").json()
    shown = owner.get(f"/api/v1/communities/{created['id']}").json()
    assert (shown["kind"], shown["allocation_model"], shown["postal_codes"]) == (
        "eeg_local",
        "static",
        ["8010", "8020"],
    )
    assert (shown["consumer_price_ct_per_kwh"], shown["producer_price_ct_per_kwh"]) == (
        "13.9000",
        "8.1234",
    )
    assert shown["plants"] == [{"source": "pv", "peak_power_kwp": "9.9", "name": "Diesel"}]
    expect(page.get_by_role("heading", level=1)).to_have_text("Grazer Sonnendach")

    # Kind and allocation model are fixed: shown, not changeable.
    edit = page.locator("form.community-form")
    expect(edit.get_by_label("Kind")).to_be_disabled()
    expect(edit.get_by_label("Allocation model")).to_be_disabled()
    expect(edit.get_by_label("Kind")).to_have_value("eeg_local")
    edit.get_by_label("Name", exact=True).fill("Grazer Sonnendach II")
    edit.get_by_label("Open for new members").uncheck()
    edit.locator(".plant-row").first.get_by_label("Plant name").fill("Roof")
    edit.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-done")).to_have_text("Saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grazer Sonnendach II")
    shown = owner.get(f"/api/v1/communities/{created['id']}").json()
    assert (shown["name"], shown["open_for_members"], shown["plants"][0]["name"]) == (
        "Grazer Sonnendach II",
        False,
        "Roof",
    )
    # Its public page says it is closed; no join form.
    page.get_by_role("link", name="Public page").click()
    expect(page.locator("#join-closed")).to_have_text(
        "This community is not taking new members at present."
    )
    expect(page.get_by_role("link", name="Run this community")).to_be_visible()
    owner.close()
    clean(page, world)


# --- account settings ---------------------------------------------------------------------


def test_change_name_and_password(browser: Browser, world: World) -> None:
    from playwright.sync_api import expect

    client, email = world.user("settings")
    client.close()
    context, page = open_page(browser, DESKTOP)
    other_context, other_page = open_page(browser, DESKTOP)
    try:
        log_in(page, world.cloud.url, email)
        log_in(other_page, world.cloud.url, email)  # another device, signed in too
        page.get_by_role("navigation").get_by_role("link", name="Account").click()
        page.get_by_label("Name", exact=True).fill("Anna Maria Berger")
        page.get_by_role("button", name="Save the name").click()
        expect(page.locator("#name-done")).to_have_text("Your name is saved.")
        expect(page.locator("#account-name")).to_have_text("Anna Maria Berger")

        page.get_by_label("Current password").fill("not my password")
        page.get_by_label("New password").fill("a brand new passphrase")
        page.get_by_role("button", name="Change the password").click()
        expect(page.locator("#password-error")).to_contain_text("The current password is wrong.")
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password").fill("short")
        page.get_by_role("button", name="Change the password").click()
        expect(page.locator("#password-error")).to_contain_text(
            "The new password needs at least 10 characters."
        )
        page.get_by_label("New password").fill("a brand new passphrase")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/me/password")) as answer:
            page.get_by_role("button", name="Change the password").click()
        # The other browser and the API client that registered the account.
        assert answer.value.json() == {"revoked_sessions": 2}
        expect(page.locator("#password-done")).to_have_text(
            "Your password is changed. Other sessions signed out: 2."
        )
        # The other device is signed out at its next step; this one goes on.
        other_page.get_by_role("navigation").get_by_role("link", name="Account").click()
        other_page.reload()
        expect(other_page).to_have_url(re.compile(r"/login"))
        page.reload()
        expect(page.locator("#account-name")).to_have_text("Anna Maria Berger")
        log_in(other_page, world.cloud.url, email, "a brand new passphrase")
        clean(page, world)
    finally:
        context.close()
        other_context.close()


# --- phone and German -------------------------------------------------------------------------


def test_find_apply_and_approve_on_a_phone(
    browser: Browser, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    community = world.create(name="Ebelsberg Sonne", postal_codes=["4030"], location=LINZ)
    member, email = world.user("phone")
    point = metering_point()
    member_context, page = open_page(browser, PHONE)
    operator_context, operator_page = open_page(browser, PHONE)
    try:
        log_in(page, world.cloud.url, email)
        page.get_by_role("navigation").get_by_role("link", name="Communities").click()
        page.get_by_label("Your address: postal code or coordinates").fill("4030")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#community-list h3").first).to_be_visible()
        assert no_horizontal_scroll(page)
        shot(screenshots, page, "web-communities-find-phone")
        page.locator("#community-list").get_by_role("link", name="Ebelsberg Sonne").click()
        expect(page.locator("#page-consumer-price")).to_have_text(
            ct_per_kwh(community["consumer_price_ct_per_kwh"])
        )
        assert no_horizontal_scroll(page)
        join = page.locator("#join")
        join.get_by_label("Metering point number").fill(point)
        join.get_by_label("I accept the community's statutes.").check()
        join.get_by_role("button", name="Apply").click()
        expect(page.locator("#own-memberships .badge")).to_have_text("Applied")
        shot(screenshots, page, "web-community-phone")

        log_in(operator_page, world.cloud.url, world.operator_email)
        operator_page.goto(f"{world.cloud.url}/operate/{community['id']}")
        operator_page.locator("#applications").get_by_role("button", name="Approve").click()
        approved = operator_page.locator("#approved > li").first
        approved.get_by_role("button", name="Activate").click()
        expect(operator_page.locator("#members > li .badge")).to_have_text("Active")
        assert no_horizontal_scroll(operator_page)
        shot(screenshots, operator_page, "web-operate-phone")

        expect(page.locator("#own-memberships .badge")).to_have_text("Active", timeout=20_000)
        (state,) = member.get("/api/v1/memberships").json()
        tomorrow = (datetime.now(VIENNA) + timedelta(days=1)).date()  # the API's default
        assert datetime.fromisoformat(state["active_from"]).astimezone(VIENNA).date() == tomorrow
        expect(page.locator("#own-memberships")).to_contain_text(
            f"{tomorrow.day} {tomorrow.strftime('%B %Y')}"
        )
        page.get_by_role("navigation").get_by_role("link", name="Notifications").click()
        expect(page.locator("#notification-list > li")).to_have_count(3)
        assert no_horizontal_scroll(page)
        shot(screenshots, page, "web-notifications-phone")
        page.get_by_role("navigation").get_by_role("link", name="My community").click()
        expect(page.locator("#mine-no-active")).to_be_visible()  # taking part from tomorrow
        assert no_horizontal_scroll(page)
        clean(page, world)
        clean(operator_page, world)
    finally:
        member.close()
        member_context.close()
        operator_context.close()


def test_the_finder_and_its_refusals_in_german(browser: Browser, world: World) -> None:
    from playwright.sync_api import expect

    member, email = world.user("deutsch")
    member.close()
    context = browser.new_context(
        locale="de-AT", timezone_id="Europe/Vienna", service_workers="block", **DESKTOP
    )
    try:
        page = context.new_page()
        page.goto(world.cloud.url + "/login")
        page.get_by_label("E-Mail-Adresse").fill(email)
        page.get_by_label("Passwort").fill(PASSWORD)
        page.get_by_role("button", name="Anmelden").click()
        expect(page).to_have_url(re.compile(r"/energy$"))
        page.goto(f"{world.cloud.url}/communities?near=4020")
        expect(page.get_by_role("heading", name="Gemeinschaft finden")).to_be_visible()
        linz = world.found["Sonnenstrom Linz"]
        # Austrian decimal comma.
        expect(page.locator(f"#c{linz}-consumer-price")).to_have_text("12,50\u00a0ct/kWh")
        expect(page.locator(f"#c{linz}-performance")).to_have_text("Noch keine Daten")
        page.goto(f"{world.cloud.url}/communities/{linz}")
        join = page.locator("#join")
        join.get_by_label("Zählpunktnummer").fill("AT1")
        join.get_by_label("Ich akzeptiere die Statuten der Gemeinschaft.").check()
        join.get_by_role("button", name="Bewerben").click()
        expect(page.locator("#join-error")).to_contain_text(
            "Die Zählpunktnummer besteht aus AT und 31 Buchstaben oder Ziffern."
        )
        expect(page.locator("#join-error")).to_contain_text("Der Server meldet:")
    finally:
        context.close()
