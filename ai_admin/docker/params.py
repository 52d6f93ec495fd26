"""What a build, push or pull takes: one pydantic model each.

These models are the single source of the Docker commands' validation, JSON schema, MCP tool
input and CLI help; the commands add only the queue's options (priority, timeout, retries).
They import nothing from the Docker SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    model_validator,
)

from ai_admin.docker.reference import Reference, check_tag, parse_reference
from ai_admin.queue.secrets import shown_build_args, strip_userinfo


def _reference(value: str) -> str:
    parse_reference(value)
    return value


def _tag(value: str) -> str:
    return check_tag(value)


ImageName = Annotated[
    str,
    AfterValidator(_reference),
    Field(
        min_length=1,
        max_length=512,
        description="Image name, optionally with registry and tag: "
        "'team/app', '127.0.0.1:5000/team/app:1.4', 'busybox@sha256:…'.",
        examples=["team/app", "127.0.0.1:5000/team/app"],
    ),
]
Tag = Annotated[str, AfterValidator(_tag), Field(description="Image tag.", examples=["1.4"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegistryAuth(_Strict):
    """Credentials for one registry, used for this task only and never stored.

    A ``registry`` given as ``https://user:password@host`` loses its userinfo here: the
    address is kept without it, the user and password fill ``username`` and ``password``
    when those were not given (so they are held, and hidden, as any password is).
    """

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
    image_name: ImageName
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
