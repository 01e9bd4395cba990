"""The web console's static assets (web/) at /console, for the local runner.

The console is plain files calling only the public API, so any static host can serve it too; here the
runner serves them with exact content types and a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from infra.local_runner.template import ROOT

WEB = ROOT / "web"
PREFIX = "/console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# Scripts only from our own files; email HTML renders in a sandboxed srcdoc frame, which inherits this policy,
# so even a script the sandbox somehow allowed could not run. Inline styles stay allowed because emails
# are styled inline; connect-src is open because the API base URL is configurable (settings dialog).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src *; frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

Response = tuple[int, list[tuple[str, str]], bytes]


def _headers(content_type: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-cache"),
    ]


def _not_found(path: str) -> Response:
    return 404, [("Content-Type", "text/plain; charset=utf-8")], f"no console asset at {path}\n".encode()


def _index() -> Response:
    # Served at /console as well as /console/: the base element makes the page's relative asset URLs resolve
    # under /console/ either way (a static host serves the same file as a directory index, base-less).
    page = (WEB / "index.html").read_bytes().replace(b"<head>", b'<head>\n<base href="/console/">', 1)
    return 200, _headers(CONTENT_TYPES[".html"]), page


def _asset(relative: str) -> Path | None:
    """The file under web/ that `relative` names, or None (hidden files, traversal, unknown types)."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        return None
    candidate = WEB.joinpath(*parts).resolve()
    if not candidate.is_relative_to(WEB.resolve()) or not candidate.is_file():
        return None
    return candidate if candidate.suffix in CONTENT_TYPES else None


def respond(method: str, path: str) -> Response | None:
    """The console's answer to `method path`, or None when the path is not the console's."""
    if method not in ("GET", "HEAD") or not (path == PREFIX or path.startswith(PREFIX + "/")):
        return None
    relative = unquote(path[len(PREFIX) :]).lstrip("/")
    if relative in ("", "index.html"):
        return _index()
    asset = _asset(relative)
    if asset is None:
        return _not_found(path)
    return 200, _headers(CONTENT_TYPES[asset.suffix]), asset.read_bytes()
