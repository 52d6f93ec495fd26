"""Settings, read in one place: the TOML file, then ``AI_ADMIN_*`` variables, then flags.

A misspelled key or a wrong value stops start-up with one line per problem naming the key, the
value and what is allowed; the agent never runs half-configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "AI_ADMIN_"
CONFIG_ENV = "AI_ADMIN_CONFIG"
MIN_TOKEN_CHARS = 8  # shorter is guessable, and too short to hide in the log


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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: flags (init kwargs), then the environment, then the file.
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


class ConfigError(Exception):
    """Raised with every problem on its own line: ``key = value: what is allowed``."""


def load_settings(
    config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from file, environment and flags (``overrides``; None values ignored).

    ``config_file`` defaults to ``$AI_ADMIN_CONFIG``; a file named but missing is an error.
    """
    _refuse_unknown_variables()
    file = config_file or os.environ.get(CONFIG_ENV)
    if file is not None and not Path(file).is_file():
        raise ConfigError(f"config file {file}: not found")
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings_cls = Settings
    if file is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": Path(file)})
        settings_cls = cast(type[Settings], type("Settings", (Settings,), {"model_config": config}))
    try:
        return settings_cls(**flags)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(f"config file {file}: {exc}") from None


def _refuse_unknown_variables() -> None:
    """A misspelled variable is an error, as a misspelled key in the file is."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_ENV}
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise ConfigError(
            "\n".join(
                f"{k}: unknown setting (config/ai-admin.toml lists the keys)" for k in unknown
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
