"""Which agent a client command talks to, and with which token.

The URL is ``--url``, else the address the agent's settings give (``host`` and ``port`` from
the configuration file, secrets and ``AI_ADMIN_*`` variables, as ``ai-admin serve`` reads
them; an agent listening on every interface is asked on loopback), which is
``http://127.0.0.1:8060`` when nothing is configured. The token is ``--token``, else
``AI_ADMIN_TOKEN``, else the configured ``token``, else the token file the agent generated in
its data directory (``<data_dir>/token``).

The settings (pydantic, about a tenth of a second to load) are read only when ``--url`` or
the token is missing: a command given both starts without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ai_admin.cli.exits import CliFailure, ExitCode

if TYPE_CHECKING:
    from ai_admin.config import Settings

__all__ = ["NO_TOKEN", "TOKEN_ENV", "Target", "resolve"]

TOKEN_ENV = "AI_ADMIN_TOKEN"  # noqa: S105 - a variable's name
NO_TOKEN = "none"  # noqa: S105 - where no token came from
FROM_FLAG = "--token"
_ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped away


@dataclass(frozen=True)
class Target:
    """An agent's base URL and the token to present (None: none was found)."""

    url: str
    token: str | None
    token_from: str  # where the token came from, for `config show` and error advice

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, token=***, token_from={self.token_from!r})"


def resolve(url: str | None, token: str | None, config: Path | None) -> Target:
    """The target of ``--url``, ``--token`` and ``--config`` (each None when not given)."""
    if token:
        token_from = FROM_FLAG
    elif os.environ.get(TOKEN_ENV):
        token, token_from = os.environ[TOKEN_ENV].strip(), TOKEN_ENV
    else:
        token_from = NO_TOKEN
    if url is not None and token:
        return Target(url.rstrip("/"), token, token_from)
    settings = _settings(config)
    if url is None:
        url = _url_of(settings)
    if not token:
        token, token_from = _configured_token(settings)
    return Target(url.rstrip("/"), token, token_from)


def _settings(config: Path | None) -> Settings:
    from ai_admin.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        raise CliFailure(
            "CLIENT_CONFIGURATION_ERROR",
            "; ".join(lines),
            ExitCode.USAGE,
            [
                "Fix the configuration, or give the agent's address and token with --url and "
                "--token."
            ],
        ) from None


def _url_of(settings: Settings) -> str:
    host = _ANY_ADDRESS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _configured_token(settings: Settings) -> tuple[str | None, str]:
    if settings.token is not None:
        return settings.token.get_secret_value(), "configuration"
    from ai_admin.http.auth import TOKEN_FILE

    path = settings.data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except OSError:
        return None, NO_TOKEN
    return (token, f"token file {path}") if token else (None, NO_TOKEN)
