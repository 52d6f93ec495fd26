"""The dashboard's files, read once from the package, and the headers they are served with.

Only the paths in ``ASSETS`` are served: the table is fixed, so no request path ever becomes a
file name (no traversal, no listing, nothing else of the package). Each file carries an ETag of
its content and ``Cache-Control: no-cache``: the browser asks again on every load and gets a
``304`` while the file is unchanged, so a new version of the agent shows at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "FOLDER", "SECURITY_HEADERS", "Asset", "asset"]

# Everything from the agent itself: no inline script or style, no frames, no plugins (the
# page's forms are sent by its script, with fetch, to the agent).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }
)

# Request path -> (file in this package, its media type).
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/api.js": ("api.js", "text/javascript; charset=utf-8"),
    "/ui/events.js": ("events.js", "text/javascript; charset=utf-8"),
    "/ui/render.js": ("render.js", "text/javascript; charset=utf-8"),
    "/ui/app.css": ("app.css", "text/css; charset=utf-8"),
    "/ui/icon.svg": ("icon.svg", "image/svg+xml"),
}
ASSETS = frozenset(_FILES)
FOLDER = Path(__file__).parent  # the files ship beside this module, in the wheel too


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str  # a strong validator: quoted, from the content

    def matches(self, if_none_match: str | None) -> bool:
        """The client's cached copy (``If-None-Match``) is this very content."""
        if not if_none_match:
            return False
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return self.etag in tags or "*" in tags


@cache
def asset(path: str) -> Asset | None:
    """The file served at ``path``, or None: nothing outside the table exists."""
    entry = _FILES.get(path)
    if entry is None:
        return None
    name, content_type = entry
    body = (FOLDER / name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, content_type, etag)
