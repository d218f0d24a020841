"""Pairing and "My energy" in real headless Chromium, against real processes: ``ecommunity cloud
serve`` and ``ecommunity gateway run`` reading a fake AMIS meter on a pty.

The meter first replays a day of history through the serial line (a push per 5 min of meter
time, as fast as the gateway acknowledges), then pushes once a second in real time. The user
pairs the gateway by typing the code it shows, watches the live tiles follow each frame, reads
the charts of a day, week, month and year and zooms into them, on a desktop and on a 360 px
phone, in English and German; then revokes the gateway.

The tests share one cloud, gateway and account (a module fixture); each pairs the gateway
through the API if the pairing test has not (so that each also runs alone).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser import DESKTOP, Screenshots, open_page, page_log
from tests.e2e.processes import PASSWORD, Cloud, Gateway, wait_until
from tests.gateway.fake_meter import FakeAmisMeter, Pty, open_pty
from tests.web.ui import energy, log_in, no_horizontal_scroll, number_in, watts

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

pytestmark = pytest.mark.slow

EMAIL = "anna@example.org"
VIENNA = ZoneInfo("Europe/Vienna")
HISTORY = timedelta(hours=24)
HISTORY_STEP = timedelta(minutes=5)
LIVE_STEP = timedelta(seconds=1)
#: A new frame must show on the live tile within this. [s]
LIVE_WITHIN_S = 2.0
#: First render of "My energy": navigation start to the live tile painted. [ms]
FIRST_RENDER_MS = 1000
RESOLUTIONS = {"day": "1min", "week": "15min", "month": "1h", "year": "1d"}


@dataclass
class World:
    cloud: Cloud
    gateway: Gateway
    meter: FakeAmisMeter
    #: The account's API client (bearer token).
    api: httpx.Client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("web-energy")
    pty: Pty = open_pty()
    cloud = Cloud.embedded(tmp_path)
    gateway = Gateway.create(tmp_path, pty.path, cloud_url=cloud.url)
    meters: list[FakeAmisMeter] = []
    api: httpx.Client | None = None
    try:
        cloud.start_and_wait()
        gateway.start()
        # The history ends a few pushes before now: the meter may send one or two more before
        # it stops, and those must not lie in the future.
        pushes = HISTORY // HISTORY_STEP
        # From push 1000 on, the power is 1,250 W and more: thousands show their separator.
        # (Push i carries meter time start + i * step.)
        first_push = 1000
        begin = datetime.now(UTC).replace(microsecond=0) - HISTORY - 5 * HISTORY_STEP
        history = FakeAmisMeter(
            pty.master,
            first_index=first_push,
            push_interval_s=0.02,
            step=HISTORY_STEP,
            start=begin - first_push * HISTORY_STEP,
        )
        meters.append(history.start())
        wait_until(lambda: len(history.acked) >= pushes, 120, "a day of history")
        history.stop()
        # The same meter, its clock now in step with the wall clock: push `first` is now.
        first = history.next_index
        assert first < first_push + pushes + 5, "the history ran into the future"
        live_start = datetime.now(UTC).replace(microsecond=0) - first * LIVE_STEP
        meter = FakeAmisMeter(
            pty.master, first_index=first, push_interval_s=1.0, step=LIVE_STEP, start=live_start
        )
        meters.append(meter.start())
        api = cloud.user(EMAIL)
        yield World(cloud, gateway, meter, api)
    finally:
        for each in meters:
            each.stop()
        if api is not None:
            api.close()
        if gateway.alive():
            gateway.stop()
        if cloud.alive():
            cloud.stop()
        pty.close()


def ensure_paired(world: World) -> int:
    """Pair the gateway through the API unless that happened already; the meter's id."""

    def pairing_state() -> str | None:
        assert world.gateway.alive(), world.gateway.logs()
        state: str | None = (world.gateway.status().get("pairing") or {}).get("state")
        return state if state in ("waiting_for_user", "paired") else None

    if wait_until(pairing_state, 20, "the gateway to pair") == "waiting_for_user":
        world.gateway.pair(world.api, "Keller")
    wait_until(lambda: world.gateway.uplink("state") == "online", 20, "the uplink")
    # The day of history has arrived: the uplink confirmed minutes up to the live ones.
    world.gateway.wait_uploaded_through(datetime.now(UTC) - timedelta(minutes=3), 60)

    def meter_id() -> int | None:
        meters = world.api.get("/api/v1/meters").json()
        return meters[0]["id"] if meters else None

    return wait_until(meter_id, 20, "the meter in the cloud")


