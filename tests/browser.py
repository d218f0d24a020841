"""Real headless Chromium for the UI tests: Debian's ``chromium`` driven by Playwright for Python.

Playwright never downloads a browser here: it launches the system's ``/usr/bin/chromium``
(``apt-get install -y chromium``) through ``executable_path``. Where that is missing the browser
tests skip with a summary line, and with ECOMMUNITY_REQUIRE_SERVICES=1 (CI) they fail.

Fixtures (registered for the whole suite by ``tests/conftest.py``):

- ``browser``: one Chromium per test module. Playwright's sync API runs its own event loop in
  this thread while the browser is open, so ``asyncio.run()`` fails in a module that uses it:
  keep asyncio code out of browser test modules.
- ``page``: a fresh context (no cookies, no cache) at a desktop size; ``phone_page`` the same at
  360 x 740 CSS pixels with touch. Both use Austrian time and record what the page asked for
  and its errors (``page_log(page)``). A failing test leaves a screenshot of its pages.
- ``screenshots``: saves PNGs as test artifacts in ``test-artifacts/screenshots/`` (or
  ``$ECOMMUNITY_TEST_ARTIFACTS/screenshots``).
"""

from __future__ import annotations

import os
import re
import shutil
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.services import services_required

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("ECOMMUNITY_TEST_CHROMIUM", "/usr/bin/chromium")
#: The skip reason starts with this; tests/conftest.py counts such skips in its summary.
CHROMIUM_MISSING = "chromium not found"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
#: Every page waits at most this long for an element or an expectation. [ms]
TIMEOUT_MS = 10_000

_FAILED = pytest.StashKey[bool]()
_LOGS: weakref.WeakKeyDictionary[Page, PageLog] = weakref.WeakKeyDictionary()


def require_chromium() -> str:
    """The path of Debian's chromium; skip (or fail, when services are required) without it."""
    path = shutil.which(CHROMIUM)
    if path is not None:
        return path
    message = (
        f"{CHROMIUM_MISSING} at {CHROMIUM}: the browser tests need Debian's chromium "
        "(apt-get install -y chromium)"
    )
    if services_required():
        pytest.fail(message + " (ECOMMUNITY_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@dataclass
class PageLog:
    """What a page asked for and what went wrong in it."""

    requests: list[str] = field(default_factory=list)  # URLs, WebSockets included
    failed: list[str] = field(default_factory=list)  # requests without an answer
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors

    def foreign(self, origin: str) -> list[str]:
        """Requests to anything but ``origin`` (``http://host:port``; ``ws://`` counts too)."""
        own = (origin + "/", re.sub(r"^http", "ws", origin) + "/")
        return [url for url in self.requests if not url.startswith(own)]


class Screenshots:
    """Saves screenshots as test artifacts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path


def artifacts_directory(config: pytest.Config) -> Path:
    root = os.environ.get("ECOMMUNITY_TEST_ARTIFACTS")
    return Path(root) if root else config.rootpath / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(artifacts_directory(request.config) / "screenshots")


def open_page(browser: Browser, options: dict[str, Any]) -> tuple[BrowserContext, Page]:
    """A page in a context of its own (``options``: DESKTOP, PHONE or Playwright's context
    options), logging its requests and errors (:func:`page_log`)."""
    context = browser.new_context(
        locale="en-GB", timezone_id="Europe/Vienna", service_workers="block", **options
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log = PageLog()
    page.on("request", lambda r: log.requests.append(r.url))
    page.on("websocket", lambda ws: log.requests.append(ws.url))
    page.on("requestfailed", lambda r: log.failed.append(f"{r.url}: {r.failure}"))
    page.on("pageerror", lambda error: log.errors.append(f"uncaught: {error}"))

    def console(message: Any) -> None:
        # A 4xx/5xx answer is logged as "Failed to load resource": the tests judge those
        # by what the page shows, not by the console.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            log.errors.append(f"console: {message.text}")

    page.on("console", console)
    _LOGS[page] = log
    return context, page


def page_log(page: Page) -> PageLog:
    """What ``page`` (from :func:`open_page` or the fixtures) asked for and its errors."""
    return _LOGS[page]


def _page_fixture(
    browser: Browser, request: pytest.FixtureRequest, options: dict[str, Any]
) -> Iterator[Page]:
    context, page = open_page(browser, options)
    try:
        yield page
    finally:
        if request.node.stash.get(_FAILED, False):
            name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
            suffix = "phone" if options is PHONE else "desktop"
            Screenshots(artifacts_directory(request.config) / "screenshots" / "failed").save(
                page, f"{name}-{suffix}"
            )
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page_fixture(browser, request, DESKTOP)


@pytest.fixture
def phone_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page_fixture(browser, request, PHONE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report
