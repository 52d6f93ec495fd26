"""What a build, push or pull takes: one pydantic model each.

These models are the single source of the Docker commands' validation, JSON schema, MCP tool
input and CLI help; the commands add only the queue's options (priority, timeout, retries).
They import nothing from the Docker SDK.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    model_validator,
)

from ai_admin.docker.reference import (
    DEFAULT_REGISTRY,
    InvalidReference,
    Reference,
    check_tag,
    parse_reference,
)
from ai_admin.queue.secrets import shown_build_args, strip_userinfo

# The grammar ``parse_reference`` checks (ai_admin.docker.reference), restated as JSON-schema
# patterns so a client's schema is as strict as the validation; tests/unit/test_docker_params.py
# proves the two agree both ways. Written for every regex engine alike (ECMA-262, Python):
# ASCII classes instead of \w, and ``(?!\n)$`` for the end, since Python's ``$`` alone also
# matches before a final newline. A first component is a registry only when it looks like one
# (a ``.`` or a ``:``, ``localhost``, or an IPv6 address in brackets), else a path component.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_H = "[0-9a-fA-F]{1,4}"
_IPV6 = (  # hex groups and colons only, as the grammar has them (no dotted IPv4 tail)
    rf"(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,7}}:|(?:{_H}:){{1,6}}:{_H}"
    rf"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
    rf"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    rf"|{_H}:(?::{_H}){{1,6}}|:(?:(?::{_H}){{1,7}}|:))"
)
_DOMAIN = (
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})+(?::[0-9]+)?|{_DOMAIN_PART}:[0-9]+|localhost"
    rf"|\[{_IPV6}\](?::[0-9]+)?)"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?"
IMAGE_NAME_PATTERN = rf"^{_NAME}(?:@{_DIGEST})?(?!\n)$"
TAGGED_NAME_PATTERN = rf"^{_NAME}(?!\n)$"  # what a push takes: no digest
TAG_PATTERN = rf"^{_TAG}(?!\n)$"
# The engine refuses a repository name over 255 characters as it normalises it ("app" is
# "docker.io/library/app"): a schema cannot count that, so a name is bounded as a whole, to
# what no normalisation takes over 255.
IMAGE_NAME_MAX_CHARS = 255 - len(f"{DEFAULT_REGISTRY}/library/")


def _reference(value: str) -> str:
    registry = parse_reference(value).registry
    if registry is not None and registry.startswith("["):
        _check_ipv6(registry[1 : registry.index("]")])
    return value


def _check_ipv6(address: str) -> None:
    """The grammar takes any hex digits and colons in brackets; a registry there must be an
    IPv6 address (URL parsing, and so the Docker SDK, refuses anything else)."""
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise InvalidReference(f"invalid reference: [{address}] is not an IPv6 address") from None


def _tag(value: str) -> str:
    return check_tag(value)


_IMAGE_NAME_TEXT = (
    "Image name, optionally with registry and tag: "
    "'team/app', '127.0.0.1:5000/team/app:1.4', 'busybox@sha256:…'."
)


def _image_name(description: str, pattern: str) -> Any:
    return Field(
        min_length=1,
        max_length=IMAGE_NAME_MAX_CHARS,
        description=description,
        examples=["team/app", "127.0.0.1:5000/team/app"],
        json_schema_extra={"pattern": pattern},
    )


ImageName = Annotated[
    str, AfterValidator(_reference), _image_name(_IMAGE_NAME_TEXT, IMAGE_NAME_PATTERN)
]
# A push names a tag, never a digest (``PushParams`` checks it).
TaggedName = Annotated[
    str,
    AfterValidator(_reference),
    _image_name(
        "Image name, optionally with registry and tag: 'team/app', '127.0.0.1:5000/team/app:1.4'.",
        TAGGED_NAME_PATTERN,
    ),
]
Tag = Annotated[
    str,
    AfterValidator(_tag),
    Field(description="Image tag.", examples=["1.4"], json_schema_extra={"pattern": TAG_PATTERN}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegistryAuth(_Strict):
    """Credentials for one registry, used for this task only and never stored.

    A ``registry`` given as ``https://user:password@host`` loses its userinfo here: the
    address is kept without it, the user and password fill ``username`` and ``password``
    when those were not given (so they are held, and hidden, as any password is).

    Complete means ``identity_token``, or ``username`` and ``password`` (given, or from the
    ``registry`` URL).
    """

    # The schema states the rule (an anyOf nested here, so a tool's input schema keeps a
    # plain object at its root) for the two plain ways; credentials inside the registry URL,
    # the third, no simple pattern states.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["identity_token"],
                    "properties": {"identity_token": {"type": "string"}},
                },
                {
                    "required": ["username", "password"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                },
            ]
        }
    )

    username: str | None = Field(None, max_length=256)
    password: SecretStr | None = Field(None, max_length=4096)
    identity_token: SecretStr | None = Field(
        None, max_length=16384, description="OAuth identity token, instead of a password."
    )
    registry: str | None = Field(
        None, max_length=256, description="Registry address; default: the image's registry."
    )

    @model_validator(mode="before")
    @classmethod
    def _userinfo_out_of_registry(cls, data: Any) -> Any:
        registry = data.get("registry") if isinstance(data, dict) else None
        if not isinstance(registry, str):
            return data
        address, user, password = strip_userinfo(registry)
        if address == registry:
            return data
        data = {**data, "registry": address}
        if data.get("identity_token") is None:
            if data.get("username") is None:
                data["username"] = user
            if data.get("password") is None:
                data["password"] = password
        return data

    @model_validator(mode="after")
    def _complete(self) -> RegistryAuth:
        if self.identity_token is None and (self.username is None or self.password is None):
            raise ValueError("auth needs username and password, or identity_token")
        return self

    @field_serializer("password", "identity_token", when_used="json")
    def _hide(self, value: SecretStr | None) -> str | None:
        return "***" if value is not None else None

    def to_docker(self, registry: str) -> dict[str, Any]:
        """The ``auth_config`` dict docker-py expects."""
        config: dict[str, Any] = {"serveraddress": self.registry or registry}
        if self.identity_token is not None:
            config["identitytoken"] = self.identity_token.get_secret_value()
        else:
            config["username"] = self.username
            config["password"] = self.password.get_secret_value() if self.password else None
        return config


class _WithAuth(_Strict):
    auth: RegistryAuth | None = Field(
        None,
        description="Registry credentials; default: the agent user's Docker login "
        "(~/.docker/config.json and credential helpers).",
    )


class PullParams(_WithAuth):
    image_name: ImageName
    tag: Tag | None = Field(None, description="Tag to pull; default 'latest' unless a digest.")
    platform: str | None = Field(None, max_length=64, examples=["linux/amd64"])

    def reference(self) -> Reference:
        ref = parse_reference(self.image_name, default_tag="latest")
        if self.tag is not None and (ref.tag != self.tag or ref.digest):
            ref = parse_reference(f"{ref.repository}:{self.tag}")
        return ref


class PushParams(_WithAuth):
    # The rule across fields, for request schemas that may hold one (OpenAPI's; a tool's
    # input schema keeps none at its root): not both tag and all_tags.
    SCHEMA_RULES: ClassVar[tuple[dict[str, Any], ...]] = (
        {
            "not": {
                "required": ["tag", "all_tags"],
                "properties": {"tag": {"type": "string"}, "all_tags": {"const": True}},
            }
        },
    )

    image_name: TaggedName
    tag: Tag | None = Field(None, description="Tag to push; default 'latest'.")
    all_tags: bool = Field(False, description="Push every local tag of the repository.")

    @model_validator(mode="after")
    def _no_digest(self) -> PushParams:
        if parse_reference(self.image_name).digest:
            raise ValueError("push takes a tag, not a digest")
        if self.all_tags and self.tag is not None:
            raise ValueError("give either tag or all_tags, not both")
        return self

    def reference(self) -> Reference:
        ref = parse_reference(self.image_name, default_tag="latest")
        if self.all_tags:
            return Reference(ref.registry, ref.repository, None, None)
        if self.tag is not None:
            return Reference(ref.registry, ref.repository, self.tag, None)
        return ref


class BuildParams(_WithAuth):
    # As PushParams': a build that pushes needs a tag.
    SCHEMA_RULES: ClassVar[tuple[dict[str, Any], ...]] = (
        {
            "if": {"required": ["push"], "properties": {"push": {"const": True}}},
            "then": {"required": ["tags"], "properties": {"tags": {"minItems": 1}}},
        },
    )

    context_path: str | None = Field(
        None,
        max_length=4096,
        description="Directory to build from; must be under one of the agent's allowed_roots.",
    )
    dockerfile: str | None = Field(
        None,
        max_length=1_000_000,
        description="Dockerfile text. Alone: a build without context files. With "
        "context_path: replaces the context's Dockerfile.",
    )
    dockerfile_name: str = Field(
        "Dockerfile", max_length=1024, description="Dockerfile path inside the context."
    )
    tags: list[ImageName] = Field(default_factory=list, max_length=32)
    build_args: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    target: str | None = Field(None, max_length=256, description="Stage to build.")
    no_cache: bool = False
    pull: bool = Field(False, description="Always try to pull newer base images.")
    network_mode: str | None = Field(None, max_length=256, examples=["bridge", "none"])
    platform: str | None = Field(None, max_length=64)
    push: bool = Field(False, description="Push every tag after a successful build.")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Secret build args show as ``***`` (a repr ends up in logs and tracebacks)."""
        for name, value in super().__repr_args__():
            yield name, shown_build_args(value) if name == "build_args" else value

    @field_serializer("build_args", when_used="json")
    def _shown_build_args(self, value: dict[str, str]) -> dict[str, str]:
        return shown_build_args(value)

    @model_validator(mode="after")
    def _has_source(self) -> BuildParams:
        if self.context_path is None and self.dockerfile is None:
            raise ValueError("give context_path, dockerfile, or both")
        if self.push and not self.tags:
            raise ValueError("push needs at least one tag")
        return self
