"""The classifier's rules: what a fragment of Docker's text means, as ordered tables of data.

A rule is a case-insensitive fragment or a regex, the ``ErrorCode`` it means, and optionally a
reason and a hint (templates over the regex's named groups and the failure's context) and a
transient flag that overrides the code's own. The fragments come from the sources that emit
them (moby, distribution's ``errcode``, docker-py, BuildKit, containerd) or from real messages.

Order: the first matching rule decides. ``TABLES`` gives each operation its rules, tried top to
bottom, and the order is knowledge:

1. ``BUILD_RULES`` (builds only): a failed RUN step quotes its command, which may say anything
   ("echo denied"), so the builder's own messages are matched before anything else; within
   them, exit code 137 (the out-of-memory killer's) precedes the general exit-code rule.
2. ``ENGINE_RULES``: the engine's socket; its failures also say "connection refused" and
   "permission denied", so they precede the network's and the registry's.
3. Rate limits before authentication: Docker Hub's rate-limit text mentions authenticating.
4. Authentication before Docker Hub's ambiguous "repository does not exist or may require
   'docker login'", which in turn precedes the bare DENIED it ends with.
5. Host resources (disk, memory, descriptors) before the network: Go's dial fails with "too
   many open files" for want of descriptors.
6. TLS set-up before the network: a certificate problem also says "dial tcp" or "Get".
7. The registry's own error codes, then ``NOT_FOUND_TAIL`` (builds and pulls only):
   containerd and BuildKit say only "<ref>: not found", too loose to come earlier.

A message no rule matches falls to what the pipeline (``ai_admin.docker.errors``) reads from
statuses and exception types, then to the operation's own failure code.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ai_admin.errors import ErrorCode

C = ErrorCode


class Rule(NamedTuple):
    """A fragment (case-insensitive substring) or a regex, and what Docker means by it.

    ``reason`` and ``hint`` are templates over the regex's named groups and the context
    (``image``, ``registry``, ``repository``, ``context``); a hint replaces the code's own.
    """

    pattern: str | re.Pattern[str]
    code: ErrorCode
    reason: str | None = None
    hint: str | None = None
    transient: bool | None = None


def regex(pattern: str) -> re.Pattern[str]:
    """A rule's regex: case-insensitive, ``.`` matching newlines too (a message may span lines)."""
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


_STEP_REASON = "step `{command}` returned exit code {exit_code}"
_STEP_HINT = (
    "Run `{command}` in the image of the step before it to see why it exits with {exit_code}."
)
_SOURCE_REASON = "{instruction} source '{file}' is not in the build context"
_SOURCE_HINT = (
    "{instruction} source '{file}' is not in {context}, or .dockerignore excludes it: "
    "add it there or fix the path in the Dockerfile."
)
_BK_SOURCE_REASON = "COPY/ADD source '{file}' is not in the build context"
_BK_SOURCE_HINT = (
    "COPY/ADD source '{file}' is not in {context} (or the stage it is copied from), "
    "or .dockerignore excludes it: add it there or fix the path in the Dockerfile."
)
LOCAL_HINT = "Build or tag {image} locally before pushing it (`docker tag <source> {image}`)."
_SOCKET_HINT = (
    "Let the agent's user use the Docker socket (add it to the `docker` group), then restart it."
)
_CA_HINT = "Trust {registry}'s certificate: put its CA in /etc/docker/certs.d/{registry}/ca.crt."
_HTTP_HINT = (
    "{registry} speaks plain HTTP: list it in `insecure-registries` in /etc/docker/daemon.json, "
    "or serve it over TLS."
)

_KILLED_HINT = (
    "Exit code 137 means `{command}` was killed (SIGKILL), most often by the out-of-memory "
    "killer: give the build more memory or make the step use less."
)

