"""Image references: what the agent accepts is what the engine accepts.

The verdicts were checked against Docker Engine 20.10 (the image inspect and tag endpoints
answer "invalid reference format" for the rejected ones), except IPv6 registries: 20.10
refuses them, newer engines and the distribution grammar the module follows accept them.
"""

from __future__ import annotations

import pytest

from ai_admin.docker.reference import (
    DEFAULT_REGISTRY,
    InvalidReference,
    Reference,
    check_tag,
    parse_reference,
    read_reference,
    registry_host,
)

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128

ACCEPTED: list[tuple[str, Reference]] = [
    ("busybox", Reference(None, "busybox", None, None)),
    ("busybox:1.36", Reference(None, "busybox", "1.36", None)),
    ("library/busybox:latest", Reference(None, "library/busybox", "latest", None)),
    # The first component is a Hub namespace unless it looks like a host.
    ("team/app", Reference(None, "team/app", None, None)),
    ("my-ns/app:1", Reference(None, "my-ns/app", "1", None)),
    ("a__b/c", Reference(None, "a__b/c", None, None)),
    ("a--b/c", Reference(None, "a--b/c", None, None)),
    ("a/b/c/d:v1", Reference(None, "a/b/c/d", "v1", None)),
    ("app:_x", Reference(None, "app", "_x", None)),
    ("app:" + "x" * 128, Reference(None, "app", "x" * 128, None)),
    ("host:5000", Reference(None, "host", "5000", None)),  # a tag, as for the engine
    ("localhost", Reference(None, "localhost", None, None)),
    ("localhost/app", Reference("localhost", "localhost/app", None, None)),
    ("localhost:5000/app:1.4", Reference("localhost:5000", "localhost:5000/app", "1.4", None)),
    (
        "127.0.0.1:5000/team/app:1.4",
        Reference("127.0.0.1:5000", "127.0.0.1:5000/team/app", "1.4", None),
    ),
    ("a.b/c", Reference("a.b", "a.b/c", None, None)),
    ("foo_bar.com/app", Reference(None, "foo_bar.com/app", None, None)),
    (
        "registry.example.com/team/app",
        Reference("registry.example.com", "registry.example.com/team/app", None, None),
    ),
    (
        "Registry.Example.com/app",
        Reference("Registry.Example.com", "Registry.Example.com/app", None, None),
    ),
    ("[::1]:5000/app:1", Reference("[::1]:5000", "[::1]:5000/app", "1", None)),
    (f"app@{SHA256}", Reference(None, "app", None, SHA256)),
    (f"app:1.4@{SHA256}", Reference(None, "app", "1.4", SHA256)),
    (f"app@{SHA512}", Reference(None, "app", None, SHA512)),
    ("x/" + "a" * 243, Reference(None, "x/" + "a" * 243, None, None)),  # docker.io/x/…: 255
    ("a" * 237, Reference(None, "a" * 237, None, None)),  # docker.io/library/…: 255
    ("reg.io/" + "a" * 248, Reference("reg.io", "reg.io/" + "a" * 248, None, None)),
]

