"""The gateway's dashboard and setup page in real headless Chromium, served by the real
``ecommunity gateway run`` process that reads a fake AMIS meter on a pty.

The dashboard's gateway first gets a day of history through the serial line (a push per 5 min of
meter time, replayed as fast as the reader acknowledges), then live pushes once a second in real
time, so that today's tiles, the 24-hour chart and the live tiles all have something to show.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import Screenshots, page_log
from tests.e2e.processes import wait_until
from tests.gateway.fake_meter import KEY, FakeAmisMeter, Pty, open_pty
from tests.gateway.gateway_process import Gateway, start_gateway

if TYPE_CHECKING:
    from playwright.sync_api import Page

# The browser first: without chromium the tests skip before starting a gateway.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("browser")]

HISTORY = timedelta(hours=24)
HISTORY_STEP = timedelta(minutes=5)
LIVE_STEP = timedelta(seconds=1)
PHONE_WIDTH_PX = 360


def kwh(energy_wh: int) -> str:
    """Energy as the dashboard writes it. [kWh]"""
    return f"{energy_wh / 1000:.{2 if energy_wh < 10_000 else 1}f}"


@dataclass
class LiveGateway:
    gateway: Gateway
    meter: FakeAmisMeter
    pty: Pty


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """A gateway with a day of readings behind it and a live meter pushing once a second."""
    pty = open_pty()
    tmp_path = tmp_path_factory.mktemp("dashboard")
    gateway = start_gateway(
        tmp_path, "--serial-port", pty.path, "--line", "9600-8N1", "--key", KEY.hex(),
        "--name", "Keller",
    )  # fmt: skip
    meter: FakeAmisMeter | None = None
    try:
        # The history ends a few pushes before now: the meter may send one or two more before
        # it stops, and those must not lie in the future.
        pushes = HISTORY // HISTORY_STEP
        start = datetime.now(UTC).replace(microsecond=0) - HISTORY - 5 * HISTORY_STEP
        history = FakeAmisMeter(
            pty.master, push_interval_s=0.02, step=HISTORY_STEP, start=start
        ).start()
        wait_until(lambda: len(history.acked) >= pushes, 60, "a day of history")
        history.stop()
        # The same meter, its clock now in step with the wall clock: push `first` is now.
        first = history.next_index
        assert first < pushes + 5, "the history ran into the future"
        live_start = datetime.now(UTC).replace(microsecond=0) - first * LIVE_STEP
        meter = FakeAmisMeter(
            pty.master, first_index=first, push_interval_s=1.0, step=LIVE_STEP, start=live_start
        ).start()
        wait_until(
            lambda: gateway.get("/api/v1/status").json()["reader"]["readings_stored"] > first,
            20,
            "live readings",
        )
        yield LiveGateway(gateway, meter, pty)
    finally:
        code = gateway.stop()
        if meter is not None:
            meter.stop()
        pty.close()
    assert code == 0, gateway.logs()


def open_dashboard(page: Page, gateway: Gateway) -> None:
    from playwright.sync_api import expect

    page.goto(gateway.url + "/")
    expect(page.locator("#freshness")).to_have_text("live")
    expect(page.locator("#gateway-name")).to_have_text("Keller")


def assert_only_gateway_requests(page: Page, gateway: Gateway) -> None:
    log = page_log(page)
    assert any(url.startswith(gateway.url + "/assets/") for url in log.requests), log.requests
    assert f"ws://127.0.0.1:{gateway.port}/api/v1/live" in log.requests, log.requests
    assert log.foreign(gateway.url) == []
    assert log.failed == []
    assert log.errors == []


def tile_changes(page: Page, selector: str) -> list[tuple[str, float]]:
    """(text, Date.now() [ms]) of every change of the element since :func:`watch_tile`."""
    changes: list[list[Any]] = page.evaluate("(s) => window.__changes[s]", selector)
    return [(str(text), float(at_ms)) for text, at_ms in changes]


def watch_tile(page: Page, selector: str) -> None:
    page.evaluate(
        """(selector) => {
            window.__changes = window.__changes || {};
            const changes = window.__changes[selector] = [];
            const node = document.querySelector(selector);
            new MutationObserver(() => changes.push([node.textContent, Date.now()]))
                .observe(node, { childList: true, characterData: true, subtree: true });
        }""",
        selector,
    )


def test_dashboard_shows_live_tiles_today_chart_and_status_from_the_gateway_only(
    live_gateway: LiveGateway, page: Page, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    gateway, meter = live_gateway.gateway, live_gateway.meter
    open_dashboard(page, gateway)

    # The live import tile shows every new frame within 2 s of the meter sending it.
    watch_tile(page, "#power-import")
    wall_minus_monotonic_s = time.time() - time.monotonic()
    first = meter.next_index + 1  # the frame being written now may be half-sent
    wait_until(lambda: meter.next_index > first + 3, 10, "four more frames")
    time.sleep(2)  # the last one's deadline
    changes = tile_changes(page, "#power-import")
    sent = [frame for frame in meter.sent if first <= frame.index <= first + 3]
    assert len(sent) == 4
    delays_ms = []
    for frame in sent:
        shown = [at_ms for text, at_ms in changes if text == str(frame.reading.power_import_w)]
        assert shown, f"frame {frame.index} never shown: {changes}"
        delays_ms.append(shown[0] - (frame.sent_at + wall_minus_monotonic_s) * 1000)
    assert max(delays_ms) < 2000, delays_ms
    assert page.locator("#power-export").text_content() == "0"

    # Today's tiles: the API's energy since midnight in Austria, in kWh.
    def today_matches() -> bool:
        today = gateway.get("/api/v1/energy/today").json()
        shown = (
            page.locator("#today-import").text_content(),
            page.locator("#today-export").text_content(),
        )
        return shown == (kwh(today["energy_import_wh"]), kwh(today["energy_export_wh"]))

    wait_until(today_matches, 10, "today's tiles to equal the API")
    assert page.locator("#today-import").text_content() not in ("–", "0.00")

    # The chart: a bar per quarter hour with imported energy, as many as the API has.
    intervals = gateway.get("/api/v1/readings", resolution="15min").json()["intervals"]
    with_import = [item for item in intervals if item["energy_import_wh"]]
    assert len(with_import) >= 90  # 24 h of history: 96 quarter hours, less the edges
    bars = page.locator("#chart rect.bar-import")
    expect(bars.first).to_be_visible()
    assert abs(bars.count() - len(with_import)) <= 1  # a quarter hour may begin in between
    assert page.locator("#chart rect.bar-export").count() >= 90

    # The status list names the meter and its port.
    status = page.locator("#status-list")
    expect(status).to_contain_text(f"amis on {live_gateway.pty.path}")
    expect(status).to_contain_text("local only")
    stored = gateway.get("/api/v1/status").json()["reader"]["readings_stored"]
    shown_stored = int(status.locator("dt:text-is('Readings stored') + dd").inner_text())
    assert stored - 20 <= shown_stored <= stored  # refreshed every 10 s

    screenshots.save(page, "gateway-dashboard-desktop")
    assert_only_gateway_requests(page, gateway)


def test_dashboard_fits_a_phone_screen(
    live_gateway: LiveGateway, phone_page: Page, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    gateway = live_gateway.gateway
    open_dashboard(phone_page, gateway)
    expect(phone_page.locator("#chart rect.bar-import").first).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH_PX, f"the page scrolls sideways: {width} px wide"
    tiles = phone_page.locator(".tile")
    assert tiles.count() == 4
    for tile in tiles.all():
        expect(tile).to_be_visible()
        box = tile.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE_WIDTH_PX
    power = phone_page.locator("#power-import").text_content() or ""
    assert power.isdigit(), power
    # The chart's hour labels keep their shape on a narrow screen (not squashed sideways).
    scale_x, scale_y = phone_page.evaluate(
        """() => {
            const label = document.querySelector("#chart text");
            const shown = label.getBoundingClientRect(), drawn = label.getBBox();
            return [shown.width / drawn.width, shown.height / drawn.height];
        }"""
    )
    assert scale_x == pytest.approx(scale_y, rel=0.05)
    screenshots.save(phone_page, "gateway-dashboard-phone")
    assert_only_gateway_requests(phone_page, gateway)


def test_dashboard_links_are_reachable_by_keyboard(live_gateway: LiveGateway, page: Page) -> None:
    open_dashboard(page, live_gateway.gateway)
    focused = tab_through(page, 10)
    assert {"Dashboard", "Setup"} <= {item["text"] for item in focused}, focused


def tab_through(page: Page, presses: int) -> list[dict[str, Any]]:
    """What each Tab focuses, from the top of the page, with its focus outline."""
    page.locator("body").focus()
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                """() => {
                    const el = document.activeElement;
                    const style = getComputedStyle(el);
                    return { tag: el.tagName.toLowerCase(), id: el.id,
                             text: (el.textContent || "").trim(),
                             outline: style.outlineStyle + " " + style.outlineWidth };
                }"""
            )
        )
    return seen


def unlabelled_fields(page: Page) -> list[str]:
    fields: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((el) => el.type !== "hidden")
            .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label")
                            && !el.getAttribute("aria-labelledby"))
            .map((el) => el.id || el.name || el.outerHTML)"""
    )
    return fields


