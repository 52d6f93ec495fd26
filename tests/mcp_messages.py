"""The MCP messages tests send by hand over HTTP (the SDK's client sends them itself)."""

from __future__ import annotations

from typing import Any

# What a streamable-HTTP client must accept.
ACCEPT = {"Accept": "application/json, text/event-stream"}
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "ai-admin-tests", "version": "1"},
    },
}
