"""Settings, read in one place: the TOML file, then the secrets directory, then ``AI_ADMIN_*``
variables, then flags (each later source wins).

The file is the one named (``--config``, else ``$AI_ADMIN_CONFIG``), else the first that exists of
``$XDG_CONFIG_HOME/ai-admin/config.toml`` (``~/.config/ai-admin/config.toml``) and
``/etc/ai-admin/config.toml``; none at all means the defaults. The secrets directory
(``$AI_ADMIN_SECRETS_DIR``, else ``/run/secrets`` where Docker and Compose mount secrets) holds
one file per setting, named ``ai_admin_<key>`` (``/run/secrets/ai_admin_token``).

A misspelled key, variable or secret file, or a wrong value stops start-up with one line per
problem naming the key, the value and what is allowed; the agent never runs half-configured.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "AI_ADMIN_"
CONFIG_ENV = "AI_ADMIN_CONFIG"
SECRETS_DIR_ENV = "AI_ADMIN_SECRETS_DIR"
# Where the configuration file is looked for when none is named, after $XDG_CONFIG_HOME's.
SYSTEM_CONFIG_FILE = Path("/etc/ai-admin/config.toml")
# Where Docker (`docker run --secret` in a swarm, Compose `secrets:`) mounts secret files.
DEFAULT_SECRETS_DIR = Path("/run/secrets")
MIN_TOKEN_CHARS = 8  # shorter is guessable, and too short to hide in the log


DEFAULT_QUEUE = "default"
QueueName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="A queue's name: lower-case letters, digits, '_', '.', '-' (up to 64).",
    ),
]


class QueueSettings(BaseModel):
    """One named queue's own limits (``[queues.NAME]``). A limit left out is the agent's setting
    of the same name; ``max_concurrent`` of all queues together stays within the agent's."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent: int | None = Field(None, ge=1, le=256)
    max_queue_size: int | None = Field(None, ge=1)
    default_timeout_s: float | None = Field(None, gt=0)
    max_retries: int | None = Field(None, ge=0, le=100)


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "ai-admin"


class Settings(BaseSettings):
    """Every key is documented in ``config/ai-admin.toml``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    # normal: a commit survives the agent's crash (kill -9), not the machine's; full: also a
    # power loss, at the cost of an fsync per commit (made on a writer thread, off the loop).
    db_synchronous: Literal["normal", "full"] = "normal"
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8060, ge=0, le=65535)

    max_concurrent: int = Field(4, ge=1, le=256)
    max_queue_size: int = Field(10_000, ge=1)
    default_timeout_s: float = Field(3600.0, gt=0)
    max_retries: int = Field(3, ge=0, le=100)
    retry_base_s: float = Field(2.0, ge=0)
    retry_factor: float = Field(2.0, ge=1)
    retry_cap_s: float = Field(300.0, ge=0)
    retry_jitter: float = Field(0.2, ge=0, le=1)
    task_log_lines: int = Field(200, ge=0, le=100_000)
    progress_write_interval_s: float = Field(1.0, ge=0)
    shutdown_grace_s: float = Field(30.0, ge=0)

    # Schedules (docs/schedules.md): firings missed while the agent was down coalesce into one
    # if the latest of them is no older than this; older ones are skipped and counted.
    schedule_misfire_grace_s: int = Field(3600, ge=1)
    # Housekeeping: finished tasks older than retention_max_age_s (from their end) and beyond
    # the newest retention_max_finished are deleted every housekeeping_interval_s, and the
    # space goes back to the file system. 0 or null turns a rule (or housekeeping) off.
    retention_max_age_s: float | None = Field(30 * 86_400.0, ge=0)
    retention_max_finished: int | None = Field(10_000, ge=0)
    housekeeping_interval_s: float | None = Field(3600.0, ge=0)
    # The queue's counters are kept every stats_snapshot_interval_s (0 or null: never) for
    # stats_history_max_age_s: queue_metrics with historical: true reads trends from them.
    stats_snapshot_interval_s: float | None = Field(300.0, ge=0)
    stats_history_max_age_s: float = Field(30 * 86_400.0, gt=0)
    # Named queues besides "default" (whose own limits may be set here too).
    queues: dict[QueueName, QueueSettings] = Field(default_factory=dict)

    docker_host: str | None = None
    allowed_roots: list[Path] = Field(default_factory=list)
    allowed_network_modes: list[str] = Field(default_factory=lambda: ["default", "bridge", "none"])

    token: SecretStr | None = None
    read_only_tokens: list[SecretStr] = Field(default_factory=list)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    request_head_timeout_s: float = Field(10.0, gt=0, le=3600)
    max_connections: int = Field(1024, ge=8, le=1_000_000)
    max_event_streams_per_token: int = Field(64, ge=1, le=100_000)
    max_mcp_sessions_per_token: int = Field(16, ge=1, le=10_000)
    max_answer_bytes: int = Field(16 * 1_048_576, ge=65_536, le=1024 * 1_048_576)

    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # The file these settings were read from (None: no file); set by ``load_settings``.
    _config_file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _tokens_not_blank(self) -> Settings:
        tokens = [self.token] if self.token is not None else []
        values = [t.get_secret_value() for t in [*tokens, *self.read_only_tokens]]
        if any(not v.strip() for v in values):
            raise ValueError("tokens must not be empty (unset token to have one generated)")
        if any(len(v) < MIN_TOKEN_CHARS for v in values):
            raise ValueError(f"tokens must have at least {MIN_TOKEN_CHARS} characters")
        return self

    @model_validator(mode="after")
    def _retry_cap_covers_base(self) -> Settings:
        if self.retry_cap_s < self.retry_base_s:
            raise ValueError("retry_cap_s must be >= retry_base_s")
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "ai-admin.db"

    @property
    def config_file(self) -> Path | None:
        """The configuration file these settings were read from, or None if none was."""
        return self._config_file

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: flags (init kwargs), the environment, secrets, then the file.
        # The secrets source reads nothing unless ``load_settings`` gave it a directory.
        return (
            init_settings,
            env_settings,
            file_secret_settings,
            TomlConfigSettingsSource(settings_cls),
        )


class ConfigError(Exception):
    """Raised with every problem on its own line: ``key = value: what is allowed``."""


def load_settings(
    config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from file, secrets, environment and flags (``overrides``; None values
    ignored).

    The file is ``config_file``, else ``$AI_ADMIN_CONFIG`` (either one, named but missing, is an
    error), else the first of ``config_search_path()`` that exists. Secrets are read from
    ``secrets_dir()`` when it exists.
    """
    _refuse_unknown_variables()
    file = find_config_file(config_file)
    secrets = secrets_dir()
    if secrets is not None:
        _refuse_unknown_secret_files(secrets)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings_cls = Settings
    if file is not None or secrets is not None:
        config = SettingsConfigDict(
            **{**Settings.model_config, "toml_file": file, "secrets_dir": secrets}
        )
        settings_cls = cast(type[Settings], type("Settings", (Settings,), {"model_config": config}))
    try:
        settings = settings_cls(**flags)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:  # a secret file that cannot be parsed (a list that is no JSON)
        raise ConfigError(f"secrets directory {secrets}: {exc}") from None
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(f"config file {file}: {exc}") from None
    settings._config_file = file
    return settings


