"""Settings: the file, then secrets, then ``AI_ADMIN_*`` variables, then flags; each mistake
named on one line; the file found without being named, the secrets read from a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_admin import config as config_module
from ai_admin.config import ConfigError, Settings, load_settings

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "ai-admin.toml"


@pytest.fixture(autouse=True)
def _no_file_or_secret_of_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The places searched by default point into this test's empty directory, so a
    configuration or secret installed on the machine running the tests changes nothing."""
    nowhere = tmp_path / "machine"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(nowhere / "xdg-config"))
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG_FILE", nowhere / "etc" / "config.toml")
    monkeypatch.setattr(config_module, "DEFAULT_SECRETS_DIR", nowhere / "run-secrets")


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


# --- the file found without being named --------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_CONFIG_HOME/ai-admin/config.toml`` setting port 9001."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return _write(tmp_path / "xdg" / "ai-admin" / "config.toml", "port = 9001\n")


@pytest.fixture
def system_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system-wide file (``/etc/ai-admin/config.toml``, here in ``tmp_path``): port 9002."""
    path = _write(tmp_path / "etc" / "ai-admin" / "config.toml", "port = 9002\nmax_retries = 7\n")
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG_FILE", path)
    return path


def test_the_users_file_is_read_without_being_named(user_file: Path, system_file: Path) -> None:
    settings = load_settings()
    assert settings.port == 9001
    assert settings.max_retries == 3  # the files are not merged: the first found is the file
    assert settings.config_file == user_file


def test_the_system_file_is_read_when_the_user_has_none(system_file: Path) -> None:
    settings = load_settings()
    assert (settings.port, settings.max_retries) == (9002, 7)
    assert settings.config_file == system_file


def test_a_relative_xdg_config_home_is_ignored_for_the_home_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The XDG base directory specification: a relative path in the variable is invalid."""
    home_file = _write(tmp_path / "home" / ".config" / "ai-admin" / "config.toml", "port = 9003\n")
    _write(tmp_path / "relative" / "ai-admin" / "config.toml", "port = 9004\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")
    assert load_settings().config_file == home_file


def test_a_named_file_wins_over_the_files_found(
    user_file: Path, system_file: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_ADMIN_CONFIG", str(config_file))
    assert load_settings().port == 9000
    assert load_settings(system_file).port == 9002  # --config wins over AI_ADMIN_CONFIG


def test_no_file_anywhere_means_the_defaults() -> None:
    settings = load_settings()
    assert settings.config_file is None
    assert settings.model_dump() == Settings().model_dump()


def test_a_found_file_is_checked_like_a_named_one(user_file: Path) -> None:
    user_file.write_text("port = 9001\nmax_concurent = 2\n")
    with pytest.raises(ConfigError, match="max_concurent: unknown setting"):
        load_settings()


# --- the secrets directory ---------------------------------------------------------------


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A secrets directory named by ``AI_ADMIN_SECRETS_DIR``."""
    path = tmp_path / "secrets"
    path.mkdir()
    monkeypatch.setenv("AI_ADMIN_SECRETS_DIR", str(path))
    return path


def test_the_token_is_read_from_the_secrets_directory(secrets: Path) -> None:
    (secrets / "ai_admin_token").write_text("token-from-a-secret-file\n")
    (secrets / "ai_admin_read_only_tokens").write_text('["reader-token-one"]')
    settings = load_settings()
    assert settings.token is not None
    assert settings.token.get_secret_value() == "token-from-a-secret-file"  # newline dropped
    assert [t.get_secret_value() for t in settings.read_only_tokens] == ["reader-token-one"]


def test_run_secrets_is_read_when_no_directory_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_secrets = tmp_path / "run-secrets"
    _write(run_secrets / "ai_admin_token", "token-from-run-secrets")
    monkeypatch.setattr(config_module, "DEFAULT_SECRETS_DIR", run_secrets)
    token = load_settings().token
    assert token is not None
    assert token.get_secret_value() == "token-from-run-secrets"


def test_secrets_win_over_the_file_and_lose_to_the_environment(
    secrets: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets / "ai_admin_port").write_text("9100")
    (secrets / "ai_admin_max_concurrent").write_text("5")
    monkeypatch.setenv("AI_ADMIN_MAX_CONCURRENT", "6")
    settings = load_settings(config_file)
    assert settings.port == 9100  # the file says 9000
    assert settings.max_concurrent == 6  # the secret says 5
    assert settings.log_level == "DEBUG"  # only in the file


def test_a_misspelled_secret_file_is_named_and_other_programs_files_are_left_alone(
    secrets: Path,
) -> None:
    (secrets / "postgres_password").write_text("not ours")
    assert load_settings().token is None
    (secrets / "ai_admin_tokn").write_text("token-in-a-misspelled-file")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        f"{secrets / 'ai_admin_tokn'}: unknown setting (config/ai-admin.toml lists the keys)"
    )


def test_a_bad_secret_is_refused_without_its_value(secrets: Path) -> None:
    (secrets / "ai_admin_token").write_text("short")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "at least 8 characters" in str(info.value)
    (secrets / "ai_admin_token").write_text("hunter2-secret")
    (secrets / "ai_admin_read_only_tokens").write_text("hunter2-reader")  # no JSON list
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "read_only_tokens" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_named_secrets_directory_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_ADMIN_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"AI_ADMIN_SECRETS_DIR=.*nowhere: not a directory"):
        load_settings()


def test_named_queues_come_from_their_own_tables(tmp_path: Path) -> None:
    path = tmp_path / "queues.toml"
    path.write_text(
        "max_concurrent = 6\n\n[queues.bulk]\nmax_concurrent = 1\n\n"
        "[queues.default]\nmax_retries = 0\n"
    )
    settings = load_settings(path)
    assert settings.max_concurrent == 6
    assert settings.queues["bulk"].max_concurrent == 1
    assert settings.queues["bulk"].max_queue_size is None  # the agent's
    assert settings.queues["default"].max_retries == 0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[queues.Bulk]\nmax_concurrent = 1\n", "queues.Bulk"),
        ("[queues.bulk]\nmax_concurent = 1\n", "max_concurent"),
        ("[queues.bulk]\nmax_concurrent = 0\n", "queues.bulk.max_concurrent"),
    ],
)
def test_a_wrong_queue_table_is_named(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "bad-queue.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert named in str(info.value)
