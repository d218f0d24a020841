"""The web app as the cloud serves it: every file with its right content type, the shell on each
screen's path, a service worker and manifest that make it installable, nothing loaded from
elsewhere, and the two dictionaries in step.

Through the real cloud app (``create_app``) on a migrated SQLite file; no browser here (that is
``test_browser_*.py``).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ecommunity.cloud.app import create_app
from ecommunity.cloud.db.engine import migrate
from ecommunity.cloud.settings import CloudSettings
from ecommunity.web import SCREENS
from ecommunity.web.routes import STATIC_DIR

JS_DIR = STATIC_DIR / "js"
#: Expected types, written out here rather than taken from the code under test.
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/markdown; charset=utf-8",
    "": "text/plain; charset=utf-8",
}
#: Static imports of our modules: ``import x from "./y.js"`` and ``import { a } from "../b.js"``.
IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]+?\s+from\s+)?["']([^"']+)["'];""", re.MULTILINE)
#: An address of another host in our own files (the vendored library is checked in a browser).
FOREIGN_URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("web-cloud")
    settings = CloudSettings(data_dir=data_dir, public_url="http://testserver")
    migrate(settings.effective_database_url)
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def static_files() -> list[Path]:
    return sorted(path for path in STATIC_DIR.rglob("*") if path.is_file())


def url_of(path: Path) -> str:
    return "/static/" + path.relative_to(STATIC_DIR).as_posix()


class _References(HTMLParser):
    """The URLs a page loads: scripts, styles, preloads, icons, images, the manifest."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.preloads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") if tag in ("script", "img") else None
        if tag == "link":
            url = values.get("href")
            if values.get("rel") == "modulepreload" and url:
                self.preloads.append(url)
        if url:
            self.urls.append(url)


def references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


def dictionary(language: str) -> dict[str, str]:
    text = (JS_DIR / "i18n" / f"{language}.js").read_text()
    body = re.search(r"^export default (\{.*\});\s*\Z", text, re.DOTALL | re.MULTILINE)
    assert body, f"{language}.js must be 'export default {{JSON}};'"
    loaded: dict[str, str] = json.loads(body.group(1))
    return loaded


def module_graph(start: Path) -> set[Path]:
    """Every module reachable from ``start`` through static imports (all must exist)."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        assert module.is_file(), f"{module} is imported but does not exist"
        seen.add(module)
        for target in IMPORT.findall(module.read_text()):
            assert target.startswith("."), f"{module.name} imports {target!r}: not a local module"
            todo.append((module.parent / target).resolve())
    return seen


# --- files and types -------------------------------------------------------------------------


