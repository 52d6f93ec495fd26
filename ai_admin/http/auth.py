"""Who may do what over HTTP: bearer tokens, compared in constant time.

The operator token comes from ``AI_ADMIN_TOKEN`` / the configuration, or is generated on first
start into ``<data_dir>/token`` (mode 0600, the directory 0700) and printed once; a token file
that other users may read is refused. Read-only tokens may run commands marked read-only; the
operator token may run everything. Only ``/health`` and ``/openapi.json`` are open
(``route_table.OPEN_PATHS``).

The tokens never show: not in a repr, not in the log (``ai_admin.logging.hide``), and a
presented value that is no text a token could be (bytes that are not UTF-8, control
characters, a huge value) is simply not a valid token.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ai_admin.config import MIN_TOKEN_CHARS, Settings
from ai_admin.logging import hide
from ai_admin.private_files import FILE_MODE, private_dir

TOKEN_FILE = "token"  # noqa: S105 - a file name
# Longer than any token anyone configures; a longer value is refused before it is compared.
MAX_TOKEN_CHARS = 4096


class InsecureListen(Exception):
    """Refuse to start when the tokens could be missing or known to others; the message is one
    line naming what to fix."""


class InsecureTokenFile(InsecureListen):
    """The token file is readable or writable by other users."""


@dataclass(frozen=True)
class Tokens:
    operator: str
    read_only: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Tokens(operator=***, read_only={len(self.read_only)} tokens)"

    def access(self, presented: str) -> str | None:
        """ "write", "read", or None for an unknown or malformed token."""
        given = _token_bytes(presented)
        if given is None:
            return None
        if hmac.compare_digest(given, self.operator.encode()):
            return "write"
        # Check every read-only token so the time does not tell which one matched.
        matched = False
        for token in self.read_only:
            matched |= hmac.compare_digest(given, token.encode())
        return "read" if matched else None


def _token_bytes(presented: str) -> bytes | None:
    """The presented token as UTF-8, or None if it cannot be one.

    aiohttp decodes header bytes that are not UTF-8 into lone surrogates, which do not encode
    back; control characters and huge values are no token either."""
    if len(presented) > MAX_TOKEN_CHARS or not presented.isprintable():
        return None
    try:
        return presented.encode()
    except UnicodeEncodeError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_tokens(settings: Settings) -> tuple[Tokens, bool]:
    """The tokens to accept, and whether the operator token was generated just now.

    From here on the log hides them (``ai_admin.logging.hide``)."""
    tokens, generated = _load(settings)
    hide(tokens.operator, *tokens.read_only)
    return tokens, generated


def _load(settings: Settings) -> tuple[Tokens, bool]:
    read_only = tuple(t.get_secret_value() for t in settings.read_only_tokens)
    if settings.token is not None:
        return Tokens(settings.token.get_secret_value(), read_only), False
    if not _is_loopback(settings.host):
        raise InsecureListen(
            f"refusing to listen on {settings.host} without a token: set AI_ADMIN_TOKEN "
            "(or `token` in the configuration), or listen on 127.0.0.1"
        )
    path = Path(settings.data_dir) / TOKEN_FILE
    token = _read_token_file(path)
    if token is not None:
        return Tokens(token, read_only), False
    return Tokens(_create_token_file(path), read_only), True


def _read_token_file(path: Path) -> str | None:
    """The saved token, or None if there is no token file. A file other users may read or
    write is refused: anyone who read it holds the operator's power."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)  # a FIFO must not hang
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InsecureTokenFile(f"the token file {path} is not a regular file: remove it")
        if mode & 0o077:
            raise InsecureTokenFile(
                f"the token file {path} is open to other users (mode "
                f"{stat.S_IMODE(mode):04o}): run `chmod 600 {path}`, or delete it to generate "
                "a new token"
            )
        token = f.read().strip()
    if not token:
        raise InsecureListen(f"the token file {path} is empty: delete it to generate a new one")
    if len(token) < MIN_TOKEN_CHARS:
        raise InsecureListen(
            f"the token in {path} is shorter than {MIN_TOKEN_CHARS} characters: delete the "
            "file to generate a new one"
        )
    return token


def _create_token_file(path: Path) -> str:
    private_dir(path.parent)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
