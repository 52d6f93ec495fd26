"""The parameter models of build, push and pull, as every door validates them (``parse``)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ai_admin.docker.params import (
    IMAGE_NAME_MAX_CHARS,
    IMAGE_NAME_PATTERN,
    TAG_PATTERN,
    TAGGED_NAME_PATTERN,
    BuildParams,
    PullParams,
    PushParams,
    RegistryAuth,
)
from ai_admin.docker.reference import Reference
from ai_admin.errors import ErrorCode, InvalidParams
from ai_admin.validation import parse

SECRET = "s3cret-Pw-4d1f"
DIGEST = "sha256:" + "c" * 64


def _refused(model: type[BaseModel], data: dict[str, Any]) -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        parse(model, data)
    error = caught.value
    shown = json.dumps([error.message, error.details, error.suggestions])
    assert SECRET not in shown, "a refusal echoed the password"
    return error


def _problems(error: InvalidParams) -> dict[str, str]:
    return {p["field"]: p["problem"] for p in error.details["errors"]}


# --- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        {"username": "u", "password": SECRET},
        {"identity_token": SECRET},
        {"username": "u", "identity_token": SECRET},
        {"username": "u", "password": SECRET, "registry": "127.0.0.1:5000"},
    ],
)
def test_complete_credentials(auth: dict[str, str]) -> None:
    assert RegistryAuth.model_validate(auth)


@pytest.mark.parametrize(
    "auth",
    [{}, {"username": "u"}, {"password": SECRET}, {"registry": "r"}, {"username": "u", "pw": "x"}],
)
def test_incomplete_credentials_are_refused(auth: dict[str, str]) -> None:
    error = _refused(PullParams, {"image_name": "app", "auth": auth})
    assert error.code in (
        ErrorCode.VALIDATION_INVALID_PARAMS,
        ErrorCode.VALIDATION_MISSING_REQUIRED,
    )
    assert all(field.startswith("auth") for field in _problems(error))


def test_secrets_serialise_as_stars() -> None:
    params = parse(
        PushParams,
        {"image_name": "app", "auth": {"username": "u", "password": SECRET}},
    )
    token = parse(PullParams, {"image_name": "app", "auth": {"identity_token": SECRET}})
    for model in (params, token):
        dumped = model.model_dump_json()
        assert SECRET not in dumped
        assert SECRET not in repr(model)
        assert SECRET not in str(model.model_dump())
    assert json.loads(params.model_dump_json())["auth"] == {
        "username": "u",
        "password": "***",
        "identity_token": None,
        "registry": None,
    }
    assert json.loads(token.model_dump_json())["auth"]["identity_token"] == "***"


def test_auth_for_the_engine() -> None:
    auth = RegistryAuth.model_validate({"username": "u", "password": SECRET})
    assert auth.to_docker("127.0.0.1:5000") == {
        "serveraddress": "127.0.0.1:5000",
        "username": "u",
        "password": SECRET,
    }
    named = RegistryAuth.model_validate({"username": "u", "password": SECRET, "registry": "r:1"})
    assert named.to_docker("127.0.0.1:5000")["serveraddress"] == "r:1"
    token = RegistryAuth.model_validate({"identity_token": SECRET})
    assert token.to_docker("docker.io") == {"serveraddress": "docker.io", "identitytoken": SECRET}


# --- pull ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"image_name": "app"}, Reference(None, "app", "latest", None)),
        ({"image_name": "app:1"}, Reference(None, "app", "1", None)),
        ({"image_name": "app", "tag": "2"}, Reference(None, "app", "2", None)),
        ({"image_name": "app:1", "tag": "2"}, Reference(None, "app", "2", None)),
        ({"image_name": f"app@{DIGEST}"}, Reference(None, "app", None, DIGEST)),
        ({"image_name": f"app@{DIGEST}", "tag": "2"}, Reference(None, "app", "2", None)),
        (
            {"image_name": "127.0.0.1:5000/team/app", "tag": "1.4"},
            Reference("127.0.0.1:5000", "127.0.0.1:5000/team/app", "1.4", None),
        ),
    ],
)
def test_pull_reference(data: dict[str, Any], expected: Reference) -> None:
    assert parse(PullParams, data).reference() == expected


def test_pull_takes_a_platform() -> None:
    params = parse(PullParams, {"image_name": "app", "platform": "linux/arm64"})
    assert params.platform == "linux/arm64"


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({}, ErrorCode.VALIDATION_MISSING_REQUIRED, "image_name"),
        ({"image_name": ""}, ErrorCode.DOCKER_INVALID_REFERENCE, "image_name"),
        ({"image_name": 5}, ErrorCode.VALIDATION_INVALID_FORMAT, "image_name"),
        ({"image_name": "Team/App"}, ErrorCode.DOCKER_INVALID_REFERENCE, "image_name"),
        ({"image_name": "app", "tag": "-x"}, ErrorCode.DOCKER_INVALID_REFERENCE, "tag"),
        ({"image_name": "app", "tag": "1\n"}, ErrorCode.DOCKER_INVALID_REFERENCE, "tag"),
        ({"image_name": "app@sha256:abc"}, ErrorCode.DOCKER_INVALID_REFERENCE, "image_name"),
        ({"image_name": "app", "force": True}, ErrorCode.VALIDATION_INVALID_PARAMS, "force"),
    ],
)
def test_pull_refusals(data: dict[str, Any], code: ErrorCode, field: str) -> None:
    error = _refused(PullParams, data)
    assert error.code is code
    assert field in _problems(error)


def test_unknown_keys_are_named() -> None:
    error = _refused(
        PullParams,
        {"image_name": "app", "tags": ["x"], "auth": {"identity_token": SECRET, "extra": 1}},
    )
    assert _problems(error) == {"tags": "unknown parameter", "auth.extra": "unknown parameter"}


# --- push ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"image_name": "app"}, Reference(None, "app", "latest", None)),
        ({"image_name": "app:1"}, Reference(None, "app", "1", None)),
        ({"image_name": "app", "tag": "2"}, Reference(None, "app", "2", None)),
        ({"image_name": "r.io/app", "all_tags": True}, Reference("r.io", "r.io/app", None, None)),
    ],
)
def test_push_reference(data: dict[str, Any], expected: Reference) -> None:
    assert parse(PushParams, data).reference() == expected


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"image_name": f"app@{DIGEST}"}, "push takes a tag, not a digest"),
        ({"image_name": "app", "tag": "1", "all_tags": True}, "either tag or all_tags"),
        ({"image_name": "app", "platform": "linux/amd64"}, "unknown parameter"),
    ],
)
def test_push_refusals(data: dict[str, Any], problem: str) -> None:
    error = _refused(PushParams, data)
    assert problem in error.message


# --- build -----------------------------------------------------------------------------------


def test_build_defaults() -> None:
    params = parse(BuildParams, {"dockerfile": "FROM scratch\n"})
    assert params.context_path is None
    assert params.dockerfile_name == "Dockerfile"
    assert params.tags == []
    assert params.build_args == {}
    assert params.labels == {}
    assert (params.no_cache, params.pull, params.push) == (False, False, False)
    assert params.target is None
    assert params.network_mode is None


@pytest.mark.parametrize(
    "data",
    [
        {"context_path": "/srv/app"},
        {"dockerfile": "FROM scratch\n"},
        {"context_path": "/srv/app", "dockerfile": "FROM scratch\n"},
        {"dockerfile": "FROM scratch\n", "tags": ["a:1", "r:5000/a:2"], "push": True},
        {
            "context_path": "/srv/app",
            "dockerfile_name": "docker/app.Dockerfile",
            "build_args": {"V": "1"},
            "labels": {"org.example": "x"},
            "target": "runtime",
            "no_cache": True,
            "pull": True,
            "network_mode": "none",
            "auth": {"username": "u", "password": SECRET},
        },
    ],
)
def test_build_accepts(data: dict[str, Any]) -> None:
    assert parse(BuildParams, data)


@pytest.mark.parametrize(
    ("data", "code", "problem"),
    [
        ({}, ErrorCode.VALIDATION_INVALID_PARAMS, "give context_path, dockerfile, or both"),
        (
            {"dockerfile": "FROM scratch\n", "push": True},
            ErrorCode.VALIDATION_INVALID_PARAMS,
            "push needs at least one tag",
        ),
        (
            {"dockerfile": "FROM scratch\n", "tags": ["Bad/Tag"]},
            ErrorCode.DOCKER_INVALID_REFERENCE,
            "must be lowercase",
        ),
        (
            {"dockerfile": "FROM scratch\n", "build_args": {"V": 1}},
            ErrorCode.VALIDATION_INVALID_FORMAT,
            "build_args.V",
        ),
        (
            {"dockerfile": "FROM scratch\n", "buildargs": {"V": "1"}},
            ErrorCode.VALIDATION_INVALID_PARAMS,
            "buildargs: unknown parameter",
        ),
        (
            {"dockerfile": "FROM scratch\n", "tags": [f"t{i}" for i in range(33)]},
            ErrorCode.VALIDATION_INVALID_PARAMS,
            "tags",
        ),
    ],
)
def test_build_refusals(data: dict[str, Any], code: ErrorCode, problem: str) -> None:
    error = _refused(BuildParams, data)
    assert error.code is code
    assert problem in error.message


def test_models_refuse_extra_keys_themselves() -> None:
    cases: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (PullParams, {"image_name": "a"}),
        (PushParams, {"image_name": "a"}),
        (BuildParams, {"dockerfile": "FROM scratch"}),
        (RegistryAuth, {"identity_token": "t"}),
    ]
    for model, data in cases:
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            model.model_validate({**data, "unexpected": 1})


# --- secrets out of sight: registry userinfo, build args, bad text -----------------------------


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            {"registry": f"https://bob:{SECRET}@r.io:5000"},
            {"username": "bob", "password": SECRET, "registry": "https://r.io:5000"},
        ),
        (  # percent-encoded, without a scheme
            {"registry": "bob:p%40ss@r.io"},
            {"username": "bob", "password": "p@ss", "registry": "r.io"},
        ),
        (  # credentials given explicitly win; the userinfo is dropped all the same
            {"username": "amy", "password": "given", "registry": f"https://bob:{SECRET}@r.io"},
            {"username": "amy", "password": "given", "registry": "https://r.io"},
        ),
        (  # a user given without a password: the password comes from the userinfo
            {"username": "bob", "registry": f"https://bob:{SECRET}@r.io"},
            {"username": "bob", "password": SECRET, "registry": "https://r.io"},
        ),
        (
            {"identity_token": "tok", "registry": f"https://bob:{SECRET}@r.io"},
            {"username": None, "password": None, "registry": "https://r.io"},
        ),
    ],
)
def test_registry_userinfo_becomes_credentials(
    auth: dict[str, str], expected: dict[str, str | None]
) -> None:
    parsed = RegistryAuth.model_validate(auth)
    password = parsed.password.get_secret_value() if parsed.password else None
    assert {"username": parsed.username, "password": password, "registry": parsed.registry} == (
        expected
    )
    dumped = parsed.model_dump_json()
    assert SECRET not in dumped + repr(parsed)
    assert parsed.to_docker("ignored")["serveraddress"] == expected["registry"]


def test_a_registry_with_a_user_but_no_password_is_incomplete() -> None:
    error = _refused(PullParams, {"image_name": "a", "auth": {"registry": "https://bob@r.io"}})
    assert "auth needs username and password" in error.message


def test_secret_build_args_are_hidden_in_repr_and_json_but_reach_the_build() -> None:
    params = parse(
        BuildParams,
        {"dockerfile": "FROM x", "build_args": {"NPM_TOKEN": SECRET, "VERSION": "1.4"}},
    )
    assert params.build_args == {"NPM_TOKEN": SECRET, "VERSION": "1.4"}  # the executor's view
    assert json.loads(params.model_dump_json())["build_args"] == {
        "NPM_TOKEN": "***",
        "VERSION": "1.4",
    }
    assert SECRET not in repr(params)
    assert "'VERSION': '1.4'" in repr(params)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"dockerfile": "FROM x\x00"}, "dockerfile"),
        ({"dockerfile": "FROM x", "build_args": {"A": "\ud800"}}, "build_args.A"),
        ({"dockerfile": "FROM x", "labels": {"a": "b\x00c"}}, "labels.a"),
        ({"dockerfile": "FROM x", "tags": ["ok", "t\udfff"]}, "tags.1"),
        ({"context_path": "/srv/\x00ctx"}, "context_path"),
        (
            {"dockerfile": "FROM x", "auth": {"username": "u", "password": SECRET + "\x00"}},
            "auth.password",
        ),
    ],
)
def test_bad_text_in_any_build_param_is_named(data: dict[str, Any], field: str) -> None:
    error = _refused(BuildParams, data)
    assert error.code is ErrorCode.VALIDATION_INVALID_FORMAT
    assert field in _problems(error)


# --- the schema states the validation ----------------------------------------------------------

REFERENCE_TEXT = st.text(alphabet="abAB09._-:/@[]\n", max_size=40) | st.sampled_from(
    ["team/app", "a.b/c:1", "localhost:5000/x", "[::1]:5000/a", "app@" + DIGEST, "x/" + "a" * 243]
)


def _accepts(model: type[BaseModel], data: dict[str, Any]) -> bool:
    try:
        parse(model, data)
    except InvalidParams:
        return False
    return True


def _described(pattern: str, text: str) -> bool:
    """What a JSON-schema validator says of ``text`` (a pattern is searched, not matched)."""
    return re.search(pattern, text) is not None and 1 <= len(text) <= IMAGE_NAME_MAX_CHARS


@settings(max_examples=80, database=None)
@given(name=st.from_regex(IMAGE_NAME_PATTERN).filter(lambda n: len(n) <= IMAGE_NAME_MAX_CHARS))
def test_every_name_the_schema_allows_is_accepted(name: str) -> None:
    assert _accepts(PullParams, {"image_name": name}), name
    assert _accepts(BuildParams, {"dockerfile": "FROM scratch", "tags": [name]}), name


@settings(max_examples=80, database=None)
@given(name=st.from_regex(TAGGED_NAME_PATTERN).filter(lambda n: len(n) <= IMAGE_NAME_MAX_CHARS))
def test_every_name_the_push_schema_allows_is_accepted(name: str) -> None:
    assert _accepts(PushParams, {"image_name": name}), name


@settings(max_examples=300, database=None)
@given(tag=st.from_regex(TAG_PATTERN))
def test_every_tag_the_schema_allows_is_accepted(tag: str) -> None:
    assert _accepts(PullParams, {"image_name": "app", "tag": tag}), tag


@settings(max_examples=500, database=None)
@given(text=REFERENCE_TEXT)
def test_the_schema_and_the_validation_agree_on_any_text(text: str) -> None:
    assert _described(IMAGE_NAME_PATTERN, text) == _accepts(PullParams, {"image_name": text})
    assert _described(TAGGED_NAME_PATTERN, text) == _accepts(PushParams, {"image_name": text})
    tag_ok = re.search(TAG_PATTERN, text) is not None
    assert tag_ok == _accepts(PullParams, {"image_name": "app", "tag": text}), text


def test_a_name_is_bounded_so_that_no_normalisation_passes_255() -> None:
    assert _accepts(PullParams, {"image_name": "a" * IMAGE_NAME_MAX_CHARS})  # docker.io/library/…
    assert not _accepts(PullParams, {"image_name": "a" * (IMAGE_NAME_MAX_CHARS + 1)})
    assert not _accepts(PullParams, {"image_name": "x/" + "a" * 243})  # the parser's 255, but
    schema = PullParams.model_json_schema()["properties"]["image_name"]
    assert (schema["maxLength"], schema["pattern"]) == (IMAGE_NAME_MAX_CHARS, IMAGE_NAME_PATTERN)


def test_a_bracketed_registry_that_is_no_ipv6_address_is_refused_before_it_is_queued() -> None:
    """Schemathesis found it: '[::280D0b4b770:7F:5d]:4738/x' passed the grammar (any hex and
    colons in brackets), and the queued pull failed with UNKNOWN_ERROR and a traceback when
    the Docker layer parsed the registry's address."""
    error = _refused(PullParams, {"image_name": "[::280D0b4b770:7F:5d]:4738/x"})
    assert error.code is ErrorCode.DOCKER_INVALID_REFERENCE
    assert "not an IPv6 address" in _problems(error)["image_name"]
    assert _accepts(PullParams, {"image_name": "[::1]:5000/x"})
    assert _accepts(PullParams, {"image_name": "[fe80::1:2]/x:1"})
