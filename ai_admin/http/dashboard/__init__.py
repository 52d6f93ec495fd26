"""The web dashboard: one page at ``/`` and its scripts, style and icon under ``/ui/``.

The page holds no data, so it is served without a token; everything it shows it reads from the
agent's API with the bearer token the operator gives it (``app.js``). The files are plain ES
modules and CSS kept in this package (no build step, nothing from another host), served from a
fixed table (``assets.ASSETS``) with a strict Content-Security-Policy (``assets.SECURITY_HEADERS``)
by ``serve.dashboard_middleware``, outside the API's route table: the OpenAPI document describes
the API, not the page. ``origin.own_origin_guard`` lets the page's own requests through the
Origin check.
"""

from __future__ import annotations

from ai_admin.http.dashboard.origin import own_origin_guard
from ai_admin.http.dashboard.serve import dashboard_middleware

__all__ = ["dashboard_middleware", "own_origin_guard"]