REJECTED: list[tuple[str, str]] = [
    ("", "non-empty"),
    (" app", "without spaces"),
    ("app ", "without spaces"),
    ("app:1.4\n", "without spaces"),
    ("App", "must be lowercase"),
    ("Team/app", "must be lowercase"),
    ("team/App:1", "must be lowercase"),
    ("127.0.0.1:5000/Team/App", "must be lowercase"),
    ("a-/b", "invalid reference format"),
    ("-a/b", "invalid reference format"),
    ("a/b-", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a/b/", "invalid reference format"),
    ("/a", "invalid reference format"),
    ("a..b/c", "invalid reference format"),
    ("a.-b/c", "invalid reference format"),
    ("a___b/c", "invalid reference format"),
    ("host:port/app", "invalid reference format"),
    ("example.com:/app", "invalid reference format"),
    ("app:", "invalid reference format"),
    ("app:-x", "invalid reference format"),
    ("app:.x", "invalid reference format"),
    ("app:" + "x" * 129, "invalid reference format"),
    ("app:tagé", "invalid reference format"),  # Go's \w is ASCII
    ("äpp", "invalid reference format"),
    ("app@", "invalid reference format"),
    ("app:1.4@", "invalid reference format"),
    ("app@sha256:abc", "invalid reference format"),
    ("app@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("app@sha256:" + "A" * 64, "lowercase hexadecimal"),
    ("app@sha256:" + "a" * 63, "64 lowercase hexadecimal"),
    ("app@sha256:" + "a" * 65, "64 lowercase hexadecimal"),
    ("a" * 238, "longer than 255"),
    ("x/" + "a" * 244, "longer than 255"),
    ("reg.io/" + "a" * 249, "longer than 255"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[t[:40] for t, _ in ACCEPTED])
def test_accepted(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(("text", "problem"), REJECTED, ids=[repr(t[:40]) for t, _ in REJECTED])
def test_rejected(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference, match=problem):
        parse_reference(text)


def test_default_tag_applies_only_without_tag_or_digest() -> None:
    assert parse_reference("app", default_tag="latest").tag == "latest"
    assert parse_reference("app:1", default_tag="latest").tag == "1"
    digested = parse_reference(f"app@{SHA256}", default_tag="latest")
    assert digested.tag is None
    assert str(digested) == f"app@{SHA256}"


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("app", DEFAULT_REGISTRY),
        ("team/app", DEFAULT_REGISTRY),
        ("localhost/app", "localhost"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000"),
        ("registry.example.com/team/app:1", "registry.example.com"),
    ],
)
def test_registry_name(text: str, registry: str) -> None:
    assert parse_reference(text).registry_name == registry


@pytest.mark.parametrize("tag", ["1", "latest", "1.4.2-rc_1", "_x", "A" * 128, "v1.0"])
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b", "tagé", "1.4\n", "a b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReference, match="invalid tag"):
        check_tag(tag)


def test_invalid_reference_is_a_value_error() -> None:
    """Pydantic turns a ValueError raised in a validator into a validation error."""
    assert issubclass(InvalidReference, ValueError)


# --- reading without checking: the classifier's reader --------------------------------------


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[t[:40] for t, _ in ACCEPTED])
def test_a_valid_reference_reads_as_it_parses(text: str, expected: Reference) -> None:
    assert read_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "registry", "path", "tag"),
    [
        # What a failure may quote: refused by the engine, still named part by part.
        ("127.0.0.1:5000/Team/App:1", "127.0.0.1:5000", "Team/App", "1"),
        ("Team/app:1", DEFAULT_REGISTRY, "Team/app", "1"),
        (
            "reg.example.com/team/app:tag with space",
            "reg.example.com",
            "team/app",
            "tag with space",
        ),
        (f"reg.io/a//b@{SHA256}", "reg.io", "a//b", None),
        # A registry given with its userinfo keeps it (the classifier scrubs its output).
        ("bob:pw@reg.example.com/team/app:1", "bob:pw@reg.example.com", "team/app", "1"),
        ("", DEFAULT_REGISTRY, "", None),
        ("/", DEFAULT_REGISTRY, "", None),
    ],
)
def test_an_invalid_reference_is_read_without_refusal(
    text: str, registry: str, path: str, tag: str | None
) -> None:
    reference = read_reference(text)
    assert (reference.registry_name, reference.path, reference.tag) == (registry, path, tag)


def test_the_engine_reads_a_host_with_an_underscore_as_a_hub_namespace() -> None:
    # Valid as a path, not as a host: Docker Hub's, as parse_reference and the engine say.
    assert read_reference("foo_bar.com/app:1").registry_name == DEFAULT_REGISTRY


@pytest.mark.parametrize(
    ("given", "host"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("reg.example.com", "reg.example.com"),
        ("https://reg.example.com:5000/", "reg.example.com:5000"),
        ("https://bob:s3cr3t@reg.example.com", "reg.example.com"),
        ("bob:s3cr3t@reg.example.com:443", "reg.example.com:443"),
        ("http://[::1]:5000/v2/", "[::1]:5000"),
    ],
)
def test_registry_host(given: str, host: str) -> None:
    assert registry_host(given) == host