# The classic builder (moby daemon/builder/dockerfile) and BuildKit (solver/llbsolver,
# frontend/dockerfile). Tried first, and only for builds. The engine does not say a step was
# OOM-killed, only that it exited with 137, so that stays a build failure with a hint.
BUILD_RULES: tuple[Rule, ...] = (
    Rule(
        regex(r"The command '(?P<command>.+)' returned a non-zero code: (?P<exit_code>137)\b"),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _KILLED_HINT,
    ),
    Rule(
        regex(
            r'process "(?P<command>.+)" did not complete successfully: '
            r"exit code: (?P<exit_code>137)\b"
        ),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _KILLED_HINT,
    ),
    Rule(
        regex(r"The command '(?P<command>.+)' returned a non-zero code: (?P<exit_code>\d+)"),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _STEP_HINT,
    ),
    Rule(
        regex(
            r'process "(?P<command>.+)" did not complete successfully: '
            r"exit code: (?P<exit_code>\d+)"
        ),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _STEP_HINT,
    ),
    Rule(
        regex(r"executor failed running \[(?P<command>.+)\]: exit code: (?P<exit_code>\d+)"),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _STEP_HINT,
    ),
    Rule(
        regex(
            r"(?P<instruction>COPY|ADD) failed: file not found in build context or excluded by "
            r"\.dockerignore: stat (?P<file>.+?): file does not exist"
        ),
        C.DOCKER_BUILD_FAILED,
        _SOURCE_REASON,
        _SOURCE_HINT,
    ),
    Rule(
        regex(r'failed to calculate checksum of ref \S+: "/?(?P<file>[^"]+)": not found'),
        C.DOCKER_BUILD_FAILED,
        _BK_SOURCE_REASON,
        _BK_SOURCE_HINT,
    ),
    Rule(
        regex(r'failed to compute cache key: "/?(?P<file>[^"]+)" not found'),
        C.DOCKER_BUILD_FAILED,
        _BK_SOURCE_REASON,
        _BK_SOURCE_HINT,
    ),
    Rule(
        regex(
            r"dockerfile parse error (?:on )?line (?P<line>\d+): "
            r"unknown instruction: (?P<instruction>\S+)"
        ),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has an unknown instruction `{instruction}` on line {line}",
        "Fix or remove `{instruction}` on line {line} of the Dockerfile (FROM, RUN, COPY, ADD, "
        "ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, VOLUME, CMD, ENTRYPOINT, …).",
    ),
    Rule(
        regex(r"invalid from flag value (?P<stage>[^\s:]+)"),
        C.DOCKER_BUILD_FAILED,
        "`COPY --from={stage}` names no earlier stage and no image the engine could get",
        "Check the name in `COPY --from={stage}`: stages are named by `FROM … AS <name>`; "
        "an image there must exist locally or be pullable.",
        transient=False,
    ),
    Rule(
        regex(r"failed to reach build target (?P<target>\S+) in Dockerfile"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has no stage named `{target}`",
        "Set `target` to a name from a `FROM … AS <name>` line, or leave it out.",
    ),
    Rule(
        regex(r"unknown instruction: (?P<instruction>\S+)"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has an unknown instruction `{instruction}`",
        "Fix or remove `{instruction}` in the Dockerfile (FROM, RUN, COPY, ADD, ENV, ARG, "
        "WORKDIR, USER, EXPOSE, LABEL, VOLUME, CMD, ENTRYPOINT, …).",
    ),
    Rule(
        regex(r"dockerfile parse error (?:on )?line (?P<line>\d+): (?P<problem>[^\n]+)"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has an error on line {line}: {problem}",
        "Fix line {line} of the Dockerfile: {problem}.",
    ),
    Rule(
        regex(r"Cannot locate specified Dockerfile: (?P<dockerfile>\S+)"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile '{dockerfile}' is not in the build context",
        "Put '{dockerfile}' in {context}, or give its path relative to the context.",
    ),
    Rule(
        regex(r"the Dockerfile \((?P<dockerfile>[^)]+)\) cannot be empty"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile '{dockerfile}' is empty",
    ),
    Rule(
        "no build stage in current context",
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has no FROM instruction",
        "Start the Dockerfile with a FROM line (`FROM scratch` for an empty base).",
    ),
    Rule(
        regex(r'OCI runtime create failed.*?exec: "(?P<program>[^"]+)"'),
        C.DOCKER_BUILD_FAILED,
        "a step's program '{program}' could not be started",
        "Check that '{program}' exists in the image; the exec form of RUN needs its full path.",
    ),
)

# The engine's socket (moby client/errors.go, docker-py api/client.py).
ENGINE_RULES: tuple[Rule, ...] = (
    Rule(
        regex(
            r"permission denied while trying to connect to the docker daemon|PermissionError\(13"
        ),
        C.DOCKER_PERMISSION_DENIED,
        "the agent's user may not use the Docker socket",
        _SOCKET_HINT,
    ),
    Rule("Cannot connect to the Docker daemon", C.DOCKER_DAEMON_UNAVAILABLE),
    Rule("Error while fetching server API version", C.DOCKER_DAEMON_UNAVAILABLE),
)

# Every operation, in order. Sources: moby daemon/internal/distribution (errors.go, push.go,
# push_v2.go), distribution registry/api/errcode (the engine prints a code as "<lower-case
# value>: <message>") and registry/client/errors.go, containerd's remotes. The engine's socket
# comes first: its failures also say "connection refused".
RULES: tuple[Rule, ...] = (
    *ENGINE_RULES,
    # Docker Hub's rate-limit text mentions authenticating, so it precedes authentication.
    Rule("toomanyrequests", C.DOCKER_RATE_LIMITED),
    Rule("too many requests", C.DOCKER_RATE_LIMITED),
    Rule(
        "no basic auth credentials",
        C.DOCKER_AUTHENTICATION_FAILED,
        "the registry requires credentials and none were given",
    ),
    Rule("incorrect username or password", C.DOCKER_AUTHENTICATION_FAILED),
    Rule(regex(r"(?<![\w/.-])unauthorized(?![\w/.-])"), C.DOCKER_AUTHENTICATION_FAILED),
    Rule("authentication required", C.DOCKER_AUTHENTICATION_FAILED),
    # Docker Hub answers DENIED for a missing repository and a private one alike; moby words it
    # so. An explicit "unauthorized" was matched above, so what remains is taken as not found.
    Rule(
        "repository does not exist or may require 'docker login'",
        C.DOCKER_IMAGE_NOT_FOUND,
        "the repository does not exist, or is private and needs a login",
        "Check that {image} exists; if it is private, log in to {registry} with an account "
        "that may pull it.",
    ),
    Rule("not found: does not exist or no pull access", C.DOCKER_IMAGE_NOT_FOUND),
    Rule("requested access to the resource is denied", C.DOCKER_PERMISSION_DENIED),
    Rule(regex(r"(?:^|: )denied(?::|$)"), C.DOCKER_PERMISSION_DENIED),  # a bare DENIED answer
    Rule("403 Forbidden", C.DOCKER_PERMISSION_DENIED),
    Rule("permission denied", C.DOCKER_PERMISSION_DENIED),
    Rule("invalid reference format", C.DOCKER_INVALID_REFERENCE),
    Rule("must be lowercase", C.DOCKER_INVALID_REFERENCE),
    Rule("invalid tag format", C.DOCKER_INVALID_REFERENCE),
    Rule("name invalid", C.DOCKER_INVALID_REFERENCE),  # errcode NAME_INVALID
    Rule("tag invalid", C.DOCKER_INVALID_REFERENCE),  # errcode TAG_INVALID
    Rule(
        "An image does not exist locally with the tag",
        C.DOCKER_IMAGE_NOT_FOUND,
        "no local image has this name",
        LOCAL_HINT,
    ),
    Rule("tag does not exist", C.DOCKER_IMAGE_NOT_FOUND, "no local image has this tag", LOCAL_HINT),
    Rule("No such image", C.DOCKER_IMAGE_NOT_FOUND, "no local image has this name"),
    Rule(
        "name unknown",
        C.DOCKER_IMAGE_NOT_FOUND,
        "the registry has no such repository",
        "{registry} has no repository {repository}: check the name; registries that do not "
        "create repositories on push (ECR, Harbor projects) need it created first.",
    ),
    Rule("manifest unknown", C.DOCKER_IMAGE_NOT_FOUND),
    Rule(
        regex(r"no matching manifest for (?P<platform>\S+)"),
        C.DOCKER_IMAGE_NOT_FOUND,
        "the image has no variant for {platform}",
    ),
    Rule("no space left on device", C.SYSTEM_DISK_SPACE),
    Rule("disk quota exceeded", C.SYSTEM_DISK_SPACE),
    Rule("cannot allocate memory", C.SYSTEM_MEMORY_LIMIT),
    Rule("out of memory", C.SYSTEM_MEMORY_LIMIT),
    Rule("OOMKilled", C.SYSTEM_MEMORY_LIMIT),
    Rule("too many open files", C.SYSTEM_RESOURCE_LIMIT),
    Rule("resource temporarily unavailable", C.SYSTEM_RESOURCE_LIMIT),
    # TLS set-up: the network works but the configuration is wrong; a retry will not help.
    Rule(
        "x509:",
        C.DOCKER_NETWORK_ERROR,
        "the registry's TLS certificate is not trusted",
        _CA_HINT,
        transient=False,
    ),
    Rule(
        "server gave HTTP response to HTTPS client",
        C.DOCKER_NETWORK_ERROR,
        "the registry speaks HTTP where the engine expects HTTPS",
        _HTTP_HINT,
        transient=False,
    ),
    Rule(
        "does not look like a TLS handshake",
        C.DOCKER_NETWORK_ERROR,
        "the registry speaks HTTP where the engine expects HTTPS",
        _HTTP_HINT,
        transient=False,
    ),
    Rule("connection refused", C.DOCKER_NETWORK_ERROR),
    Rule("no such host", C.DOCKER_NETWORK_ERROR),
    Rule("i/o timeout", C.DOCKER_NETWORK_ERROR),
    Rule("TLS handshake timeout", C.DOCKER_NETWORK_ERROR),
    Rule("net/http: request canceled", C.DOCKER_NETWORK_ERROR),
    Rule("Client.Timeout exceeded", C.DOCKER_NETWORK_ERROR),
    Rule("context deadline exceeded", C.DOCKER_NETWORK_ERROR),
    Rule("connection reset by peer", C.DOCKER_NETWORK_ERROR),
    Rule("network is unreachable", C.DOCKER_NETWORK_ERROR),
    Rule("no route to host", C.DOCKER_NETWORK_ERROR),
    Rule("server misbehaving", C.DOCKER_NETWORK_ERROR),
    Rule("dial tcp", C.DOCKER_NETWORK_ERROR),
    Rule(regex(r"\bEOF\b"), C.DOCKER_NETWORK_ERROR),  # the connection closed mid-transfer
    Rule("blob upload unknown", C.DOCKER_REGISTRY_ERROR),
    Rule("blob upload invalid", C.DOCKER_REGISTRY_ERROR),
    Rule("blob unknown", C.DOCKER_REGISTRY_ERROR),
    Rule("unknown blob", C.DOCKER_REGISTRY_ERROR),
    Rule("unknown: unknown error", C.DOCKER_REGISTRY_ERROR),
    Rule("service unavailable", C.DOCKER_REGISTRY_ERROR),
    Rule("The operation is unsupported", C.DOCKER_REGISTRY_ERROR, transient=False),
    Rule("received unexpected HTTP status", C.DOCKER_REGISTRY_ERROR),
    Rule("error parsing HTTP", C.DOCKER_REGISTRY_ERROR),
)

# containerd and BuildKit say only "<ref>: not found" for a missing image; too loose for push.
NOT_FOUND_TAIL: tuple[Rule, ...] = (Rule(regex(r"\bnot found\b"), C.DOCKER_IMAGE_NOT_FOUND),)

TABLES: dict[str, tuple[Rule, ...]] = {
    "build": BUILD_RULES + RULES + NOT_FOUND_TAIL,
    "push": RULES,
    "pull": RULES + NOT_FOUND_TAIL,
}