def test_every_static_file_is_served_with_its_type(client: TestClient) -> None:
    files = static_files()
    assert len(files) >= 20
    for path in files:
        response = client.get(url_of(path))
        assert response.status_code == 200, url_of(path)
        assert response.headers["content-type"] == TYPES[path.suffix], url_of(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"
        assert response.content == path.read_bytes()
        # Revalidation is cheap: the same file again is a 304 without a body.
        again = client.get(url_of(path), headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304


def test_every_screen_serves_the_shell(client: TestClient) -> None:
    bodies = set()
    for path in SCREENS:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        bodies.add(response.text)
    # A community's page and its operator's screen, by id.
    for path in ("/communities/12", "/operate/3", "/communities/compare?ids=1,2"):
        response = client.get(path)
        assert response.status_code == 200, path
        bodies.add(response.text)
    assert len(bodies) == 1
    assert client.get("/pair?code=ABCD-EFGH").status_code == 200
    assert client.head("/energy").status_code == 200
    for path in ("/communities/abc", "/operate/1/2", "/communities/-1"):
        assert client.get(path).status_code == 404, path


def test_unknown_and_escaping_paths_are_404(client: TestClient) -> None:
    for path in ("/static/nothing.js", "/static/../routes.py", "/static/%2e%2e/routes.py", "/nope"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"


def test_the_api_stays_where_it_was(client: TestClient) -> None:
    assert client.get("/api/v1/me").status_code == 401
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if not path.startswith("/api/v1/")]


# --- the shell loads only from this server ---------------------------------------------------


def test_the_shell_references_only_files_that_are_served(client: TestClient) -> None:
    html = client.get("/").text
    found = references(html)
    assert "/static/js/app.js" in found.urls
    for url in found.urls:
        assert url.startswith("/"), f"{url}: the shell loads from this server only"
        assert not url.startswith("//")
        assert client.get(url).status_code == 200, url


def test_every_module_is_preloaded_and_every_import_exists(client: TestClient) -> None:
    preloads = references(client.get("/").text).preloads
    graph = module_graph((JS_DIR / "app.js").resolve())
    # All modules of the first screen arrive in parallel, not one import after the other.
    assert {url_of(path) for path in graph} == set(preloads)
    assert {path.resolve() for path in JS_DIR.rglob("*.js")} == graph, "a module nobody imports"


def test_our_files_name_no_other_host() -> None:
    ours = [STATIC_DIR / "app.css", *JS_DIR.rglob("*.js"), STATIC_DIR.parent / "index.html"]
    for path in ours:
        assert not FOREIGN_URL.findall(path.read_text()), f"{path.name} refers to another host"


# --- installable: manifest and service worker -------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_manifest_makes_it_installable(client: TestClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] in SCREENS
    assert manifest["name"]
    assert manifest["short_name"]
    sizes = set()
    for icon in manifest["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200, icon["src"]
        assert served.headers["content-type"] == icon["type"]
        if icon["type"] == "image/png":
            width, height = png_size(served.content)
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add(width)
    # Chrome's install criteria: a 192 px and a 512 px icon.
    assert {192, 512} <= sizes


def test_service_worker_caches_the_shell_and_never_the_api(client: TestClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    script = response.text
    assert "__BUILD__" not in script
    assert "__SHELL__" not in script
    listed = re.search(r"^const SHELL = (\[.*\]);$", script, re.MULTILINE)
    assert listed, "the service worker lists the shell"
    shell = json.loads(listed.group(1))
    assert "/" in shell
    assert "/static/js/app.js" in shell
    assert "/static/vendor/uplot/uPlot.iife.min.js" in shell
    assert not [url for url in shell if url.startswith("/api")]
    for url in shell:
        assert client.get(url).status_code == 200, url
    assert 'url.pathname.startsWith("/api/")' in script


def test_the_cache_name_changes_with_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecommunity.web import routes

    before = routes.read_build().build_id
    copy = tmp_path / "static"
    copy.mkdir()
    for path in static_files():
        target = copy / path.relative_to(STATIC_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (copy / "app.css").write_text((STATIC_DIR / "app.css").read_text() + "\n/* changed */\n")
    monkeypatch.setattr(routes, "STATIC_DIR", copy)
    assert routes.read_build().build_id != before


# --- languages and independence --------------------------------------------------------------


def test_both_dictionaries_hold_the_same_texts() -> None:
    english, german = dictionary("en"), dictionary("de")
    assert set(english) == set(german)
    placeholder = re.compile(r"\{(\w+)\}")
    for key in english:
        assert english[key].strip(), key
        assert german[key].strip(), key
        assert set(placeholder.findall(english[key])) == set(placeholder.findall(german[key])), key


def test_every_text_key_used_is_in_the_dictionaries() -> None:
    keys = set(dictionary("en"))
    used: set[str] = set()
    mentioned: set[str] = set()
    for path in [*JS_DIR.rglob("*.js"), STATIC_DIR.parent / "index.html"]:
        text = path.read_text()
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
        used |= set(re.findall(r'data-i18n="([\w.]+)"', text))
        # Keys picked by a condition: t(cond ? "a.b" : "c.d").
        for a, b in re.findall(
            r"""\bt\([^"'()]+\?\s*["']([\w.]+)["']\s*:\s*["']([\w.]+)["']""", text
        ):
            used |= {a, b}
        # Keys built from a range name: t(`chart.earlier.${range}`).
        for prefix in re.findall(r"\bt\(`([\w.]+)\$\{", text):
            used |= {f"{prefix}{name}" for name in ("day", "week", "month", "year")}
        # Any other quoted key (passed on, or chosen in a ternary) counts as used too.
        mentioned |= set(re.findall(r'"([a-z_]+\.[\w.]+)"', text))
    assert used, "no keys found"
    assert used <= keys, f"missing texts: {sorted(used - keys)}"
    assert keys <= used | mentioned, f"texts nobody uses: {sorted(keys - used - mentioned)}"


def test_the_web_package_needs_no_cloud_or_gateway() -> None:
    code = (
        "import sys, ecommunity.web\n"
        "inner = ('ecommunity.cloud', 'ecommunity.gateway')\n"
        "bad = [m for m in sys.modules if m.startswith(inner)]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
