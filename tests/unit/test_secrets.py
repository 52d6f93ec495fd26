"""Secrets (credentials, build args named like secrets, registry userinfo) are split from params
before anything is stored or shown, and joined back for executors; credentials in outside text
(Docker's messages) are scrubbed by their look."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.secrets import (
    REDACTED,
    holds_secrets,
    join_secrets,
    mask,
    merge_key,
    scrub_credentials,
    secret_values,
    split_secrets,
    strip_userinfo,
)


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
    assert secret == {"auth": params["auth"]}
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


@settings(deadline=None)
@given(
    build_args=st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6),
)
def test_build_args_round_trip_and_show_no_secret(build_args: dict[str, str]) -> None:
    full = {"dockerfile": "FROM x", "build_args": build_args}
    public, secret = split_secrets(full)
    assert join_secrets(public, secret) == full
    hidden = (secret or {}).get("build_args", {})
    assert all(public["build_args"][name] == REDACTED for name in hidden)
    assert holds_secrets(public) == bool(hidden)


# --- build args named like secrets, registry userinfo ------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "NPM_TOKEN",
        "npm_token",
        "GitHub_Token",
        "DB_PASSWORD",
        "MYSQL_PASSWD",
        "GPG_PASSPHRASE",
        "AWS_SECRET_ACCESS_KEY",
        "api_key",
        "SSH_PRIVATE_KEY",
        "GOOGLE_CREDENTIALS",
        "BASIC_AUTH",
        "SENTRY_DSN",
        "SESSION_COOKIE",
    ],
)
def test_build_args_named_like_secrets_are_split_out(name: str) -> None:
    params = {"dockerfile": "FROM x", "build_args": {name: "v4lue", "VERSION": "1.4"}}
    public, secret = split_secrets(params)
    assert public["build_args"] == {name: REDACTED, "VERSION": "1.4"}
    assert secret == {"build_args": {name: "v4lue"}}
    assert holds_secrets(public)
    assert join_secrets(public, secret) == params


@pytest.mark.parametrize("name", ["VERSION", "BASE_IMAGE", "HTTP_PROXY", "TZ", "BUILD_DATE"])
def test_plain_build_args_stay_visible(name: str) -> None:
    params = {"build_args": {name: "value"}}
    assert split_secrets(params) == (params, None)
    assert not holds_secrets(params)


def test_a_url_with_a_password_is_hidden_whatever_its_name() -> None:
    index = "https://ci:pa55@pypi.example.com/simple"
    params = {"build_args": {"PIP_INDEX_URL": index, "MIRROR": "https://pypi.example.com/"}}
    public, secret = split_secrets(params)
    assert public["build_args"] == {
        "PIP_INDEX_URL": REDACTED,
        "MIRROR": "https://pypi.example.com/",
    }
    assert secret == {"build_args": {"PIP_INDEX_URL": index}}


def test_an_empty_secret_build_arg_is_not_marked_as_set() -> None:
    params = {"build_args": {"NPM_TOKEN": ""}}
    assert split_secrets(params) == (params, None)


def test_auth_and_build_args_are_split_together() -> None:
    params = {
        "auth": {"username": "u", "password": "pw"},
        "build_args": {"API_KEY": "k3y", "A": "b"},
    }
    public, secret = split_secrets(params)
    assert public == {
        "auth": {"username": "u", "password": REDACTED},
        "build_args": {"API_KEY": REDACTED, "A": "b"},
    }
    assert secret == {"auth": params["auth"], "build_args": {"API_KEY": "k3y"}}
    assert join_secrets(public, secret) == params


def test_without_the_secrets_no_redacted_build_arg_reaches_the_build() -> None:
    public, _ = split_secrets({"build_args": {"NPM_TOKEN": "t", "A": "b"}, "auth": {"x": 1}})
    assert join_secrets(public, None) == {"build_args": {"A": "b"}}


def test_holds_secrets_reads_the_stored_params() -> None:
    assert holds_secrets({"auth": {"username": "u", "password": REDACTED}})
    assert holds_secrets({"build_args": {"X": REDACTED}})
    assert not holds_secrets({"image_name": "x", "build_args": {"X": "y"}})
    assert not holds_secrets({"auth": None, "build_args": None})


def test_splitting_shown_params_again_changes_nothing() -> None:
    params = {
        "auth": {"username": "u", "password": "pw", "registry": "https://u:pw@r.io"},
        "build_args": {"NPM_TOKEN": "t", "A": "b"},
    }
    public, _ = split_secrets(params)
    assert split_secrets(public)[0] == public


def test_merge_keys_tell_different_secret_build_args_apart() -> None:
    keys = set()
    for value in ("one", "two"):
        public, secret = split_secrets({"build_args": {"NPM_TOKEN": value}})
        keys.add(merge_key("docker_build", public, secret))
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("registry", "shown", "user", "password"),
    [
        ("https://bob:pw@r.io:5000", "https://r.io:5000", "bob", "pw"),
        ("bob:p%40ss@r.io/v2", "r.io/v2", "bob", "p@ss"),
        ("http://bob@r.io", "http://r.io", "bob", None),
        ("r.io:5000", "r.io:5000", None, None),
        ("https://r.io", "https://r.io", None, None),
    ],
)
def test_registry_userinfo_is_stripped(
    registry: str, shown: str, user: str | None, password: str | None
) -> None:
    assert strip_userinfo(registry) == (shown, user, password)
    public, secret = split_secrets({"auth": {"registry": registry}})
    assert public["auth"]["registry"] == shown
    assert secret == {"auth": {"registry": registry}}  # the executor takes the credentials


def test_secret_values_mask_what_a_task_prints() -> None:
    _, secret = split_secrets(
        {
            "auth": {"username": "bob", "password": "pw-123", "registry": "https://bob:urlpw1@r"},
            "build_args": {"NPM_TOKEN": "tok-xyz", "IDX": "https://u:idxpw9@h/s", "A": "b"},
        }
    )
    values = secret_values(secret)
    assert set(values) == {"pw-123", "urlpw1", "tok-xyz", "https://u:idxpw9@h/s", "idxpw9"}
    line = "Step 3/3 : RUN echo tok-xyz https://u:idxpw9@h/s pw-123 urlpw1 (bob, b)"
    assert mask(line, values) == "Step 3/3 : RUN echo *** *** *** *** (bob, b)"
    assert secret_values(None) == ()
    assert secret_values(split_secrets({"auth": {"identity_token": "abc"}})[1]) == ()  # too short


@pytest.mark.parametrize(
    ("address", "stripped", "user", "password"),
    [
        ("https://bob:pa/ss@reg.io", "https://reg.io", "bob", "pa/ss"),  # "/" in a password
        ("https://bob:p%40ss@reg.io/v2", "https://reg.io/v2", "bob", "p@ss"),
        ("https://reg.io/team@2024", "https://reg.io/team@2024", None, None),  # a path, no user
        ("reg.io:5000", "reg.io:5000", None, None),
    ],
)
def test_userinfo_is_the_part_before_the_last_at(
    address: str, stripped: str, user: str | None, password: str | None
) -> None:
    assert strip_userinfo(address) == (stripped, user, password)


def test_a_url_whose_password_holds_a_slash_makes_a_build_arg_secret() -> None:
    public, secret = split_secrets(
        {"build_args": {"PIP_INDEX_URL": "https://bob:pa/ss@pypi.example/simple", "V": "1"}}
    )
    assert public["build_args"] == {"PIP_INDEX_URL": REDACTED, "V": "1"}
    assert secret == {"build_args": {"PIP_INDEX_URL": "https://bob:pa/ss@pypi.example/simple"}}


def test_long_values_without_a_password_url_stay_shown() -> None:
    # The pattern is bounded: a long value (or one full of "://") is scanned in linear time.
    args = {"NOTE": "a" * 65_536, "URLS": "://a:" * 13_000 + " @", "MIRROR": "https://x.org/" * 999}
    public, secret = split_secrets({"build_args": args})
    assert public["build_args"] == args
    assert secret is None


# --- credentials in text from outside, scrubbed by their look -------------------------------


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Authorization: Basic Ym9iOnMzY3IzdA==", "Authorization: ***"),
        ("proxy-authorization=Bearer abc.def", "proxy-authorization=***"),
        ("X-Registry-Auth: eyJ1c2VyIjoiYm9iIn0=", "X-Registry-Auth: ***"),
        ("got bearer eyJhbGciOiJIUzI1NiJ9.tok3n back", "got bearer *** back"),
        ('Get "https://bob:s3cr3t@reg.example.com/v2/"', 'Get "https://***@reg.example.com/v2/"'),
        ("pull of bob:s3cr3t@reg.example.com/team/app", "pull of ***@reg.example.com/team/app"),
        ("/v2/?access_token=hunter2&x=1", "/v2/?access_token=***&x=1"),
        ('{"password": "hunter2"}', '{"password": "***"}'),
    ],
)
def test_scrub_credentials_hides_what_looks_like_one(text: str, scrubbed: str) -> None:
    assert scrub_credentials(text) == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "unauthorized: authentication required",
        "no basic auth credentials",
        'Www-Authenticate: Basic realm="basic-realm"',
        "127.0.0.1:5000/team/app:1.4@sha256:" + "ab12" * 16,
        "dial tcp 127.0.0.1:5199: connect: connection refused",
    ],
)
def test_scrub_credentials_leaves_ordinary_text_alone(text: str) -> None:
    assert scrub_credentials(text) == text
