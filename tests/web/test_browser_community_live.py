"""My community and the operator's energy screens in real headless Chromium, against real
processes: ``ecommunity cloud serve`` and ``ecommunity gateway run`` reading a fake AMIS meter on
a pty, paired with the member's account.

The meter first replays its history from 26 hours before today's Vienna midnight (a push per
quarter hour of meter time, on the quarter-hour grid, as fast as the gateway acknowledges),
then pushes once a second in real time.
The member takes part in a community with two metering points measured by that meter: its
consumption (the import counter) and its PV (the export counter), active from today. So the
community's live view, the member's figures, compare from metered history, the official data
import and the reconciliation all have real data to show, and every number on screen is
checked against the API's answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser import PHONE, Screenshots, open_page, page_log
from tests.e2e.processes import Cloud, Gateway, wait_until
from tests.gateway.fake_meter import FakeAmisMeter, Pty, open_pty
from tests.web.ui import (
    NBSP,
    ct_per_kwh,
    decimal_text,
    energy,
    euro,
    log_in,
    share,
    unlabelled_fields,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.slow

VIENNA = ZoneInfo("Europe/Vienna")
MEMBER = "maria@example.org"
OPERATOR = "otto@example.org"
#: History before today's Vienna midnight: compare estimates from a day of it at least.
HISTORY_BEFORE_TODAY = timedelta(hours=26)
HISTORY_STEP = timedelta(minutes=15)
CONSUMER_POINT = "AT0030000000000000000000000070001"
PRODUCER_POINT = "AT0030000000000000000000000070002"
LINZ = {"latitude": 48.3059, "longitude": 14.2862}


@dataclass
class World:
    cloud: Cloud
    gateway: Gateway
    member: httpx.Client
    operator: httpx.Client
    community_id: int
    other_id: int
    meter_id: int
    consumer_id: int
    producer_id: int


def community_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Sonnenstrom Live",
        "kind": "eeg_local",
        "allocation_model": "dynamic",
        "grid_operator": "Netz Oberösterreich",
        "municipality": "Linz",
        "postal_codes": ["4020"],
        "consumer_price_ct_per_kwh": "12.5",
        "producer_price_ct_per_kwh": "9.25",
        "member_fee_eur_per_year": "12",
        "plants": [{"source": "pv", "peak_power_kwp": "9.9", "name": "Roof"}],
        "open_for_members": True,
        "statutes": "§ 1 Shared sun.",
        "location": LINZ,
    }
    return body | overrides


def join(
    world_operator: httpx.Client, member: httpx.Client, community_id: int, point: str, role: str
) -> int:
    applied = member.post(
        f"/api/v1/communities/{community_id}/applications",
        json={
            "metering_point": point,
            "participation_factor": 100,
            "role": role,
            "accept_statutes": True,
        },
    )
    assert applied.status_code == 201, applied.text
    membership_id: int = applied.json()["id"]
    path = f"/api/v1/communities/{community_id}/memberships/{membership_id}"
    assert world_operator.post(path + "/approve").status_code == 200
    today = datetime.now(VIENNA).date().isoformat()
    activated = world_operator.post(path + "/activate", json={"active_on": today})
    assert activated.status_code == 200, activated.text
    return membership_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("web-community-live")
    pty: Pty = open_pty()
    cloud = Cloud.embedded(tmp_path)
    gateway = Gateway.create(tmp_path, pty.path, cloud_url=cloud.url)
    meters: list[FakeAmisMeter] = []
    clients: list[httpx.Client] = []
    try:
        cloud.start_and_wait()
        member = cloud.user(MEMBER)
        operator = cloud.user(OPERATOR)
        clients += [member, operator]
        gateway.start()
        gateway.pair(member, "Keller")
        # History on the quarter-hour grid: every quarter hour's boundary has a reading on it.
        now = datetime.now(UTC)
        grid_now = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 15)
        midnight = datetime.now(VIENNA).replace(hour=0, minute=0, second=0, microsecond=0)
        begin = midnight.astimezone(UTC) - HISTORY_BEFORE_TODAY
        pushes = (grid_now - begin) // HISTORY_STEP
        history = FakeAmisMeter(pty.master, push_interval_s=0.02, step=HISTORY_STEP, start=begin)
        meters.append(history.start())
        wait_until(lambda: len(history.acked) >= pushes - 1, 180, "the history")
        history.stop()
        first = history.next_index
        live_start = datetime.now(UTC).replace(microsecond=0) - first * timedelta(seconds=1)
        meter = FakeAmisMeter(
            pty.master, first_index=first, push_interval_s=1.0, step=timedelta(seconds=1),
            start=live_start,
        )  # fmt: skip
        meters.append(meter.start())
        gateway.wait_uploaded_through(datetime.now(UTC) - timedelta(minutes=3), 120)

        def meter_id() -> int | None:
            found = member.get("/api/v1/meters").json()
            return found[0]["id"] if found else None

        meter_number = wait_until(meter_id, 20, "the meter in the cloud")
        created = operator.post("/api/v1/communities", json=community_body())
        assert created.status_code == 201, created.text
        community_id = created.json()["id"]
        other = operator.post(
            "/api/v1/communities",
            json=community_body(
                name="Wasserkraft Traun",
                allocation_model="static",
                postal_codes=["4050", "4020"],
                consumer_price_ct_per_kwh="10.9",
                member_fee_eur_per_year="30",
                plants=[{"source": "pv", "peak_power_kwp": "150", "name": "Hall"}],
            ),
        )
        assert other.status_code == 201, other.text
        consumer_id = join(operator, member, community_id, CONSUMER_POINT, "consumer")
        producer_id = join(operator, member, community_id, PRODUCER_POINT, "producer")
        yield World(
            cloud, gateway, member, operator, community_id, other.json()["id"], meter_number,
            consumer_id, producer_id,
        )  # fmt: skip
    finally:
        for each in meters:
            each.stop()
        for client in clients:
            client.close()
        if gateway.alive():
            gateway.stop()
        if cloud.alive():
            cloud.stop()
        pty.close()


def shot(screenshots: Screenshots, page: Page, name: str) -> None:
    """A main screen: every field labelled, saved as a test artifact."""
    assert unlabelled_fields(page) == []
    screenshots.save(page, name)


def clean(page: Page, world: World) -> None:
    log = page_log(page)
    assert log.foreign(world.cloud.url) == []
    assert log.errors == []


def power(power_w: int) -> str:
    """Power as the app shows it: W below 10 kW, else kW with one decimal."""
    if abs(power_w) < 10_000:
        return f"{power_w:,}{NBSP}W"
    return f"{power_w / 1000:,.1f}{NBSP}kW"


def energy_text(energy_wh: int | None) -> str:
    """Energy as the app shows it: Wh below 1 kWh, then kWh with 2, 1 or 0 decimals."""
    if energy_wh is None or abs(energy_wh) < 100_000:
        return energy(energy_wh)
    digits = 1 if abs(energy_wh) < 1_000_000 else 0
    return f"{energy_wh / 1000:,.{digits}f}{NBSP}kWh"


def time_text(instant: str) -> str:
    """An instant as the app writes a short time, in Vienna: "10:07"."""
    return datetime.fromisoformat(instant).astimezone(VIENNA).strftime("%H:%M")


def cells(row: Locator) -> list[str]:
    return [text.strip() for text in row.locator("td").all_text_contents()]


# --- figures by day and month, and the tariff they are priced against ------------------------


def test_my_figures_by_day_and_month_equal_the_api(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    log_in(page, world.cloud.url, MEMBER)

    def figures(response: Any) -> bool:
        return "/members/me/energy?" in response.url and response.request.method == "GET"

    # The consumer's tariff, set on the screen: savings can be priced from then on.
    with page.expect_response(figures):
        page.goto(world.cloud.url + "/my-community")
    form = page.locator(f"form.tariff-form[data-membership-id='{world.consumer_id}']")
    form.get_by_label("Your supplier's energy price (ct/kWh, net)").fill("21,5")
    form.get_by_label("Grid usage fee (ct/kWh, net)").fill("6.64")
    with page.expect_response(figures) as reloaded:
        form.get_by_role("button", name="Save").click()
    expect(form.locator(".form-ok")).to_have_text("Saved: your figures use it.")
    settings = world.member.get(f"/api/v1/memberships/{world.consumer_id}/energy-settings").json()
    assert (settings["supplier_energy_ct_per_kwh"], settings["grid_usage_ct_per_kwh"]) == (
        "21.5000",
        "6.6400",
    )
    answer = reloaded.value.json()
    assert answer["resolution"] == "day"
    today = datetime.now(VIENNA).date().isoformat()
    expect(page.locator("#figures")).not_to_have_attribute("aria-busy", "true")
    for point in answer["points"]:
        (period,) = [p for p in point["periods"] if p["period"] == today]
        row = page.locator(
            f"#figures .point-figures[data-metering-point='{point['metering_point']}'] "
            f"tr[data-period='{today}']"
        )
        if point["role"] == "consumer":
            assert period["measured_wh"] > 0
            expected = [
                "estimate",
                energy_text(period["measured_wh"]),
                energy_text(period["allocated_wh"]),
                energy_text(period["covered_wh"]),
                energy_text(period["residual_wh"]),
                euro(period["community_price_eur"]),
                euro(period["savings_eur"]) if period["savings_eur"] is not None else "–",
            ]
            assert period["savings_eur"] is not None, point["pricing_note"]
        else:
            expected = [
                "estimate",
                energy_text(period["measured_wh"]),
                energy_text(period["credited_wh"]),
                energy_text(period["surplus_wh"]),
                euro(period["community_price_eur"]),
                euro(period["gain_eur"]) if period["gain_eur"] is not None else "–",
            ]
        assert period["source"] == "estimate"
        assert cells(row) == expected, (point["role"], period)
    shot(screenshots, page, "web-my-community-figures-desktop")

    # By month: this year's months, today's month estimated so far.
    with page.expect_response(figures) as monthly:
        page.locator("#figures").locator("..").get_by_role("button", name="By month").click()
    answer = monthly.value.json()
    assert answer["resolution"] == "month"
    month = today[:7]
    consumer = next(p for p in answer["points"] if p["role"] == "consumer")
    (period,) = [p for p in consumer["periods"] if p["period"] == month]
    row = page.locator(
        f"#figures .point-figures[data-metering-point='{CONSUMER_POINT}'] tr[data-period='{month}']"
    )
    expect(row.locator("td").nth(1)).to_have_text(energy_text(period["measured_wh"]))
    expect(row.locator("td").nth(3)).to_have_text(energy_text(period["covered_wh"]))
    clean(page, world)


# --- compare, with the member's metered history ----------------------------------------------


def test_compare_two_communities_with_my_metered_savings(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    log_in(page, world.cloud.url, MEMBER)
    with page.expect_response(lambda r: "/api/v1/communities?" in r.url) as found:
        page.goto(world.cloud.url + "/communities?near=4020")
    # The finder shows each community's performance of the last 30 days as the API has it:
    # none here (its members take part from today), so "no data yet".
    live = next(c for c in found.value.json() if c["id"] == world.community_id)
    assert live["performance"] is None
    expect(page.locator(f"#c{world.community_id}-performance")).to_have_text("No data yet")

    # Chosen with the keyboard: space ticks a box, enter presses the button.
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    page.get_by_label("Compare “Sonnenstrom Live”").focus()
    page.keyboard.press("Space")
    expect(compare).to_be_disabled()  # two at least
    page.get_by_label("Compare “Wasserkraft Traun”").focus()
    page.keyboard.press("Space")
    expect(compare).to_be_enabled()
    compare.focus()
    with page.expect_response(lambda r: "/api/v1/communities/compare?" in r.url) as answered:
        page.keyboard.press("Enter")
    expect(page).to_have_url(
        re.compile(rf"/communities/compare\?ids={world.community_id},{world.other_id}$")
    )
    answer = answered.value.json()
    assert answered.value.status == 200, answer
    assumptions = answer["assumptions"]
    assert assumptions["basis"] == "metered"
    expect(page.locator("#compare-basis")).to_have_text(
        "Your consumption: your own meter's history from your paired gateway."
    )
    expect(page.locator("#compare-annual")).to_have_text(
        f"{decimal_text(assumptions['annual_consumption_kwh'], 0, 0)}{NBSP}kWh"
    )
    expect(page.locator("#compare-history")).to_contain_text(
        f"{decimal_text(assumptions['history']['days'], 0, 1)} days of your meter"
    )
    expect(page.locator(".consumption-form")).to_be_hidden()  # nothing to ask
    header = page.locator("#compare-table thead th")
    expect(header).to_have_text([c["name"] for c in answer["communities"]])
    for community in answer["communities"]:
        estimate = community["estimate"]
        assert estimate is not None, community["estimate_unavailable"]

        def cell(row: str, community_id: int = community["id"]) -> Locator:
            return page.locator(
                f"#compare-table tr[data-row={row}] td[data-community-id='{community_id}']"
            )

        expect(cell("consumer-price")).to_have_text(
            ct_per_kwh(community["consumer_price_ct_per_kwh"])
        )
        expect(cell("consumption")).to_have_text(
            f"{decimal_text(estimate['consumption_kwh'], 0, 0)}{NBSP}kWh"
        )
        expect(cell("covered")).to_have_text(
            f"{decimal_text(estimate['covered_kwh'], 0, 0)}{NBSP}kWh"
        )
        expect(cell("coverage")).to_have_text(share(estimate["coverage_share"]))
        expect(cell("savings")).to_have_text(euro(estimate["savings_eur"]))
        expect(cell("member-fee")).to_have_text(euro(community["member_fee_eur_per_year"]))
        expect(cell("net-savings")).to_have_text(euro(estimate["net_savings_eur"]))
    shot(screenshots, page, "web-compare-desktop")
    clean(page, world)


def test_compare_asks_for_a_yearly_consumption_without_history(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    newcomer = world.cloud.user("newcomer@example.org")
    newcomer.close()
    log_in(page, world.cloud.url, "newcomer@example.org")
    ids = f"{world.community_id},{world.other_id}"
    page.goto(f"{world.cloud.url}/communities/compare?ids={ids}")
    expect(page.locator("#compare-error")).to_contain_text(
        "Enter your yearly consumption: no paired gateway has a day of history"
    )
    form = page.locator(".consumption-form")
    expect(form).to_be_visible()
    expect(form.get_by_label("Your yearly electricity consumption (kWh)")).to_be_focused()
    form.get_by_label("Your yearly electricity consumption (kWh)").fill("3200")
    with page.expect_response(lambda r: "/api/v1/communities/compare?" in r.url) as answered:
        form.get_by_role("button", name="Estimate my savings").click()
    expect(page).to_have_url(re.compile(r"annual_kwh=3200"))
    answer = answered.value.json()
    assert answer["assumptions"]["basis"] == "h0"
    expect(page.locator("#compare-basis")).to_contain_text("standard load profile H0")
    expect(page.locator("#compare-annual")).to_have_text(f"3,200{NBSP}kWh")
    expect(page.locator("#compare-tariff")).to_contain_text(
        ct_per_kwh(answer["assumptions"]["tariff"]["energy_ct_per_kwh"])
    )
    for community in answer["communities"]:
        net = community["estimate"]["net_savings_eur"]
        expect(
            page.locator(
                f"#compare-table tr[data-row=net-savings] td[data-community-id='{community['id']}']"
            )
        ).to_have_text(euro(net))
    # Still editable, with the form beside the answer.
    expect(form).to_be_visible()
    shot(screenshots, page, "web-compare-h0-desktop")
    clean(page, world)


# --- the live community view ---------------------------------------------------------------------


def live_tiles(page: Page) -> dict[str, str]:
    ids = ("production", "consumption", "self-sufficiency", "allocated", "price", "savings")
    texts = {name: page.locator(f"#live-{name}").text_content() or "" for name in ids}
    texts["label"] = page.locator("#live-label").text_content() or ""
    return texts


def expected_tiles(snapshot: dict[str, Any]) -> dict[str, str]:
    quarter = snapshot["quarter_hour"]
    prices = snapshot["prices"]
    return {
        "production": power(snapshot["current"]["production_w"]),
        "consumption": power(snapshot["current"]["consumption_w"]),
        "self-sufficiency": share(quarter["self_sufficiency"] if quarter else None),
        "allocated": energy_text(quarter["allocated_wh"] if quarter else None),
        "price": ct_per_kwh(prices["community_ct_per_kwh"] or prices["internal_ct_per_kwh"]),
        "savings": euro(snapshot["today"]["savings_eur"])
        if snapshot["today"]["savings_eur"] is not None
        else "–",
    }


def test_the_live_community_view_shows_the_apis_snapshot(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    log_in(page, world.cloud.url, MEMBER)
    page.get_by_role("navigation").get_by_role("link", name="My community").click()
    expect(page.locator("#mine-community-name")).to_have_text("Sonnenstrom Live")
    expect(page.locator("#live-status")).to_have_text("live", timeout=20_000)
    expect(page.locator("#live-label .badge")).to_have_text("estimate")
    assert page.locator("ul.live-tiles").get_attribute("aria-live") == "polite"

    def same_as_api() -> dict[str, Any] | None:
        answer = world.member.get(f"/api/v1/communities/{world.community_id}/live")
        assert answer.status_code == 200, answer.text
        snapshot: dict[str, Any] = answer.json()
        if snapshot["current"]["consumers_reporting"] == 0:
            return None  # the latest minute's readings are on their way
        shown = live_tiles(page)
        if f"up to {time_text(snapshot['as_of'])}" not in shown.pop("label"):
            return None  # the screen shows another minute: look again
        return snapshot if shown == expected_tiles(snapshot) else None

    # Two whole minutes of live readings first (a minute needs a reading at both its ends),
    # then the socket's next snapshot.
    snapshot = wait_until(same_as_api, 240, "the live tiles to show the API's snapshot")
    assert snapshot["estimate"] is True
    assert snapshot["members"] == 2
    # One meter measures both points: the community produces and consumes.
    assert snapshot["current"]["consumption_w"] > 0
    assert snapshot["current"]["production_w"] > 0
    expect(page.locator("#live-label")).to_contain_text(
        f"{snapshot['members_reporting']} of {snapshot['members']} members' meters reporting"
    )
    shot(screenshots, page, "web-my-community-live-desktop")

    # A new minute comes over the socket by itself, without reloading.
    shown_minute = time_text(snapshot["as_of"])
    expect(page.locator("#live-label")).not_to_contain_text(f"up to {shown_minute}", timeout=75_000)
    clean(page, world)


def test_my_energy_shows_what_the_community_covers_now(page: Page, world: World) -> None:
    from playwright.sync_api import expect

    log_in(page, world.cloud.url, MEMBER)
    tile = page.locator("#community-tile")
    expect(tile.get_by_role("link", name="Sonnenstrom Live")).to_be_visible()
    expect(tile).not_to_contain_text("Join a community")

    def same_as_api() -> bool:
        snapshot = world.member.get(f"/api/v1/communities/{world.community_id}/live").json()
        note = page.locator("#community-now").text_content() or ""
        if f"up to {time_text(snapshot['as_of'])} (estimate)" not in note:
            page.reload()  # the tile asks once a minute: ask now
            return False
        quarter = snapshot["quarter_hour"]
        expected = share(quarter["self_sufficiency"] if quarter else None)
        return page.locator("#community-share").text_content() == expected

    wait_until(same_as_api, 60, "the tile to show the community's share as the API has it")
    tile.get_by_role("link", name="Sonnenstrom Live").click()
    expect(page).to_have_url(re.compile(r"/my-community$"))
    clean(page, world)


# --- the operator: totals, official data, reconciliation ------------------------------------


def quarter_hours_today(world: World, count: int) -> list[datetime]:
    """The last ``count`` complete quarter hours of today (Vienna), UTC."""
    now = datetime.now(UTC)
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 15)
    midnight = datetime.now(VIENNA).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [end - timedelta(minutes=15 * k) for k in range(count, 0, -1)]
    starts = [start for start in starts if start >= midnight.astimezone(UTC)]
    if len(starts) < 4:
        pytest.skip("too early in the Vienna day for quarter hours of today's membership")
    return starts


def test_official_data_gaps_corrections_and_reconciliation(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import FilePayload, expect

    starts = quarter_hours_today(world, 8)
    readings = world.member.get(
        f"/api/v1/meters/{world.meter_id}/readings",
        params={
            "from": starts[0].isoformat(),
            "to": (starts[-1] + timedelta(minutes=15)).isoformat(),
            "resolution": "15min",
        },
    ).json()
    by_start = {datetime.fromisoformat(r["start"]): r for r in readings}
    lines = ["interval_start,metering_point,quantity,energy_wh"]
    for index, start in enumerate(starts):
        row = by_start[start]
        consumption = row["energy_import_wh"]
        if index == 2:
            consumption += 5_000  # the grid operator measured far more: flagged
        lines.append(f"{start.isoformat()},{CONSUMER_POINT},G.01,{consumption}")
        if index != 5:  # a quarter hour of the PV missing: a gap
            lines.append(f"{start.isoformat()},{PRODUCER_POINT},G.01,{row['energy_export_wh']}")
    delivery = "\n".join(lines) + "\n"

    log_in(page, world.cloud.url, OPERATOR)
    page.goto(f"{world.cloud.url}/operate/{world.community_id}")
    official = page.locator("section[aria-labelledby=official-title]")
    expect(official.locator("#official-imports")).to_contain_text("Nothing imported yet.")

    # A file with a wrong column is refused whole, each problem with its line.
    official.get_by_label("CSV file from the grid operator").set_input_files(
        files=[
            FilePayload(name="bad.csv", mimeType="text/csv", buffer=b"start,point,what\n1,2,3\n")
        ]
    )
    with page.expect_response(lambda r: r.url.endswith("/official-energy")) as refused:
        official.get_by_role("button", name="Upload").click()
    body = refused.value.json()
    assert refused.value.status == 400
    expect(official.locator("#official-error")).to_contain_text(
        "The file was refused as a whole; nothing was imported."
    )
    expect(official.locator("#import-problems")).to_contain_text(
        f"Nothing was imported: {body['problem_count']} problems."
    )
    for problem in body["problems"]:
        expect(official.locator("#import-problems")).to_contain_text(
            f"Line {problem['line']}: {problem['reason']}"
        )

    official.get_by_label("CSV file from the grid operator").set_input_files(
        files=[FilePayload(name="delivery.csv", mimeType="text/csv", buffer=delivery.encode())]
    )
    with page.expect_response(lambda r: r.url.endswith("/official-energy")) as imported:
        official.get_by_role("button", name="Upload").click()
    report = imported.value.json()
    assert imported.value.status == 201, report
    assert (report["rows"], report["missing_values"]) == (15, 1)
    expect(official.locator("#official-done")).to_have_text("Imported: 15 values.")
    expect(page.locator("#report-rows")).to_have_text(str(report["rows"]))
    expect(page.locator("#report-new")).to_have_text(str(report["new_values"]))
    expect(page.locator("#report-missing")).to_have_text("1")
    (gap,) = report["gaps"]
    gap_row = page.locator("#report-gaps tbody tr")
    expect(gap_row).to_have_count(1)
    expect(gap_row.locator("td").nth(0)).to_have_text(PRODUCER_POINT)
    expect(gap_row.locator("td").nth(1)).to_have_text("G.01")
    expect(gap_row.locator("td").nth(4)).to_have_text(str(gap["intervals"]))
    expect(page.locator("#imports-table tbody tr")).to_have_count(1)
    shot(screenshots, page, "web-operate-official-import-desktop")

    # The grid operator corrects the wrong quarter hour: a correction, the earlier value kept.
    measured = by_start[starts[2]]["energy_import_wh"]
    wrong_line = f"{starts[2].isoformat()},{CONSUMER_POINT},G.01,{measured + 5_000}"
    corrected = delivery.replace(wrong_line, wrong_line.rsplit(",", 1)[0] + f",{measured}")
    assert corrected != delivery
    official.get_by_label("CSV file from the grid operator").set_input_files(
        files=[FilePayload(name="again.csv", mimeType="text/csv", buffer=corrected.encode())]
    )
    with page.expect_response(lambda r: r.url.endswith("/official-energy")) as again:
        official.get_by_role("button", name="Upload").click()
    assert again.value.json()["corrections"] == 1
    expect(page.locator("#report-corrections")).to_have_text("1")
    correction = page.locator("#corrections-table tbody tr")
    expect(correction).to_have_count(1)
    expect(correction.locator("td").nth(0)).to_have_text(CONSUMER_POINT)
    expect(correction.locator("td").nth(3)).to_have_text(energy_text(measured + 5_000))
    expect(page.locator("#imports-table tbody tr")).to_have_count(2)

    # Reconciliation of today, per quarter hour: the API's comparison on screen.
    reconcile = page.locator("section.reconciliation")
    today = datetime.now(VIENNA).date().isoformat()
    reconcile.get_by_label("First day").fill(today)
    reconcile.get_by_label("Last day").fill(today)
    reconcile.get_by_label("Intervals", exact=True).select_option("15min")
    with page.expect_response(lambda r: "/reconciliation?" in r.url) as reconciled:
        reconcile.get_by_role("button", name="Reconcile").click()
    answer = reconciled.value.json()
    assert reconciled.value.status == 200, answer
    points = {p["metering_point"]: p for p in answer["points"]}
    assert set(points) == {CONSUMER_POINT, PRODUCER_POINT}
    for point in points.values():
        card = page.locator(f".reconcile-point[data-metering-point='{point['metering_point']}']")
        expect(card.locator("[data-value=compared]")).to_have_text(str(point["compared"]))
        expect(card.locator("[data-value=flagged]")).to_have_text(str(point["flagged"]))
        expect(card.locator("[data-value=without_official]")).to_have_text(
            str(point["without_official"])
        )
        expect(card.locator("tr.flagged")).to_have_count(point["flagged"])
    shot(screenshots, page, "web-operate-reconciliation-desktop")

    # The community's totals by day, as the API answers them.
    totals = page.locator("section[aria-labelledby=community-energy-title]")
    with page.expect_response(
        lambda r: f"/communities/{world.community_id}/energy?" in r.url
    ) as shown:
        page.reload()
    answer = shown.value.json()
    (day,) = [p for p in answer["totals"] if p["period"] == today]
    row = totals.locator(f".community-totals tr[data-period='{today}']")
    assert cells(row)[1:5] == [
        energy_text(day["consumption_wh"]),
        energy_text(day["covered_wh"]),
        energy_text(day["production_wh"]),
        energy_text(day["surplus_wh"]),
    ]
    clean(page, world)


# --- the phone ----------------------------------------------------------------------------


def test_my_community_on_a_phone(browser: Any, world: World, screenshots: Screenshots) -> None:
    from playwright.sync_api import expect

    from tests.web.ui import no_horizontal_scroll

    context, page = open_page(browser, PHONE)
    try:
        log_in(page, world.cloud.url, MEMBER)
        page.goto(world.cloud.url + "/my-community")
        expect(page.locator("#live-status")).to_have_text("live", timeout=20_000)
        expect(page.locator("#live-production")).not_to_have_text("–")
        time.sleep(0.5)
        assert no_horizontal_scroll(page)
        shot(screenshots, page, "web-my-community-phone")
        page.get_by_role("navigation").get_by_role("link", name="Operate").click()
        expect(page.get_by_text("You do not run a community yet.")).to_be_visible()
        clean(page, world)
    finally:
        context.close()