def test_setup_page_checks_the_key_then_the_dashboard_shows_live_data(
    tmp_path: Path, page: Page, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    pty = open_pty()
    start = datetime.now(UTC).replace(microsecond=0)
    meter = FakeAmisMeter(pty.master, push_interval_s=1.0, step=LIVE_STEP, start=start).start()
    gateway = start_gateway(tmp_path)  # no meter settings: setup mode
    try:
        assert gateway.get("/api/v1/status").json()["setup"] == "setup"
        page.goto(gateway.url + "/#setup")
        expect(page.get_by_role("heading", name="Setup", exact=True)).to_be_visible()
        expect(page.locator("#profile option[value='amis']")).to_have_count(1)

        # Every field has a label, and the labels are how a person finds them.
        assert page.locator("#setup input, #setup select").count() >= 7
        assert unlabelled_fields(page) == []
        page.get_by_label("Serial port").fill(pty.path)
        page.get_by_label("Meter / grid operator").select_option("amis")
        page.get_by_label("Line settings").fill("9600-8N1")
        page.get_by_label("Key from the grid operator").fill("00" * 16)
        page.get_by_role("button", name="Check and save").click()
        result = page.locator("#meter-result")
        expect(result).to_contain_text("wrong key", timeout=20_000)
        expect(result).to_have_class("result error")
        screenshots.save(page, "gateway-setup-wrong-key")
        assert gateway.get("/api/v1/status").json()["setup"] == "setup"

        # Every button is reachable with Tab and shows where the focus is.
        focused = tab_through(page, 30)
        buttons = {item["text"]: item for item in focused if item["tag"] == "button"}
        assert {"Check and save", "Save", "Connect"} <= set(buttons), focused
        assert all(item["outline"].startswith("solid") for item in buttons.values()), buttons

        # The right key, submitted from the keyboard.
        page.get_by_label("Key from the grid operator").fill(KEY.hex())
        page.get_by_role("button", name="Check and save").focus()
        page.keyboard.press("Enter")
        expect(result).to_contain_text("Saved", timeout=20_000)
        expect(result).to_have_class("result ok")
        expect(page.get_by_label("Key from the grid operator")).to_have_value("")
        screenshots.save(page, "gateway-setup-saved")

        # The dashboard now shows the meter's live readings.
        page.get_by_role("link", name="Dashboard").click()
        expect(page.locator("#dashboard")).to_be_visible()
        expect(page.locator("#setup")).to_be_hidden()
        power = page.locator("#power-import")
        expect(power).not_to_have_text("–")
        before = power.text_content()
        expect(power).not_to_have_text(before or "", timeout=3000)
        expect(page.locator("#freshness")).to_have_text("live")
        expect(page.locator("#no-meter")).to_be_hidden()
        expect(page.locator("#today-import")).not_to_have_text("–", timeout=15_000)
        expect(page.locator("#status-list")).to_contain_text(f"amis on {pty.path}", timeout=15_000)
        log = page_log(page)
        assert log.foreign(gateway.url) == []
        assert log.errors == []
    finally:
        code = gateway.stop()
        meter.stop()
        pty.close()
    assert code == 0, gateway.logs()
