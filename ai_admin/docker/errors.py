"""Docker's failures, turned into the agent's error codes.

Docker reports one failure in several shapes: a docker-py exception, a ``requests`` exception
from the engine's socket, an ``error`` chunk inside a JSON stream (a refused push or a failed
build step arrives there, under HTTP 200), or bare text. The engine answers 500 for nearly every
registry failure, so its status says little; the message says which layer failed (socket,
engine, registry, builder, host). So the message is read first, against ordered tables of
fragments taken from the sources that emit them (moby, distribution's ``errcode``, docker-py,
BuildKit), and a status is trusted only where it cannot mean anything else.

Order in the tables is the knowledge: a failed RUN step quotes its command, which may say
anything, so build steps are matched first; Docker Hub's rate-limit text mentions
authenticating, so rate limits precede authentication; the engine socket's errors also say
"connection refused", so they precede the network's. Keeping fragments in tables rather than
branches lets each be tested with a real message, without an engine.

What leaves this module may quote the user's input (a registry URL) and Docker's text; both
can carry credentials, so every string is scrubbed on the way out.
"""

from __future__ import annotations

import asyncio
import errno
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import SplitResult, urlsplit

import docker.errors
import requests
import urllib3.exceptions

from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError, code_info

__all__ = ["Classification", "DockerOperation", "classify", "docker_errors"]

DockerOperation = Literal["build", "push", "pull"]

C = ErrorCode
_MESSAGE_EXCERPT_CHARS = 300


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