def config_search_path() -> list[Path]:
    """Where a configuration file is looked for when none is named, first match wins:
    ``$XDG_CONFIG_HOME/ai-admin/config.toml`` (``~/.config/...`` when the variable is unset or
    not absolute, as the XDG base directory specification says), then ``/etc/ai-admin/config.toml``.
    """
    found: list[Path] = []
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(xdg):
        found.append(Path(xdg) / "ai-admin" / "config.toml")
    else:
        # No home directory (a user unknown to /etc/passwd, no $HOME): no user file.
        with contextlib.suppress(RuntimeError):
            found.append(Path.home() / ".config" / "ai-admin" / "config.toml")
    found.append(SYSTEM_CONFIG_FILE)
    return found


def find_config_file(config_file: str | Path | None = None) -> Path | None:
    """The configuration file to read: the one named, else the first found, else None."""
    named = config_file or os.environ.get(CONFIG_ENV)
    if named:
        if not Path(named).is_file():
            raise ConfigError(f"config file {named}: not found")
        return Path(named)
    return next((path for path in config_search_path() if path.is_file()), None)


def secrets_dir() -> Path | None:
    """The secrets directory to read (``$AI_ADMIN_SECRETS_DIR``, else ``/run/secrets``), or None
    when the default one does not exist. A directory named by the variable must exist."""
    named = os.environ.get(SECRETS_DIR_ENV)
    if named:
        if not Path(named).is_dir():
            raise ConfigError(f"{SECRETS_DIR_ENV}={named}: not a directory")
        return Path(named)
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


def _refuse_unknown_variables() -> None:
    """A misspelled variable is an error, as a misspelled key in the file is."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known |= {CONFIG_ENV, SECRETS_DIR_ENV}
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise ConfigError(
            "\n".join(
                f"{k}: unknown setting (config/ai-admin.toml lists the keys)" for k in unknown
            )
        )


def _refuse_unknown_secret_files(directory: Path) -> None:
    """A misspelled secret file (``ai_admin_tokn``) is an error too, not a silently unset token.

    Files without the ``ai_admin_`` prefix belong to other programs and are left alone; the
    setting names are not secret, so the message may name the file.
    """
    known = {ENV_PREFIX.lower() + name for name in Settings.model_fields}
    prefix = ENV_PREFIX.lower()
    try:
        names = sorted(entry.name for entry in directory.iterdir())
    except OSError as exc:
        raise ConfigError(f"secrets directory {directory}: {exc.strerror}") from None
    unknown = [n for n in names if n.lower().startswith(prefix) and n.lower() not in known]
    if unknown:
        raise ConfigError(
            "\n".join(
                f"{directory / n}: unknown setting (config/ai-admin.toml lists the keys)"
                for n in unknown
            )
        )


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown setting (config/ai-admin.toml lists the keys)")
        elif "token" in key or isinstance(value, Mapping):
            lines.append(f"{key}: {err['msg']}")
        else:
            lines.append(f"{key} = {value!r}: {err['msg']}")
    return "\n".join(lines)
