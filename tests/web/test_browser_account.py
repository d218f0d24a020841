"""Accounts in the web app, in real headless Chromium against a real ``ecommunity cloud serve``:
sign up, log out, log in; the language from the browser, switched and remembered; the app
installed by its service worker and opened offline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser import DESKTOP, PHONE, TIMEOUT_MS, Screenshots, page_log, require_chromium
from tests.e2e.processes import PASSWORD, Cloud
from tests.web.ui import log_in, no_horizontal_scroll

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    server = Cloud.embedded(tmp_path_factory.mktemp("web-account"))
    server.start_and_wait()
    try:
        yield server
    finally:
        server.stop()


def register(cloud: Cloud, email: str) -> None:
    created = httpx.post(
        cloud.url + "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "Berta"},
    )
    assert created.status_code == 201, created.text


def context_of(browser: Browser, **options: Any) -> BrowserContext:
    """A context of our own, for what the shared fixtures fix (locale, service workers)."""
    context = browser.new_context(timezone_id="Europe/Vienna", **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def test_sign_up_log_out_and_log_in(page: Page, cloud: Cloud, screenshots: Screenshots) -> None:
    from playwright.sync_api import expect

    page.goto(cloud.url)
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshots.save(page, "login-desktop")

    page.get_by_role("link", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    page.get_by_label("Name").fill("Anna Berger")
    page.get_by_label("Email address").fill("Anna@Example.org")
    page.get_by_label("Password").fill(PASSWORD)
    screenshots.save(page, "signup-desktop")
    page.get_by_role("button", name="Sign up").click()

    # Signed up and in: "My energy" with nothing paired yet.
    expect(page).to_have_url(re.compile(r"/energy$"))
    expect(page.get_by_role("heading", name="My energy")).to_be_visible()
    expect(page.get_by_text("No meter yet")).to_be_visible()
    expect(page.get_by_role("link", name="Pair a gateway")).to_be_visible()
    # The session is an HttpOnly cookie that scripts cannot read.
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
        "ecommunity_session",
        True,
        "Lax",
    )
    assert "ecommunity_session" not in page.evaluate("document.cookie")

    page.get_by_role("navigation").get_by_role("link", name="Account").click()
    expect(page.locator("#account-email")).to_have_text("anna@example.org")
    expect(page.locator("#account-name")).to_have_text("Anna Berger")
    screenshots.save(page, "account-desktop")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert page.context.cookies() == []
    # Signed out, the app's screens lead to the login, which then leads back.
    page.goto(cloud.url + "/gateways")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fgateways$"))

    page.get_by_label("Email address").fill("anna@example.org")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email address or password.")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/gateways$"))
    expect(page.get_by_role("heading", name="Gateways", exact=True)).to_be_visible()

    # Reloaded, the app still knows who is signed in (and gets its CSRF token from /me).
    page.reload()
    expect(page.get_by_role("heading", name="Pair a gateway")).to_be_visible()
    log = page_log(page)
    assert log.foreign(cloud.url) == []
    assert log.errors == []


def test_sign_up_with_a_taken_address_says_so(page: Page, cloud: Cloud) -> None:
    from playwright.sync_api import expect

    register(cloud, "taken@example.org")
    page.goto(cloud.url + "/signup")
    page.get_by_label("Name").fill("Someone")
    page.get_by_label("Email address").fill("taken@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_have_text(
        "There is already an account with this email address."
    )
    expect(page).to_have_url(re.compile(r"/signup$"))


def test_language_comes_from_the_browser_and_the_choice_is_remembered(
    browser: Browser, cloud: Cloud, screenshots: Screenshots
) -> None:
    from playwright.sync_api import expect

    context = context_of(browser, locale="de-AT", service_workers="block", **PHONE)
    try:
        page = context.new_page()
        page.goto(cloud.url + "/login")
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.get_by_label("E-Mail-Adresse")).to_be_visible()
        assert no_horizontal_scroll(page)
        screenshots.save(page, "login-phone-de")

        page.get_by_label("Sprache").select_option("en")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()

        # Signed in, German dates and numbers in Austrian time.
        register(cloud, "de@example.org")
        log_in(page, cloud.url, "de@example.org")
        page.get_by_label("Language").select_option("de")
        expect(page.get_by_role("heading", name="Meine Energie")).to_be_visible()
        page.get_by_role("navigation").get_by_role("link", name="Konto").click()
        expect(page.get_by_role("heading", name="Konto")).to_be_visible()
        german_date = page.evaluate(
            "new Intl.DateTimeFormat('de-AT', {dateStyle: 'long', timeZone: 'Europe/Vienna'})"
            ".format(new Date())"
        )
        expect(page.get_by_text(german_date)).to_be_visible()
        page.reload()
        expect(page.get_by_role("heading", name="Konto")).to_be_visible()
    finally:
        context.close()

    # A browser that prefers neither language gets English.
    context = context_of(browser, locale="fr-FR", service_workers="block", **DESKTOP)
    try:
        page = context.new_page()
        page.goto(cloud.url + "/login")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    finally:
        context.close()


def test_installable_and_opens_offline(browser: Browser, cloud: Cloud, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    register(cloud, "offline@example.org")
    # A browser profile on disk, as on a phone: Chromium installs no app from incognito, and
    # every other context is one.
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=require_chromium(),
        headless=True,
        locale="en-GB",
        timezone_id="Europe/Vienna",
        service_workers="allow",
        **DESKTOP,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        log_in(page, cloud.url, "offline@example.org")
        assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.active !== null)")
        page.wait_for_function("navigator.serviceWorker.controller !== null")

        # Chromium's own verdict on the manifest and the service worker.
        cdp = context.new_cdp_session(page)
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == []

        cached: list[str] = page.evaluate(
            """async () => {
                const urls = [];
                for (const name of await caches.keys()) {
                    const cache = await caches.open(name);
                    for (const request of await cache.keys()) {
                        urls.push(new URL(request.url).pathname);
                    }
                }
                return urls;
            }"""
        )
        assert {"/", "/static/js/app.js", "/static/vendor/uplot/uPlot.iife.min.js"} <= set(cached)
        assert [url for url in cached if url.startswith("/api/")] == []

        # Offline: the shell opens from the cache and says what is going on.
        context.set_offline(True)
        page.reload()
        expect(page.locator(".brand")).to_be_visible()
        expect(page.get_by_role("heading", name="Not connected")).to_be_visible()
        expect(page.locator("#offline")).to_be_visible()
        # Online again, it carries on where it was.
        context.set_offline(False)
        page.get_by_role("button", name="Try again").click()
        expect(page.get_by_role("heading", name="My energy")).to_be_visible()
        expect(page.locator("#offline")).to_be_hidden()
        own = (cloud.url + "/", cloud.url.replace("http", "ws") + "/")
        assert [url for url in requests if not url.startswith(own)] == []
    finally:
        context.close()
