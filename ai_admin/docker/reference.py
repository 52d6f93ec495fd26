"""Docker image references (``registry:5000/team/app:1.4@sha256:…``), parsed and checked.

The grammar follows the distribution project's reference package, so a reference the agent
accepts is one the engine accepts, and a bad one is refused before any work is queued.

Two readers share one rule for what names a registry (a first component with a ``.`` or a
``:``, or ``localhost``): ``parse_reference`` checks a reference strictly, ``read_reference``
names the parts of any text given as one (Docker's error messages quote references the agent
never checked) and never refuses. ``registry_host`` reads a registry given as a name or a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

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

    @property
    def path(self) -> str:
        """The repository within its registry: "team/app" for "127.0.0.1:5000/team/app"."""
        if self.registry is None:
            return self.repository
        return self.repository.removeprefix(f"{self.registry}/")

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


def read_reference(text: str) -> Reference:
    """The parts of ``text`` read as a reference, never refusing it: ``parse_reference``'s
    answer for a valid reference, else the same reading without the checks (Docker's messages
    and a failed task's params may quote a reference the engine would refuse).

    Loosely read, the registry is the first component when it looks like a host, else Docker
    Hub; the tag is what follows the last component's ``:``, the digest what follows an ``@``
    in the last component."""
    try:
        return parse_reference(text)
    except InvalidReference:
        pass
    name, at, digest = text.rpartition("@")
    if not at or "/" in digest:
        name, digest = text, ""
    first, slash, rest = name.partition("/")
    registry = first if slash and _looks_like_domain(first) else None
    path = rest if registry is not None else name
    head, _, last = path.rpartition("/")
    last, _, tag = last.partition(":")
    path = f"{head}/{last}" if head else last
    repository = f"{registry}/{path}" if registry is not None else path
    return Reference(registry, repository, tag or None, digest or None)


def registry_url(registry: str) -> SplitResult:
    """A registry given as ``host:port`` or as a URL (``https://user:pass@host:port/``), split."""
    return urlsplit(registry if "//" in registry else f"//{registry}")


def registry_host(registry: str) -> str:
    """``host:port`` of a registry given as a name or a URL (without any ``user:password@``)."""
    return registry_url(registry).netloc.rpartition("@")[2] or registry


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
