"""Bearer tokens: a malformed value is an unknown token (never an error), the tokens never show,
and the token file is the owner's alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import ai_admin.logging as agent_logging
from ai_admin.config import Settings
from ai_admin.http.auth import (
    MAX_TOKEN_CHARS,
    TOKEN_FILE,
    InsecureListen,
    InsecureTokenFile,
    Tokens,
    load_tokens,
)
from ai_admin.logging import REDACTED, redact

OPERATOR = "operator-token-5d2a9c"
READER = "reader-token-e81f04"
TOKENS = Tokens(OPERATOR, (READER, "second-reader-token"))


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AI_ADMIN_* setting from the shell; the log's hidden values restored afterwards."""
    for name in [n for n in os.environ if n.startswith("AI_ADMIN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(agent_logging, "_hidden", ())


def test_tokens_grant_write_read_or_nothing() -> None:
    assert TOKENS.access(OPERATOR) == "write"
    assert TOKENS.access(READER) == "read"
    assert TOKENS.access("second-reader-token") == "read"
    assert TOKENS.access(OPERATOR + "x") is None
    assert TOKENS.access("") is None


@pytest.mark.parametrize(
    "presented",
    [
        OPERATOR + "\udcff",  # what aiohttp makes of a byte that is not UTF-8
        "\udcc3\udca9" + OPERATOR,
        "\ud800",
        OPERATOR + "\x00",
        OPERATOR + "\x01",
        OPERATOR[:5] + "\x85" + OPERATOR[5:],
        OPERATOR + "\x7f",
        OPERATOR + "\t",
        "A" * (MAX_TOKEN_CHARS + 1),
        OPERATOR * (MAX_TOKEN_CHARS // len(OPERATOR) + 1),
    ],
)
def test_a_malformed_token_is_unknown_not_an_error(presented: str) -> None:
    assert TOKENS.access(presented) is None


def test_a_token_with_non_ascii_text_still_matches() -> None:
    tokens = Tokens("t\u00f6ken-\u20ac-12345")
    assert tokens.access("t\u00f6ken-\u20ac-12345") == "write"


def test_tokens_never_show_in_a_repr() -> None:
    for shown in (repr(TOKENS), str(TOKENS), f"{TOKENS}"):
        assert OPERATOR not in shown
        assert READER not in shown
    assert repr(TOKENS) == "Tokens(operator=***, read_only=2 tokens)"


def _settings(data_dir: Path, **values: object) -> Settings:
    return Settings(data_dir=data_dir, **values)  # type: ignore[arg-type]


def test_configured_tokens_are_hidden_from_the_log(tmp_path: Path) -> None:
    settings = _settings(tmp_path, token=OPERATOR, read_only_tokens=[READER])
    tokens, generated = load_tokens(settings)
    assert (tokens.operator, tokens.read_only, generated) == (OPERATOR, (READER,), False)
    assert redact(f"Bearer {OPERATOR} and {READER}") == f"Bearer {REDACTED} and {REDACTED}"


def test_a_generated_token_lives_in_an_owner_only_directory_and_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    tokens, generated = load_tokens(_settings(data_dir))
    assert generated
    path = data_dir / TOKEN_FILE
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == tokens.operator
    assert redact(tokens.operator) == REDACTED
    again, generated = load_tokens(_settings(data_dir))
    assert (again.operator, generated) == (tokens.operator, False)


def test_an_existing_open_data_directory_is_tightened_when_the_token_is_made(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # noqa: S103 - the loose mode is the point
    load_tokens(_settings(data_dir))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o610], ids=oct)
def test_a_token_file_open_to_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("a-token-someone-else-may-have-read\n")
    os.chmod(path, mode)
    with pytest.raises(InsecureTokenFile) as refused:
        load_tokens(_settings(tmp_path))
    message = str(refused.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert f"{mode:04o}" in message
    assert "a-token-someone-else" not in message
    assert isinstance(refused.value, InsecureListen)  # `ai-admin serve` prints it as one line


def test_a_private_token_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("  kept-token-1234  \n")
    os.chmod(path, 0o600)
    tokens, generated = load_tokens(_settings(tmp_path))
    assert (tokens.operator, generated) == ("kept-token-1234", False)


def test_a_token_path_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / TOKEN_FILE, 0o600)  # opening it must not hang
    with pytest.raises(InsecureTokenFile, match="not a regular file"):
        load_tokens(_settings(tmp_path))


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("\n")
    os.chmod(path, 0o600)
    with pytest.raises(InsecureListen, match="is empty"):
        load_tokens(_settings(tmp_path))
