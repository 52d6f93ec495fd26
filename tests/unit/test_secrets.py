"""Credentials are split from params before anything is stored, and joined back for executors."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.secrets import REDACTED, join_secrets, merge_key, split_secrets


def test_passwords_and_tokens_are_redacted_and_kept_apart() -> None:
    params = {
        "image_name": "team/app",
        "auth": {"username": "bot", "password": "pw", "identity_token": "tok", "email": "e@x"},
    }
    public, secret = split_secrets(params)
    assert public == {
        "image_name": "team/app",
        "auth": {
            "username": "bot",
            "password": REDACTED,
            "identity_token": REDACTED,
            "email": "e@x",
        },
    }
    assert secret == params["auth"]
    assert params["auth"]["password"] == "pw"  # the caller's dict is not changed
    assert join_secrets(public, secret) == params


def test_params_without_auth_pass_through() -> None:
    public, secret = split_secrets({"image_name": "x", "tag": "1"})
    assert public == {"image_name": "x", "tag": "1"}
    assert secret is None
    assert split_secrets({"auth": "not-a-mapping"}) == ({"auth": "not-a-mapping"}, None)


def test_an_empty_password_is_not_marked_as_set() -> None:
    public, _ = split_secrets({"auth": {"username": "u", "password": ""}})
    assert public["auth"] == {"username": "u", "password": ""}


def test_without_the_credentials_the_executor_gets_no_auth() -> None:
    # After a restart the credentials are gone; the redacted placeholder must not be sent.
    public, _ = split_secrets({"image_name": "x", "auth": {"username": "u", "password": "p"}})
    assert join_secrets(public, None) == {"image_name": "x"}


def test_merge_key_depends_on_type_params_and_credentials_not_key_order() -> None:
    base = merge_key("docker_push", {"a": 1, "b": 2}, {"username": "u", "password": "p"})
    assert base == merge_key("docker_push", {"b": 2, "a": 1}, {"password": "p", "username": "u"})
    assert base != merge_key("docker_pull", {"a": 1, "b": 2}, {"username": "u", "password": "p"})
    assert base != merge_key("docker_push", {"a": 1, "b": 3}, {"username": "u", "password": "p"})
    assert base != merge_key("docker_push", {"a": 1, "b": 2}, {"username": "u", "password": "q"})
    assert base != merge_key("docker_push", {"a": 1, "b": 2}, None)
    assert len(base) == 32  # blake2b-128 hex: not the credentials themselves


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(deadline=None)  # a loaded CI machine must not fail an example for slowness
@given(
    params=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "auth"), json_values),
    password=st.text(min_size=1, max_size=20),
)
def test_split_then_join_round_trips(params: dict[str, Any], password: str) -> None:
    full = {**params, "auth": {"username": "u", "password": password}}
    public, secret = split_secrets(full)
    assert public["auth"]["password"] == REDACTED
    assert join_secrets(public, secret) == full
