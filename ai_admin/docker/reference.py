"""Docker image references (``registry:5000/team/app:1.4@sha256:…``), parsed and checked.

The grammar follows the distribution project's reference package, so a reference the agent
accepts is one the engine accepts, and a bad one is refused before any work is queued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ai_admin.errors import ErrorCode
from ai_admin.validation import CodedValueError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"  # \w as in Go: ASCII only (re.ASCII below)
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z",
    re.ASCII,
)
_NAMESPACE = re.compile(rf"^{_COMPONENT}\Z", re.ASCII)
TAG_PATTERN = re.compile(rf"^{_TAG}\Z", re.ASCII)
DEFAULT_REGISTRY = "docker.io"
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"^[0-9a-f]+\Z")
_MAX_NAME = 255


class InvalidReference(CodedValueError):
    """Not a valid image reference; the message says what is wrong.

    Raised in a params model's validator, it answers ``DOCKER_INVALID_REFERENCE``.
    """

    code = ErrorCode.DOCKER_INVALID_REFERENCE


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str | None  # None: Docker Hub
    repository: str  # with the registry, as the engine names it: "127.0.0.1:5000/team/app"
    tag: str | None
    digest: str | None

    @property
    def registry_name(self) -> str:
        return self.registry or DEFAULT_REGISTRY

    def __str__(self) -> str:
        return (
            self.repository
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


def _looks_like_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")


def parse_reference(text: str, *, default_tag: str | None = None) -> Reference:
    if not text or text != text.strip():
        raise InvalidReference("an image reference must be non-empty, without spaces")
    match = _REFERENCE.match(text)
    if match is None:
        raise InvalidReference(_explain(text))
    domain, path = match["domain"], match["path"]
    if domain is not None and not _looks_like_domain(domain):
        if not _NAMESPACE.match(domain):  # "Team/app": matched as a host, invalid as a path
            raise InvalidReference(_explain(text))
        domain, path = None, f"{domain}/{path}"  # "team/app": a Hub namespace, not a registry
    repository = f"{domain}/{path}" if domain else path
    # The engine counts the name as it normalises it: "app" is "docker.io/library/app".
    full = repository if domain else f"{DEFAULT_REGISTRY}/{'' if '/' in path else 'library/'}{path}"
    if len(full) > _MAX_NAME:
        raise InvalidReference(
            f"repository name longer than {_MAX_NAME} characters (as {full[:40]}…)"
        )
    digest = match["digest"]
    if digest is not None:
        _check_digest(digest)
    tag = match["tag"] or (None if digest else default_tag)
    return Reference(domain, repository, tag, digest)


def _check_digest(digest: str) -> None:
    """As the engine (go-digest): a known algorithm and its length of lowercase hex."""
    algorithm, _, hex_part = digest.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidReference(
            f"unsupported digest algorithm {algorithm!r} (use {', '.join(_DIGEST_HEX_LENGTHS)})"
        )
    if len(hex_part) != length or not _LOWER_HEX.match(hex_part):
        raise InvalidReference(
            f"invalid {algorithm} digest: it takes {length} lowercase hexadecimal digits"
        )


def check_tag(tag: str) -> str:
    if not TAG_PATTERN.match(tag):
        raise InvalidReference(
            f"invalid tag {tag!r}: use letters, digits, '_', '.' and '-' (at most 128, "
            "not starting with '.' or '-')"
        )
    return tag


def _explain(text: str) -> str:
    # As distribution's reference.Parse: valid once lowercased means an uppercase problem.
    if _REFERENCE.match(text.lower()):
        return f"invalid reference {text!r}: repository names must be lowercase"
    return f"invalid reference format {text!r}"