def vienna_period(range_name: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of today, this week, month or year in Vienna, in UTC."""
    local = now.astimezone(VIENNA)
    day = datetime(local.year, local.month, local.day, tzinfo=VIENNA)
    if range_name == "day":
        start, end = day, day + timedelta(days=1)
    elif range_name == "week":
        start = day - timedelta(days=local.weekday())
        end = start + timedelta(days=7)
    elif range_name == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start = day.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    # Adding days to an aware datetime keeps the wall clock: re-attach Vienna's offset.
    return (
        start.replace(tzinfo=None).replace(tzinfo=VIENNA).astimezone(UTC),
        end.replace(tzinfo=None).replace(tzinfo=VIENNA).astimezone(UTC),
    )


def history_query(url: str) -> dict[str, Any]:
    """``from``, ``to`` (as UTC datetimes) and ``resolution`` of a history request's URL."""
    if not re.search(r"/api/v1/meters/\d+/readings\?", url):
        return {}
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    return {
        "resolution": query["resolution"],
        "from": datetime.fromisoformat(query["from"]),
        "to": datetime.fromisoformat(query["to"]),
    }


def today_energy(world: World, meter_id: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    got = world.api.get(
        f"/api/v1/meters/{meter_id}/readings",
        params={
            "from": now.isoformat(),
            "to": (now + timedelta(seconds=1)).isoformat(),
            "resolution": "1d",
        },
    )
    assert got.status_code == 200, got.text
    (today,) = got.json()
    return dict(today)


def clean(page: Page, world: World) -> None:
    """Nothing loaded from elsewhere, no script errors."""
    log = page_log(page)
    assert log.foreign(world.cloud.url) == []
    assert log.errors == []


# --- pairing -----------------------------------------------------------------------------------


def test_pair_the_gateway_by_the_code_it_shows(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    log_in(page, world.cloud.url, EMAIL)
    page.get_by_role("navigation").get_by_role("link", name="Gateways").click()
    expect(page.get_by_text("No gateway paired yet.")).to_be_visible()

    def shown_code() -> str | None:
        pairing = world.gateway.status().get("pairing") or {}
        code: str | None = (
            pairing.get("user_code") if pairing.get("state") == "waiting_for_user" else None
        )
        return code

    code = wait_until(shown_code, 20, "the gateway to show its code")
    # A code no gateway waits with is refused, with a reason.
    page.get_by_label("Pairing code").fill("BBBB-BBBB" if code != "BBBB-BBBB" else "CCCC-CCCC")
    page.get_by_role("button", name="Pair", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("No gateway is waiting with this code")

    # Typed as people do: lower case, without the dash.
    page.get_by_label("Pairing code").fill(code.replace("-", "").lower())
    page.get_by_label("Name of the gateway").fill("Keller")
    screenshots.save(page, "web-pair-desktop")
    page.get_by_role("button", name="Pair", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="paired")).to_have_text(
        "“Keller” is paired. Its data arrives in a few seconds."
    )
    gateway_item = page.locator("#gateway-list li").first
    expect(gateway_item.get_by_role("heading")).to_have_text("Keller")

    # The gateway collects its token, uploads its day of history and shows as online.
    wait_until(lambda: world.gateway.uplink("state") == "online", 20, "the uplink")
    expect(gateway_item.locator(".badge")).to_have_text("Online", timeout=30_000)
    expect(gateway_item).to_contain_text("Last data")
    expect(gateway_item.get_by_role("button", name="Revoke")).to_be_visible()
    (device,) = world.api.get("/api/v1/devices").json()
    assert (device["name"], device["online"], device["revoked"]) == ("Keller", True, False)
    expect(gateway_item).to_contain_text(device["hardware_id"])
    screenshots.save(page, "web-gateways-desktop")
    clean(page, world)


def test_the_verification_link_fills_in_the_code(page: Page, world: World) -> None:
    from playwright.sync_api import expect

    ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    # The URI the cloud gives gateways (RFC 8628 verification_uri_complete).
    page.goto(world.cloud.url + "/pair?code=WDJB-MJHT")
    expect(page.get_by_label("Pairing code")).to_have_value("WDJB-MJHT")
    expect(page.get_by_role("navigation").get_by_role("link", name="Gateways")).to_have_attribute(
        "aria-current", "page"
    )


# --- My energy: live tiles -----------------------------------------------------------------


def test_live_tiles_follow_each_frame(page: Page, world: World, screenshots: Screenshots) -> None:
    from playwright.sync_api import expect

    ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    expect(page.locator("#freshness")).to_have_text("live", timeout=15_000)
    # Every text the import tile shows, with the page's clock (the machine's wall clock).
    page.evaluate(
        """() => {
            const tile = document.getElementById("power-import");
            window.shown = [[Date.now(), tile.textContent]];
            new MutationObserver(() => window.shown.push([Date.now(), tile.textContent]))
                .observe(tile, { childList: true, characterData: true, subtree: true });
        }"""
    )
    wall_minus_monotonic = time.time() - time.monotonic()
    watched_from = time.monotonic()
    time.sleep(6 + LIVE_WITHIN_S)
    shown: list[tuple[float, str]] = page.evaluate("window.shown")
    frames = [
        frame
        for frame in list(world.meter.sent)
        if watched_from + 0.5 < frame.sent_at < time.monotonic() - LIVE_WITHIN_S
    ]
    assert len(frames) >= 4, "the meter pushes once a second"
    delays = []
    for frame in frames:
        sent_ms = (frame.sent_at + wall_minus_monotonic) * 1000
        power = frame.reading.power_import_w
        assert power is not None
        # Its power, or that of a later frame (the power rises with every frame).
        at = next(at for at, text in shown if (number_in(text) or 0) >= power)
        delays.append((at - sent_ms) / 1000)
    assert max(delays) <= LIVE_WITHIN_S, delays
    assert len({text for _, text in shown}) >= len(frames)
    print(
        f"live tile: frame to screen {statistics.median(delays):.3f} s median, "
        f"{max(delays):.3f} s max"
    )
    last = world.meter.sent[-1].reading
    expect(page.locator("#power-export")).to_have_text(watts(last.power_export_w or 0))
    expect(page.locator("#community-now")).to_contain_text("Join a community")
    screenshots.save(page, "web-energy-desktop", full_page=True)
    clean(page, world)


def test_todays_tiles_show_the_apis_numbers(page: Page, world: World) -> None:
    meter_id = ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)

    def same() -> bool:
        today = today_energy(world, meter_id)
        shown = (
            page.locator("#energy-import-today").text_content(),
            page.locator("#energy-export-today").text_content(),
        )
        return shown == (energy(today["energy_import_wh"]), energy(today["energy_export_wh"]))

    wait_until(same, 15, "today's tiles to show the API's energy")
    today = today_energy(world, meter_id)
    assert today["energy_import_wh"] > 0
    assert today["complete"] is False


def test_freshness_says_how_old_the_data_is(page: Page, world: World) -> None:
    from playwright.sync_api import expect

    ensure_paired(world)
    page.clock.install()
    log_in(page, world.cloud.url, EMAIL)
    expect(page.locator("#freshness")).to_have_text("live", timeout=15_000)
    # The page's clock runs ahead of the meter's: its data looks older and older.
    page.clock.fast_forward("03:00")
    expect(page.locator("#freshness")).to_have_text("3 min ago")
    page.clock.fast_forward("20:00")
    expect(page.locator("#freshness")).to_have_text(re.compile(r"^stale: last data "))
    assert page.locator("#freshness").get_attribute("data-state") == "stale"


def test_first_render_of_my_energy_is_under_a_second(browser: Browser, world: World) -> None:
    """From navigation start to the live tile painted (the browser's element timing), in a
    fresh browser context: nothing cached, the session cookie set as a login leaves it."""
    ensure_paired(world)
    login = httpx.post(
        world.cloud.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    timings = []
    for _ in range(3):
        context, page = open_page(browser, DESKTOP)
        try:
            context.add_cookies(
                [{"name": "ecommunity_session", "value": token, "url": world.cloud.url}]
            )
            page.goto(world.cloud.url + "/energy")
            painted_ms: float = page.evaluate(
                """() => new Promise((resolve) => {
                    new PerformanceObserver((list) => {
                        for (const entry of list.getEntries()) {
                            if (entry.identifier === "power-import") resolve(entry.renderTime);
                        }
                    }).observe({ type: "element", buffered: true });
                })"""
            )
            assert page.locator("#power-import").text_content() != "–"
            timings.append(painted_ms)
            clean(page, world)
        finally:
            context.close()
    print(f"first render of My energy: {', '.join(f'{ms:.0f}' for ms in timings)} ms")
    # The first is the coldest (the server's caches too): each must make it.
    assert max(timings) < FIRST_RENDER_MS, timings


# --- My energy: charts -------------------------------------------------------------------------


def test_charts_of_a_day_week_month_and_year(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    expect(page.locator("#power-import")).not_to_have_text("–")
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response))
    for range_name, resolution in RESOLUTIONS.items():
        start, end = vienna_period(range_name, datetime.now(UTC))

        def of_this_range(
            response: Response, resolution: str = resolution, start: datetime = start
        ) -> bool:
            query = history_query(response.url)
            return query.get("resolution") == resolution and query.get("from") == start

        button = page.locator(f"button[data-range={range_name}]")
        with page.expect_response(of_this_range) as answer:
            button.click()
        sent_to = history_query(answer.value.url)["to"]
        assert sent_to == end if range_name == "day" else start < sent_to <= end
        expect(button).to_have_attribute("aria-pressed", "true")
        expect(page.locator("section.charts")).not_to_have_attribute("aria-busy", "true")
        expect(page.locator("#chart canvas")).to_have_count(1)
        expect(page.locator(".chart-status")).to_be_hidden()
        # The latest answer: the chart of the current period refreshes itself as data arrives.
        response = [each for each in answers if of_this_range(each)][-1]
        assert response.status == 200
        rows = response.json()
        assert rows, f"no data for the {range_name}"

        # The table beside the chart holds exactly what the API answered.
        details = page.locator("details.chart-table")
        if not details.evaluate("(d) => d.open"):
            details.locator("summary").click()
        cells = page.locator("details.chart-table tbody tr")
        expect(cells).to_have_count(len(rows))
        last = cells.nth(len(rows) - 1).locator("td")
        if range_name == "day":
            assert last.nth(1).text_content() == watts(rows[-1]["power_import_w"])
        else:
            assert last.nth(1).text_content() == energy(rows[-1]["energy_import_wh"])
            assert last.nth(2).text_content() == energy(rows[-1]["energy_export_wh"])
            assert last.nth(3).text_content() == "so far"
        details.locator("summary").click()
        screenshots.save(page, f"web-chart-{range_name}-desktop")
    clean(page, world)


def test_drag_to_zoom_and_back(page: Page, world: World) -> None:
    from playwright.sync_api import expect

    ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    page.locator("button[data-range=day]").click()
    chart = page.locator("#chart")
    expect(page.locator("section.charts")).not_to_have_attribute("aria-busy", "true")
    expect(chart).to_have_attribute("data-zoomed", "false")
    day_start, day_end = vienna_period("day", datetime.now(UTC))

    over = page.locator("#chart .u-over")
    expect(over).to_be_visible()
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.up()
    expect(chart).to_have_attribute("data-zoomed", "true")
    zoom_from = datetime.fromisoformat(chart.get_attribute("data-from") or "")
    zoom_to = datetime.fromisoformat(chart.get_attribute("data-to") or "")
    # About the second quarter of the day.
    quarter = (day_end - day_start) / 4
    assert abs(zoom_from - (day_start + quarter)) < timedelta(minutes=30)
    assert abs(zoom_to - (day_start + 2 * quarter)) < timedelta(minutes=30)
    expect(page.locator(".period")).to_contain_text("–")

    page.get_by_role("button", name="Whole period").click()
    expect(chart).to_have_attribute("data-zoomed", "false")
    # By keyboard too.
    page.get_by_role("button", name="Zoom in").focus()
    page.keyboard.press("Enter")
    expect(chart).to_have_attribute("data-zoomed", "true")
    page.get_by_role("button", name="Zoom out").click()
    expect(chart).to_have_attribute("data-zoomed", "false")
    # Earlier days, and back to today.
    page.get_by_role("button", name="Previous day").click()
    expect(page.locator(".period")).not_to_contain_text("Today")
    expect(page.get_by_role("button", name="Next day")).to_be_enabled()
    page.get_by_role("button", name="Next day").click()
    expect(page.locator(".period")).to_contain_text("Today")
    expect(page.get_by_role("button", name="Next day")).to_be_disabled()


# --- phone, language -----------------------------------------------------------------------


def test_on_a_phone(phone_page: Page, world: World, screenshots: Screenshots) -> None:
    from playwright.sync_api import expect

    page = phone_page
    ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    expect(page.locator("#freshness")).to_have_text("live", timeout=15_000)
    expect(page.locator("#chart canvas")).to_have_count(1)
    before = page.locator("#power-import").text_content()
    expect(page.locator("#power-import")).not_to_have_text(before or "", timeout=4000)
    assert no_horizontal_scroll(page)
    chart_width = page.locator("#chart .uplot").evaluate("(e) => e.getBoundingClientRect().right")
    assert chart_width <= 360
    screenshots.save(page, "web-energy-phone")
    for name in ("week", "year"):
        page.locator(f"button[data-range={name}]").click()
        expect(page.locator("#chart canvas")).to_have_count(1)
        assert no_horizontal_scroll(page)
    for link, shot in (("Gateways", "web-gateways-phone"), ("Account", "web-account-phone")):
        page.get_by_role("navigation").get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(link)
        assert no_horizontal_scroll(page)
        screenshots.save(page, shot)
    clean(page, world)


def test_in_german(page: Page, world: World, screenshots: Screenshots) -> None:
    from playwright.sync_api import expect

    meter_id = ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    page.get_by_label("Language").select_option("de")
    expect(page.get_by_role("heading", name="Meine Energie")).to_be_visible()
    expect(page.locator("#freshness")).to_have_text("Live", timeout=15_000)
    expect(page.get_by_text("Heute bezogen")).to_be_visible()
    expect(page.locator("button[data-range=week]")).to_have_text("Woche")

    # Austrian digit grouping (a no-break space): "1 290 W", where English has "1,290 W".
    expect(page.locator("#power-import")).to_have_text(re.compile(r"^1\s\d{3}\u00a0W$"))

    def same_energy() -> bool:
        wh = today_energy(world, meter_id)["energy_import_wh"]
        return page.locator("#energy-import-today").text_content() == energy(wh)

    wait_until(same_energy, 15, "today's energy")
    expect(page.locator(".period")).to_have_text(re.compile(r"^Heute, \w+, \d+\. \w+ 20\d\d$"))
    screenshots.save(page, "web-energy-desktop-de")
    page.reload()
    expect(page.get_by_role("heading", name="Meine Energie")).to_be_visible()
    page.get_by_label("Sprache").select_option("en")
    expect(page.get_by_role("heading", name="My energy")).to_be_visible()
    clean(page, world)


# --- revoking (last: the gateway stays revoked) ------------------------------------------------


def test_revoke_the_gateway_after_confirming(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    ensure_paired(world)
    log_in(page, world.cloud.url, EMAIL)
    page.get_by_role("navigation").get_by_role("link", name="Gateways").click()
    item = page.locator("#gateway-list li").first
    expect(item.locator(".badge")).to_have_text("Online")

    item.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("“Keller” stops uploading at once.")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    screenshots.save(page, "web-revoke-dialog-desktop", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(item.locator(".badge")).to_have_text("Online")
    assert world.gateway.uplink("state") == "online"

    item.get_by_role("button", name="Revoke").click()
    dialog.get_by_role("button", name="Revoke").click()
    expect(item.locator(".badge")).to_have_text("Revoked")
    expect(item.get_by_role("button", name="Revoke")).to_have_count(0)
    wait_until(lambda: world.gateway.uplink("state") == "revoked", 10, "the uplink to stop")
    (device,) = world.api.get("/api/v1/devices").json()
    assert (device["revoked"], device["online"]) == (True, False)
    clean(page, world)
