"""The routes that serve the web app: the shell (``index.html``) on the path of every screen, the
service worker, the manifest and the static assets under ``/static``.

Everything is served with ``Cache-Control: no-cache`` (the browser revalidates, cheaply, by
ETag), so that a new release shows at once; the service worker keeps its own copy of the shell
for offline use, named after a hash of the files, so that a new release also replaces that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

logger = logging.getLogger(__name__)

_PACKAGE = Path(str(resources.files("ecommunity.web")))
STATIC_DIR = _PACKAGE / "static"
STATIC_PREFIX = "/static"
#: The paths of the app's screens: each serves the shell, whose router shows the screen.
#: ``/pair?code=…`` is the verification URI the cloud gives gateways (RFC 8628).
SCREENS = (
    "/",
    "/login",
    "/signup",
    "/energy",
    "/gateways",
    "/pair",
    "/account",
    "/communities",
    "/communities/compare",
    "/my-community",
    "/notifications",
    "/operate",
    "/operate/new",
)
#: Screens of one community, by its id: its page, and its operator's screen.
ID_SCREENS = ("/communities/{community_id:int}", "/operate/{community_id:int}")
#: Content types by file suffix; the system's MIME table is not consulted, since a module
#: script served with a wrong type does not run.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
    ".md": "text/markdown; charset=utf-8",
}
#: For files without a known suffix (``LICENSE``).
DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
#: What the service worker keeps for offline use (not the licence and read-me files).
_SHELL_SUFFIXES = frozenset({".js", ".css", ".svg", ".png"})
#: The page loads nothing from elsewhere: scripts, styles, images and connections (fetch and
#: the live WebSocket: CSP 3 lets 'self' match ws:// and wss:// of the same host) stay on
#: this origin, and no other site may frame it.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_COMMON_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def content_type(path: str | os.PathLike[str]) -> str:
    return CONTENT_TYPES.get(Path(path).suffix, DEFAULT_CONTENT_TYPE)


class _Assets(StaticFiles):
    """Starlette's static files (ETag, ranges, no path traversal) with our types and headers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["content-type"] = content_type(full_path)
        response.headers.update(_COMMON_HEADERS)
        return response


@dataclass(frozen=True)
class WebBuild:
    """The files of this release, read once when the app is built."""

    #: A hash of every file: names the service worker's cache.
    build_id: str
    shell_html: bytes
    manifest: bytes
    service_worker: bytes
    #: The URLs the service worker caches for offline use.
    shell_urls: tuple[str, ...]


def read_build() -> WebBuild:
    """Read the app's files and hash them."""
    digest = hashlib.sha256()
    shell_urls = ["/", "/manifest.webmanifest"]
    for path in sorted(STATIC_DIR.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(STATIC_DIR).as_posix()
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
        if path.suffix in _SHELL_SUFFIXES:
            shell_urls.append(f"{STATIC_PREFIX}/{relative}")
    parts = {
        name: (_PACKAGE / name).read_bytes() for name in ("index.html", "manifest.webmanifest")
    }
    template = (_PACKAGE / "sw.js").read_bytes()
    for name, data in sorted(parts.items()):
        digest.update(name.encode() + b"\0" + data + b"\0")
    digest.update(template)
    build_id = digest.hexdigest()[:16]
    service_worker = template.replace(b'"__BUILD__"', json.dumps(build_id).encode()).replace(
        b'"__SHELL__"', json.dumps(shell_urls).encode()
    )
    return WebBuild(
        build_id=build_id,
        shell_html=parts["index.html"],
        manifest=parts["manifest.webmanifest"],
        service_worker=service_worker,
        shell_urls=tuple(shell_urls),
    )


def make_router(build: WebBuild) -> APIRouter:
    """The shell on every screen's path, ``/sw.js`` and ``/manifest.webmanifest``."""
    router = APIRouter(include_in_schema=False)
    html_headers = _COMMON_HEADERS | {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
    }

    def shell() -> Response:
        return Response(build.shell_html, media_type=CONTENT_TYPES[".html"], headers=html_headers)

    def service_worker() -> Response:
        return Response(
            build.service_worker, media_type=CONTENT_TYPES[".js"], headers=_COMMON_HEADERS
        )

    def manifest() -> Response:
        return Response(
            build.manifest, media_type=CONTENT_TYPES[".webmanifest"], headers=_COMMON_HEADERS
        )

    for path in (*SCREENS, *ID_SCREENS):
        router.add_api_route(path, shell, methods=["GET", "HEAD"])
    router.add_api_route("/sw.js", service_worker, methods=["GET", "HEAD"])
    router.add_api_route("/manifest.webmanifest", manifest, methods=["GET", "HEAD"])
    return router


def mount_web(app: FastAPI) -> None:
    """Serve the web app from ``app``: the screens' paths, ``/sw.js``, ``/manifest.webmanifest``
    and ``/static``."""
    build = read_build()
    app.include_router(make_router(build))
    app.mount(STATIC_PREFIX, _Assets(directory=STATIC_DIR), name="static")
    logger.debug("web app %s: %d files for offline use", build.build_id, len(build.shell_urls))
