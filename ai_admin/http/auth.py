"""Who may do what over HTTP: bearer tokens, compared in constant time.

The operator token comes from ``AI_ADMIN_TOKEN`` / the configuration, or is generated on first
start into ``<data_dir>/token`` (mode 0600) and printed once. Read-only tokens may run commands
marked read-only; the operator token may run everything. Only ``/health`` is open.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ai_admin.config import Settings

TOKEN_FILE = "token"  # noqa: S105 - a file name


class InsecureListen(Exception):
    """Refuse to serve a non-loopback address without a configured token."""


@dataclass(frozen=True)
class Tokens:
    operator: str
    read_only: tuple[str, ...] = ()

    def access(self, presented: str) -> str | None:
        """ "write", "read", or None for an unknown token."""
        given = presented.encode()
        if hmac.compare_digest(given, self.operator.encode()):
            return "write"
        # Check every read-only token so the time does not tell which one matched.
        matched = False
        for token in self.read_only:
            matched |= hmac.compare_digest(given, token.encode())
        return "read" if matched else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_tokens(settings: Settings) -> tuple[Tokens, bool]:
    """The tokens to accept, and whether the operator token was generated just now."""
    read_only = tuple(t.get_secret_value() for t in settings.read_only_tokens)
    if settings.token is not None:
        return Tokens(settings.token.get_secret_value(), read_only), False
    if not _is_loopback(settings.host):
        raise InsecureListen(
            f"refusing to listen on {settings.host} without a token: set AI_ADMIN_TOKEN "
            "(or `token` in the configuration), or listen on 127.0.0.1"
        )
    path = Path(settings.data_dir) / TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if not token:
            raise InsecureListen(f"the token file {path} is empty: delete it to generate a new one")
        return Tokens(token, read_only), False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return Tokens(token, read_only), True