def _re(pattern: str) -> re.Pattern[str]:
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
_LOCAL_HINT = "Build or tag {image} locally before pushing it (`docker tag <source> {image}`)."
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
_BUILD_RULES: tuple[Rule, ...] = (
    Rule(
        _re(r"The command '(?P<command>.+)' returned a non-zero code: (?P<exit_code>137)\b"),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _KILLED_HINT,
    ),
    Rule(
        _re(
            r'process "(?P<command>.+)" did not complete successfully: '
            r"exit code: (?P<exit_code>137)\b"
        ),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _KILLED_HINT,
    ),
    Rule(
        _re(r"The command '(?P<command>.+)' returned a non-zero code: (?P<exit_code>\d+)"),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _STEP_HINT,
    ),
    Rule(
        _re(
            r'process "(?P<command>.+)" did not complete successfully: '
            r"exit code: (?P<exit_code>\d+)"
        ),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _STEP_HINT,
    ),
    Rule(
        _re(r"executor failed running \[(?P<command>.+)\]: exit code: (?P<exit_code>\d+)"),
        C.DOCKER_BUILD_FAILED,
        _STEP_REASON,
        _STEP_HINT,
    ),
    Rule(
        _re(
            r"(?P<instruction>COPY|ADD) failed: file not found in build context or excluded by "
            r"\.dockerignore: stat (?P<file>.+?): file does not exist"
        ),
        C.DOCKER_BUILD_FAILED,
        _SOURCE_REASON,
        _SOURCE_HINT,
    ),
    Rule(
        _re(r'failed to calculate checksum of ref \S+: "/?(?P<file>[^"]+)": not found'),
        C.DOCKER_BUILD_FAILED,
        _BK_SOURCE_REASON,
        _BK_SOURCE_HINT,
    ),
    Rule(
        _re(r'failed to compute cache key: "/?(?P<file>[^"]+)" not found'),
        C.DOCKER_BUILD_FAILED,
        _BK_SOURCE_REASON,
        _BK_SOURCE_HINT,
    ),
    Rule(
        _re(
            r"dockerfile parse error (?:on )?line (?P<line>\d+): "
            r"unknown instruction: (?P<instruction>\S+)"
        ),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has an unknown instruction `{instruction}` on line {line}",
        "Fix or remove `{instruction}` on line {line} of the Dockerfile (FROM, RUN, COPY, ADD, "
        "ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, VOLUME, CMD, ENTRYPOINT, …).",
    ),
    Rule(
        _re(r"invalid from flag value (?P<stage>[^\s:]+)"),
        C.DOCKER_BUILD_FAILED,
        "`COPY --from={stage}` names no earlier stage and no image the engine could get",
        "Check the name in `COPY --from={stage}`: stages are named by `FROM … AS <name>`; "
        "an image there must exist locally or be pullable.",
        transient=False,
    ),
    Rule(
        _re(r"failed to reach build target (?P<target>\S+) in Dockerfile"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has no stage named `{target}`",
        "Set `target` to a name from a `FROM … AS <name>` line, or leave it out.",
    ),
    Rule(
        _re(r"unknown instruction: (?P<instruction>\S+)"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has an unknown instruction `{instruction}`",
        "Fix or remove `{instruction}` in the Dockerfile (FROM, RUN, COPY, ADD, ENV, ARG, "
        "WORKDIR, USER, EXPOSE, LABEL, VOLUME, CMD, ENTRYPOINT, …).",
    ),
    Rule(
        _re(r"dockerfile parse error (?:on )?line (?P<line>\d+): (?P<problem>[^\n]+)"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile has an error on line {line}: {problem}",
        "Fix line {line} of the Dockerfile: {problem}.",
    ),
    Rule(
        _re(r"Cannot locate specified Dockerfile: (?P<dockerfile>\S+)"),
        C.DOCKER_BUILD_FAILED,
        "the Dockerfile '{dockerfile}' is not in the build context",
        "Put '{dockerfile}' in {context}, or give its path relative to the context.",
    ),
    Rule(
        _re(r"the Dockerfile \((?P<dockerfile>[^)]+)\) cannot be empty"),
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
        _re(r'OCI runtime create failed.*?exec: "(?P<program>[^"]+)"'),
        C.DOCKER_BUILD_FAILED,
        "a step's program '{program}' could not be started",
        "Check that '{program}' exists in the image; the exec form of RUN needs its full path.",
    ),
)

# The engine's socket (moby client/errors.go, docker-py api/client.py).
_ENGINE_RULES: tuple[Rule, ...] = (
    Rule(
        _re(r"permission denied while trying to connect to the docker daemon|PermissionError\(13"),
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
_RULES: tuple[Rule, ...] = (
    *_ENGINE_RULES,
    # Docker Hub's rate-limit text mentions authenticating, so it precedes authentication.
    Rule("toomanyrequests", C.DOCKER_RATE_LIMITED),
    Rule("too many requests", C.DOCKER_RATE_LIMITED),
    Rule(
        "no basic auth credentials",
        C.DOCKER_AUTHENTICATION_FAILED,
        "the registry requires credentials and none were given",
    ),
    Rule("incorrect username or password", C.DOCKER_AUTHENTICATION_FAILED),
    Rule(_re(r"(?<![\w/.-])unauthorized(?![\w/.-])"), C.DOCKER_AUTHENTICATION_FAILED),
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
    Rule(_re(r"(?:^|: )denied(?::|$)"), C.DOCKER_PERMISSION_DENIED),  # a bare DENIED answer
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
        _LOCAL_HINT,
    ),
    Rule(
        "tag does not exist", C.DOCKER_IMAGE_NOT_FOUND, "no local image has this tag", _LOCAL_HINT
    ),
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
        _re(r"no matching manifest for (?P<platform>\S+)"),
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
    Rule(_re(r"\bEOF\b"), C.DOCKER_NETWORK_ERROR),  # the connection closed mid-transfer
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
_NOT_FOUND_TAIL: tuple[Rule, ...] = (Rule(_re(r"\bnot found\b"), C.DOCKER_IMAGE_NOT_FOUND),)

_TABLES: dict[str, tuple[Rule, ...]] = {
    "build": _BUILD_RULES + _RULES + _NOT_FOUND_TAIL,
    "push": _RULES,
    "pull": _RULES + _NOT_FOUND_TAIL,
}

# A registry's own status, quoted in the engine's text (distribution registry/client/errors.go,
# moby daemon/pkg/registry/auth.go, containerd's remotes).
_REGISTRY_STATUS: tuple[re.Pattern[str], ...] = (
    _re(r"HTTP status: (\d{3})"),
    _re(r"error parsing HTTP (\d{3}) response body"),
    _re(r"failed with status: (\d{3})"),
    _re(r"unexpected status\b.*?: (\d{3})\b"),
)
_STATUS_CODES: dict[int, ErrorCode] = {
    401: C.DOCKER_AUTHENTICATION_FAILED,
    403: C.DOCKER_PERMISSION_DENIED,
    404: C.DOCKER_IMAGE_NOT_FOUND,
    429: C.DOCKER_RATE_LIMITED,
}
# Engine statuses no message can overrule (the engine maps errdefs.Unauthorized to 401).
_DECISIVE_ENGINE_STATUS = frozenset({401, 429})

_ERRNO_CODES: dict[int, ErrorCode] = {
    errno.ENOSPC: C.SYSTEM_DISK_SPACE,
    errno.EDQUOT: C.SYSTEM_DISK_SPACE,
    errno.ENOMEM: C.SYSTEM_MEMORY_LIMIT,
    errno.EMFILE: C.SYSTEM_RESOURCE_LIMIT,
    errno.ENFILE: C.SYSTEM_RESOURCE_LIMIT,
    errno.EACCES: C.DOCKER_PERMISSION_DENIED,
    errno.EPERM: C.DOCKER_PERMISSION_DENIED,
}
# Errors of a socket with no file name: the engine's socket is gone or refuses.
_SOCKET_ERRNOS = frozenset(
    {errno.ENOENT, errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE}
)

_FALLBACK: dict[str, ErrorCode] = {
    "build": C.DOCKER_BUILD_FAILED,
    "push": C.DOCKER_PUSH_FAILED,
    "pull": C.DOCKER_PULL_FAILED,
}
_REASONS: dict[ErrorCode, str] = {
    C.DOCKER_IMAGE_NOT_FOUND: "the image or tag does not exist",
    C.DOCKER_AUTHENTICATION_FAILED: "the registry refused the credentials",
    C.DOCKER_PERMISSION_DENIED: "access was denied",
    C.DOCKER_NETWORK_ERROR: "the registry could not be reached",
    C.DOCKER_REGISTRY_ERROR: "the registry answered with an error",
    C.DOCKER_RATE_LIMITED: "the registry is limiting the request rate",
    C.DOCKER_DAEMON_UNAVAILABLE: "the Docker engine cannot be reached",
    C.DOCKER_INVALID_REFERENCE: "the image reference is not valid",
    C.SYSTEM_DISK_SPACE: "the Docker host ran out of disk space",
    C.SYSTEM_MEMORY_LIMIT: "the operation ran out of memory",
    C.SYSTEM_RESOURCE_LIMIT: "a system resource limit was hit",
    C.SYSTEM_TIMEOUT: "the Docker engine did not answer in time",
}
_GENERIC_REASON = "Docker reported an error"

# Concrete advice per code (and operation); a rule's own hint replaces it.
_HINTS: dict[tuple[ErrorCode, str | None], tuple[str, ...]] = {
    (C.DOCKER_DAEMON_UNAVAILABLE, None): (
        "Check that a Docker engine listens at {engine} (the agent's docker_host setting, "
        "else DOCKER_HOST).",
    ),
    (C.DOCKER_AUTHENTICATION_FAILED, None): (
        "Log in to {registry} (`docker login {registry}`) or give the task credentials for it.",
    ),
    (C.DOCKER_PERMISSION_DENIED, "push"): (
        "Check that the account used for {registry} may push to {repository}.",
    ),
    (C.DOCKER_PERMISSION_DENIED, "pull"): (
        "Check that the account used for {registry} may pull {repository}.",
    ),
    (C.DOCKER_IMAGE_NOT_FOUND, "pull"): (
        "Check that {image} exists in {registry}: repository and tag must match exactly.",
    ),
    (C.DOCKER_IMAGE_NOT_FOUND, "push"): (_LOCAL_HINT,),
    (C.DOCKER_IMAGE_NOT_FOUND, "build"): (
        "Check that the Dockerfile's FROM images exist in their registries.",
    ),
    (C.DOCKER_NETWORK_ERROR, None): (
        "Check that {registry} is reachable from the Docker host: address, port, DNS, proxy.",
    ),
    (C.DOCKER_REGISTRY_ERROR, None): ("Check the status and logs of {registry}.",),
    (C.DOCKER_RATE_LIMITED, None): (
        "Authenticate to {registry} for a higher limit, or retry later.",
    ),
    (C.DOCKER_INVALID_REFERENCE, None): (
        "Fix the reference '{image}': a lowercase repository and a tag of letters, digits, "
        "`_`, `.` and `-`.",
    ),
    (C.DOCKER_INVALID_REFERENCE, "build"): (
        "Check the tag '{image}' and the image names on the Dockerfile's FROM lines.",
    ),
}

_OPERATION_NAMES: dict[str, str] = {"build": "Build", "push": "Push", "pull": "Pull"}
_REGISTRY_URL = re.compile(r"https?://(?:[^/\s\"'@]+@)?([^/\s\"']+)/v[12]/")
_POOL_HOST = re.compile(r"host='(?P<host>[^']+)', port=(?P<port>\d+)")
_INT_GROUPS = frozenset({"exit_code", "line"})

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        _re(
            r"\b((?:proxy-)?authorization|x-registry-auth|x-registry-config)(\s*[:=]\s*)"
            r"(?:(?:basic|bearer|token|digest|negotiate)\s+)?[^\s,;\"']+"
        ),
        r"\1\2***",
    ),
    (_re(r"\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (_re(r"\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1***@"),
    (
        _re(
            r"(?<![\w/@:.%+-])[\w.%+-]+:[^\s/@:'\"]+@(?=[\w-]+(?:\.[\w-]+)*(?::\d+)?(?:[/\s'\"]|$))"
        ),
        "***@",
    ),
    (
        _re(
            r"\b(password|passwd|pwd|secret|token|access_token|refresh_token|identitytoken|"
            r"registrytoken|auth|api[_-]?key)\b([\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]+"
        ),
        r"\1\2***",
    ),
)


@dataclass(frozen=True)
class Classification:
    """What a Docker failure means for the agent: a code, whether to retry, and advice."""

    code: ErrorCode
    transient: bool
    description: str
    suggestions: list[str]
    message: str
    details: dict[str, Any]

    def to_error(self) -> ExecutionError:
        return ExecutionError(
            self.message,
            code=self.code,
            details=self.details,
            suggestions=self.suggestions,
            transient=self.transient,
        )


class _Verdict(NamedTuple):
    code: ErrorCode
    rule: Rule | None = None
    groups: Mapping[str, str] = {}


class _Context(NamedTuple):
    operation: str
    image: str | None
    registry: str | None
    path: str | None
    engine: str | None


def classify(
    error: object,
    operation: DockerOperation,
    *,
    image: str | None = None,
    registry: str | None = None,
    path: str | None = None,
    engine: str | None = None,
) -> Classification:
    """Classify what Docker gave: an exception, a stream error chunk, or its message.

    ``engine`` is the engine address the client used: Docker's own text names neither the
    socket nor the host, so an unreachable engine is named from it."""
    text = _docker_message(error)
    engine_status = _engine_status(error)
    registry_status = _registry_status(text)
    verdict = _verdict(error, text, operation, engine_status, registry_status, registry)
    named = _registry_name(registry) if registry else _registry_in(text, image, operation)
    context = _Context(operation, image, named, path, engine)
    fields = _fields(context, verdict.groups)
    return Classification(
        code=verdict.code,
        transient=_transient(verdict, registry_status),
        description=code_info(verdict.code).description,
        suggestions=_suggestions(verdict, operation, fields),
        message=_message(verdict, text, context, fields),
        details=_details(
            verdict.code, error, text, context, engine_status, registry_status, verdict.groups
        ),
    )


_DOCKER_FAILURES: tuple[type[BaseException], ...] = (
    docker.errors.DockerException,
    docker.errors.StreamParseError,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)


@contextmanager
def docker_errors(
    operation: DockerOperation,
    *,
    image: str | None = None,
    registry: str | None = None,
    path: str | None = None,
    engine: str | None = None,
) -> Iterator[None]:
    """The boundary where docker-py's and requests' exceptions become ``ExecutionError``."""
    try:
        yield
    except (AiAdminError, asyncio.CancelledError):
        raise
    except _DOCKER_FAILURES as exc:
        clf = classify(exc, operation, image=image, registry=registry, path=path, engine=engine)
        raise clf.to_error() from exc


# --- reading the input ----------------------------------------------------------------------


def _docker_message(error: object) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        return _chunk_message(error)
    if isinstance(error, docker.errors.APIError) and error.explanation:
        explanation = error.explanation
        return (
            explanation.decode(errors="replace")
            if isinstance(explanation, bytes)
            else str(explanation)
        )
    if isinstance(error, docker.errors.BuildError):
        return str(error.msg)
    return str(error) or type(error).__name__


def _chunk_message(chunk: Mapping[Any, Any]) -> str:
    detail = chunk.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return str(detail["message"])
    for key in ("error", "message"):
        if chunk.get(key):
            return str(chunk[key])
    return ""


def _engine_status(error: object) -> int | None:
    status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _registry_status(text: str) -> int | None:
    for pattern in _REGISTRY_STATUS:
        if found := pattern.search(text):
            return int(found.group(1))
    return None


# --- deciding the code ----------------------------------------------------------------------


def _verdict(
    error: object,
    text: str,
    operation: str,
    engine_status: int | None,
    registry_status: int | None,
    registry: str | None,
) -> _Verdict:
    if engine_status in _DECISIVE_ENGINE_STATUS:
        return _Verdict(_STATUS_CODES[engine_status])
    found = _transport(error, text, registry) or _match(_TABLES.get(operation, _RULES), text)
    if found is None or found.code is C.DOCKER_REGISTRY_ERROR:
        found = _by_registry_status(registry_status) or found
    if found is None and engine_status in _STATUS_CODES:
        found = _Verdict(_STATUS_CODES[engine_status])
    return found or _Verdict(_FALLBACK.get(operation, C.UNKNOWN_ERROR))


def _match(rules: tuple[Rule, ...], text: str) -> _Verdict | None:
    folded = text.casefold()
    for rule in rules:
        if isinstance(rule.pattern, str):
            if rule.pattern.casefold() in folded:
                return _Verdict(rule.code, rule)
        elif found := rule.pattern.search(text):
            groups = {k: v for k, v in found.groupdict().items() if v is not None}
            return _Verdict(rule.code, rule, groups)
    return None


def _by_registry_status(status: int | None) -> _Verdict | None:
    if status is None or status < 400:
        return None
    return _Verdict(_STATUS_CODES.get(status, C.DOCKER_REGISTRY_ERROR))


def _transport(error: object, text: str, registry: str | None) -> _Verdict | None:
    """The link to the engine, known by exception type: docker-py talks only to the engine."""
    if isinstance(error, requests.exceptions.ReadTimeout | TimeoutError):
        return _Verdict(C.SYSTEM_TIMEOUT)
    if isinstance(
        error,
        requests.exceptions.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.ProtocolError,
    ):
        if _is_registry_request(error, text, registry):
            return _Verdict(C.DOCKER_NETWORK_ERROR)
        return _match(_ENGINE_RULES, text) or _Verdict(C.DOCKER_DAEMON_UNAVAILABLE)
    if isinstance(error, OSError) and not isinstance(error, requests.RequestException):
        return _os_error(error)
    return None


def _os_error(error: OSError) -> _Verdict | None:
    if error.errno in _ERRNO_CODES:
        return _Verdict(_ERRNO_CODES[error.errno])
    if error.filename is None and error.errno in _SOCKET_ERRNOS:
        return _Verdict(C.DOCKER_DAEMON_UNAVAILABLE)
    return None


def _is_registry_request(error: object, text: str, registry: str | None) -> bool:
    if not registry:
        return False
    url = getattr(getattr(error, "request", None), "url", None)
    if isinstance(url, str) and url:
        target = urlsplit(url)
        host, port = target.hostname, target.port
    elif found := _POOL_HOST.search(text):
        host, port = found["host"], int(found["port"])
    else:
        return False
    wanted = _registry_url(registry)
    same_port = wanted.port is None or wanted.port == port
    return host is not None and host.lower() == (wanted.hostname or "") and same_port


def _registry_url(registry: str) -> SplitResult:
    return urlsplit(registry if "//" in registry else f"//{registry}")


def _registry_name(registry: str) -> str:
    """``host:port`` of a registry given as a name or a URL (without any user:password@)."""
    return _registry_url(registry).netloc.rpartition("@")[2] or registry


def _transient(verdict: _Verdict, registry_status: int | None) -> bool:
    if verdict.rule is not None and verdict.rule.transient is not None:
        return verdict.rule.transient
    if verdict.code is C.DOCKER_REGISTRY_ERROR and registry_status is not None:
        return registry_status >= 500
    return code_info(verdict.code).transient


# --- writing the result ---------------------------------------------------------------------


def _registry_in(text: str, image: str | None, operation: str) -> str | None:
    """The registry a message names (``Head "https://reg:5000/v2/…"``), else the image's."""
    if found := _REGISTRY_URL.search(text):
        return found.group(1)
    if image and operation != "build":  # a build's failures concern its FROM images
        return _registry_of(image)
    return None


def _registry_of(image: str) -> str:
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _repository_of(image: str) -> str:
    name = image.split("@", 1)[0]
    first, slash, rest = name.partition("/")
    if slash and first == _registry_of(name):
        name = rest
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def _fields(context: _Context, groups: Mapping[str, str]) -> dict[str, str]:
    fields = dict(groups)
    if context.image:
        fields["image"] = context.image
        fields["repository"] = _repository_of(context.image)
    if context.registry:
        fields["registry"] = context.registry
    if context.engine:
        fields["engine"] = context.engine
    fields["context"] = (
        f"the build context ({context.path})" if context.path else "the build context"
    )
    return fields


def _fill(template: str, fields: Mapping[str, str]) -> str | None:
    try:
        return template.format_map(fields)
    except KeyError:  # a template naming what this failure does not know is left out
        return None


def _message(verdict: _Verdict, text: str, context: _Context, fields: Mapping[str, str]) -> str:
    rule = verdict.rule
    reason = _fill(rule.reason, fields) if rule is not None and rule.reason else None
    subject = _OPERATION_NAMES.get(context.operation, "Docker operation")
    if context.image:
        subject = f"{subject} of {context.image}"
    line = f"{subject} failed: {reason or _REASONS.get(verdict.code, _GENERIC_REASON)}"
    excerpt = _one_line(text)
    if reason is None and excerpt:
        line = f"{line} ({excerpt})"
    return _scrub(f"{line}.")


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _MESSAGE_EXCERPT_CHARS:
        return flat[: _MESSAGE_EXCERPT_CHARS - 1] + "…"
    return flat


def _suggestions(verdict: _Verdict, operation: str, fields: Mapping[str, str]) -> list[str]:
    rule = verdict.rule
    if rule is not None and rule.hint:
        templates: tuple[str, ...] = (rule.hint,)
    else:
        templates = _HINTS.get((verdict.code, operation)) or _HINTS.get((verdict.code, None), ())
    # Only the concrete ones quote input that may carry a credential; the catalogue's are ours.
    concrete = [_scrub(s) for s in (_fill(t, fields) for t in templates) if s]
    return list(dict.fromkeys([*concrete, *code_info(verdict.code).suggestions]))


def _details(
    verdict_code: ErrorCode,
    error: object,
    text: str,
    context: _Context,
    engine_status: int | None,
    registry_status: int | None,
    groups: Mapping[str, str],
) -> dict[str, Any]:
    details: dict[str, Any] = {"operation": context.operation, "docker_message": _scrub(text)}
    optional: dict[str, Any] = {
        "http_status": engine_status,
        "registry_http_status": registry_status,
        "image": context.image,
        "registry": context.registry,
        "docker_host": context.engine if verdict_code is C.DOCKER_DAEMON_UNAVAILABLE else None,
        "error_type": type(error).__name__ if isinstance(error, BaseException) else None,
    }
    details.update((k, v) for k, v in optional.items() if v is not None)
    for key, value in groups.items():
        details[key] = int(value) if key in _INT_GROUPS else value
    return {k: _scrub(v) if isinstance(v, str) else v for k, v in details.items()}


def _scrub(text: str) -> str:
    """Replace anything that looks like a credential with ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text
