"""Settings: the file, then ``AI_ADMIN_*`` variables, then flags; each mistake named on one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_admin.config import ConfigError, Settings, load_settings

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "ai-admin.toml"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "ai-admin.toml"
    path.write_text('max_concurrent = 3\nport = 9000\nlog_level = "DEBUG"\n')
    return path


def test_the_file_sets_values_and_the_rest_keep_their_defaults(config_file: Path) -> None:
    settings = load_settings(config_file)
    assert settings.max_concurrent == 3
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.max_queue_size == Settings.model_fields["max_queue_size"].default


def test_the_environment_overrides_the_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_ADMIN_PORT", "9100")
    settings = load_settings(config_file)
    assert settings.port == 9100
    assert settings.max_concurrent == 3  # not in the environment: the file's value


def test_flags_override_the_environment_and_none_flags_are_ignored(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_ADMIN_PORT", "9100")
    monkeypatch.setenv("AI_ADMIN_MAX_CONCURRENT", "5")
    settings = load_settings(config_file, overrides={"port": 9200, "max_concurrent": None})
    assert settings.port == 9200
    assert settings.max_concurrent == 5


def test_ai_admin_config_names_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_ADMIN_CONFIG", str(config_file))
    assert load_settings().port == 9000


def test_without_a_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = load_settings()
    assert settings.port == 8060
    assert settings.max_concurrent == 4
    assert settings.data_dir == tmp_path / "xdg" / "ai-admin"
    assert settings.db_path == tmp_path / "xdg" / "ai-admin" / "ai-admin.db"


def test_the_shipped_config_file_loads_and_matches_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert load_settings(SHIPPED_CONFIG).model_dump() == load_settings().model_dump()


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("max_concurent = 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "max_concurent" in message
    assert "unknown setting" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("line", "key", "shown"),
    [
        ("max_concurrent = 0", "max_concurrent", "0"),
        ('max_concurrent = "lots"', "max_concurrent", "'lots'"),
        ("port = 70000", "port", "70000"),
        ('log_format = "xml"', "log_format", "'xml'"),
        ("retry_jitter = 1.5", "retry_jitter", "1.5"),
    ],
)
def test_a_wrong_value_is_one_line_naming_key_and_value(
    tmp_path: Path, line: str, key: str, shown: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{key} = {shown}: ")


def test_a_wrong_value_from_the_environment_is_named_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AI_ADMIN_PORT", "abc")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith("port = 'abc': ")


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("max_concurrent = 0\nport = -1\nbogus = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("max_concurrent = 0: ") for line in lines)
    assert any(line.startswith("port = -1: ") for line in lines)
    assert any(line.startswith("bogus: unknown setting") for line in lines)


@pytest.mark.parametrize(
    ("line", "key"),
    [('token = ["hunter2-secret"]', "token"), ('read_only_tokens = "hunter2-secret"', "read_only")],
)
def test_a_bad_token_is_reported_without_its_value(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert key in str(info.value)
    assert "hunter2-secret" not in str(info.value)


def test_the_retry_cap_must_cover_the_base(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("retry_base_s = 10\nretry_cap_s = 5\n")
    with pytest.raises(ConfigError, match="retry_cap_s must be >= retry_base_s"):
        load_settings(path)


def test_a_missing_or_malformed_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nowhere.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = [\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(broken)


def test_misspelled_environment_variable_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_ADMIN_PORTT", "9000")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "AI_ADMIN_PORTT: unknown setting" in str(err.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AI_ADMIN_RETRY_CAP_S", "inf"),
        ("AI_ADMIN_DEFAULT_TIMEOUT_S", "nan"),
        ("AI_ADMIN_TOKEN", ""),
        ("AI_ADMIN_TOKEN", "   "),
        ("AI_ADMIN_READ_ONLY_TOKENS", '[""]'),
    ],
)
def test_values_that_would_disable_a_limit_or_a_token_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError):
        load_settings()


@pytest.mark.parametrize("key", ["token", "read_only_tokens"])
def test_a_token_too_short_to_be_secret_is_refused(tmp_path: Path, key: str) -> None:
    value: object = "short" if key == "token" else ["short"]
    with pytest.raises(ConfigError, match="at least 8 characters"):
        load_settings(overrides={key: value, "data_dir": tmp_path})
