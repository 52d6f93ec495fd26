"""The classifier's rules: what a fragment of Docker's text means, as ordered tables of data.

A rule is a case-insensitive fragment or a regex, the ``ErrorCode`` it means, and optionally a
reason and a hint (templates over the regex's named groups and the failure's context) and a
transient flag that overrides the code's own. The fragments come from the sources that emit
them (moby, distribution's ``errcode``, docker-py, BuildKit, containerd) or from real messages.

Order: the first matching rule decides. ``TABLES`` gives each operation its rules, tried top to
bottom, and the order is knowledge:

1. ``BUILD_RULES`` (builds only): a context file the client may not read, then the builder's
   own messages. A failed RUN step quotes its command, which may say anything ("echo denied"),
   so these come before everything else; exit code 137 (the out-of-memory killer's) precedes
   the general exit-code rule.
2. ``ENGINE_RULES``: the engine's socket; its failures also say "connection refused" and
   "permission denied", so they precede the network's and the registry's. Then the SDK's
   ``READ_TIMEOUT``: a timeout while asking the API version is an engine that hangs (above).
3. Rate limits before authentication: Docker Hub's rate-limit text mentions authenticating.
4. An expired or revoked token first among the authentication rules, and immutable tags after
   them: both come wrapped in Docker Hub's ambiguous "repository does not exist or may require
   'docker login'", in a DENIED or in TAG_INVALID, whose rules follow. The ambiguous answer in
   turn precedes the bare DENIED it ends with.
5. Host resources (disk, memory, descriptors) before the network: Go's dial fails with "too
   many open files" for want of descriptors.
6. Layers that fail their digest, then TLS set-up before the network (a certificate problem
   also says "Get" and may say "dial tcp"); an expired certificate or one for another name
   before the general x509 rule.
7. The registry's own error codes; a 404 with a body no registry sends before the general
   "error parsing HTTP"; JSON the agent cannot parse (``MALFORMED_STREAM``, anchored at the
   start of the text); then ``NOT_FOUND_TAIL`` (builds and pulls only): containerd and
   BuildKit say only "<ref>: not found", too loose to come earlier.

Where a real message matches two rules with different outcomes, ``ORDER_DECIDES`` in
``tests/unit/classifier_cases.py`` holds it: swapping the two rules fails that case.

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

    ``code`` None means the operation's own failure (``DOCKER_BUILD_FAILED``,
    ``DOCKER_PUSH_FAILED``, ``DOCKER_PULL_FAILED``). ``reason`` and ``hint`` are templates over
    the regex's named groups and the context (``image``, ``registry``, ``repository``,
    ``context``, ``engine``); a hint replaces the code's own, and a tuple of hints gives
    alternatives, the first whose fields the failure knows. ``decisive``: a registry status
    quoted in the text does not refine the code (it does for a generic registry error).
    """

    pattern: str | re.Pattern[str]
    code: ErrorCode | None
    reason: str | None = None
    hint: str | tuple[str, ...] | None = None
    transient: bool | None = None
    decisive: bool = False


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
_TLS_REASON = "the registry's TLS set-up is wrong: {problem}"
_UNREADABLE_REASON = "the client may not read '{file}' in the build context"
_UNREADABLE_HINT = (
    "Make '{file}' readable by the user that sends the build context (the agent's user), "
    "or exclude it in .dockerignore."
)
_RELOGIN_HINT = (
    "Log in to {registry} again for a fresh token (`docker login {registry}`; for Amazon ECR "
    "`aws ecr get-login-password | docker login --username AWS --password-stdin {registry}`), "
    "or give the task current credentials."
)
_IMMUTABLE_HINT = (
    "The tag of {image} already exists in {registry} and may not be overwritten there: push "
    "under a new tag (a version or a commit), or make the repository's tags mutable."
)
_UPLOAD_DIGEST_HINT = (
    "Retry: a fresh upload usually succeeds. If it keeps failing, a proxy in front of "
    "{registry} changes what is sent, or the local image is damaged (pull or build it again)."
)
_DIGEST_HINT = (
    "Retry: a fresh download usually succeeds. If it keeps failing, the registry (or a proxy "
    "or mirror in front of it) serves content that does not match its digest."
)

_KILLED_HINT = (
    "Exit code 137 means `{command}` was killed (SIGKILL), most often by the out-of-memory "
    "killer: give the build more memory or make the step use less."
)

# docker-py's words for a context file it may not read; the pipeline gives a PermissionError
# with a file name this rule's reason and hint.
UNREADABLE_CONTEXT_FILE = Rule(
    regex(r"Can not read file in context: (?P<file>\S+)"),
    C.DOCKER_PERMISSION_DENIED,
    _UNREADABLE_REASON,
    _UNREADABLE_HINT,
)

# The classic builder (moby daemon/builder/dockerfile) and BuildKit (solver/llbsolver,
# frontend/dockerfile). Tried first, and only for builds. The engine does not say a step was
# OOM-killed, only that it exited with 137, so that stays a build failure with a hint.
BUILD_RULES: tuple[Rule, ...] = (
    # A context file the client may not read: the docker CLI (cli/command/image/build/context.go
    # ValidateContextDirectory) and docker-py (utils/build.py create_archive) refuse it.
    Rule(
        regex(r"error checking context: '?no permission to read from '(?P<file>[^']+)'"),
        C.DOCKER_PERMISSION_DENIED,
        _UNREADABLE_REASON,
        _UNREADABLE_HINT,
    ),
    UNREADABLE_CONTEXT_FILE,
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

# The SDK's read timeout (urllib3 ``ReadTimeoutError``, requests ``ReadTimeout``): the engine
# took the request and did not answer in time. Not the operation's failure; a retry may pass.
# After the engine's rules: a timeout while asking the API version is an engine that hangs.
READ_TIMEOUT = Rule(
    "Read timed out",
    C.SYSTEM_TIMEOUT,
    "the Docker engine did not answer within the client's read timeout",
    "The engine at {engine} took the request but did not answer in time: check that it is "
    "not hung or overloaded (`docker info`), or give the client a longer timeout.",
    transient=True,
)

# What the agent cannot read from the engine: JSON that does not parse (docker-py's
# ``StreamParseError`` quotes Python's json error). No guess at the operation's failure.
MALFORMED_STREAM = Rule(
    regex(
        r"^(?:Expecting (?:value|'[,:]' delimiter|property name enclosed in double quotes)|"
        r"Unterminated string starting at|Extra data|Invalid control character at|"
        r"Invalid \\escape): line \d+ column \d+"
    ),
    C.UNKNOWN_ERROR,
    "the engine's answer is not the JSON stream the agent reads",
    "Check what answers at {engine}: the Docker engine streams JSON; a proxy or another "
    "service there sends something else.",
    transient=False,
)

# Every operation, in order. Sources: moby daemon/internal/distribution (errors.go, push.go,
# push_v2.go), distribution registry/api/errcode (the engine prints a code as "<lower-case
# value>: <message>") and registry/client/errors.go, containerd's remotes. The engine's socket
# comes first: its failures also say "connection refused".
RULES: tuple[Rule, ...] = (
    *ENGINE_RULES,
    READ_TIMEOUT,
    # Docker Hub's rate-limit text mentions authenticating, so it precedes authentication.
    Rule("toomanyrequests", C.DOCKER_RATE_LIMITED),
    Rule("too many requests", C.DOCKER_RATE_LIMITED),
    # An expired or revoked token (ECR "Your authorization token has expired", Docker Hub
    # "personal access token is expired"), also inside Docker Hub's ambiguous "pull access
    # denied" and behind a DENIED: a login problem, so before both.
    Rule(
        regex(
            r"\btoken (?:has |is )?(?:expired|been revoked|revoked)\b|"
            r"\bexpired (?:(?:auth(?:orization)?|access|bearer|identity) )?token\b"
        ),
        C.DOCKER_AUTHENTICATION_FAILED,
        "the registry's token for these credentials has expired or was revoked",
        _RELOGIN_HINT,
    ),
    Rule(
        "no basic auth credentials",
        C.DOCKER_AUTHENTICATION_FAILED,
        "the registry requires credentials and none were given",
    ),
    Rule("incorrect username or password", C.DOCKER_AUTHENTICATION_FAILED),
    Rule(regex(r"(?<![\w/.-])unauthorized(?![\w/.-])"), C.DOCKER_AUTHENTICATION_FAILED),
    Rule("authentication required", C.DOCKER_AUTHENTICATION_FAILED),
    # A registry that refuses to overwrite an immutable tag: Amazon ECR (TAG_INVALID), Harbor
    # (DENIED before 2.0, PRECONDITION since), Docker Hub (DENIED). Before TAG_INVALID and the
    # DENIED rules, which would call it a bad reference or a permission problem.
    Rule(
        regex(
            r"cannot be overwritten because the (?:repository|tag) is immutable|"
            r"is immutable, cannot be overwrite|configured as immutable|"
            r"cannot be updated due to immutability settings"
        ),
        C.DOCKER_PUSH_FAILED,
        "the registry refuses to overwrite the tag: it is immutable there",
        _IMMUTABLE_HINT,
        transient=False,
    ),
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
    # A layer whose content does not match its digest (moby pull_v2.go, containerd's content
    # store, distribution's DIGEST_INVALID on upload): the operation's own failure, and a fresh
    # transfer usually succeeds.
    Rule(
        regex(
            r"filesystem layer verification failed for digest (?P<digest>\S+)|"
            r"unexpected commit digest"
        ),
        None,
        "a downloaded layer did not match its digest",
        _DIGEST_HINT,
        transient=True,
    ),
    Rule(
        regex(r"provided digest did not match uploaded content"),
        None,
        "an uploaded layer did not match its digest",
        _UPLOAD_DIGEST_HINT,
        transient=True,
    ),
    # TLS set-up: the registry's configuration (or the engine's) is wrong, not the network; a
    # retry will not help. The specific certificate problems precede the general one.
    Rule(
        regex(r"x509: (?P<problem>certificate has expired or is not yet valid)"),
        C.DOCKER_REGISTRY_ERROR,
        _TLS_REASON,
        "Renew {registry}'s certificate: it has expired (or is not valid yet: check the Docker "
        "host's clock).",
        transient=False,
        decisive=True,
    ),
    Rule(
        regex(r"x509: (?P<problem>certificate is valid for [^,]+, not \S+)"),
        C.DOCKER_REGISTRY_ERROR,
        _TLS_REASON,
        "Reach {registry} by a name its certificate lists, or reissue the certificate for it.",
        transient=False,
        decisive=True,
    ),
    Rule(
        regex(r"x509: (?P<problem>[^\n]+)"),
        C.DOCKER_REGISTRY_ERROR,
        "the registry's TLS certificate is not trusted",
        _CA_HINT,
        transient=False,
        decisive=True,
    ),
    Rule(
        "server gave HTTP response to HTTPS client",
        C.DOCKER_REGISTRY_ERROR,
        "the registry speaks HTTP where the engine expects HTTPS",
        _HTTP_HINT,
        transient=False,
        decisive=True,
    ),
    Rule(
        "does not look like a TLS handshake",
        C.DOCKER_REGISTRY_ERROR,
        "the registry speaks HTTP where the engine expects HTTPS",
        _HTTP_HINT,
        transient=False,
        decisive=True,
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
    # A 404 whose body is not a registry's error (Go's "404 page not found", an empty JSON):
    # the address leads to a web server or a proxy route, not to the registry's API. Before
    # the general rule, whose 404 would read as a missing image.
    Rule(
        "error parsing HTTP 404 response body",
        C.DOCKER_REGISTRY_ERROR,
        "the address answered 404 with a body no registry sends",
        (
            "Check that {registry} is the registry's own address: what answers there (a proxy, "
            "a web server, a wrong path prefix) is not a registry API at /v2/.",
            "Check the registry addresses on the Dockerfile's FROM lines: one leads to something "
            "(a proxy, a web server, a wrong path prefix) that is not a registry API at /v2/.",
        ),
        transient=False,
        decisive=True,
    ),
    Rule("error parsing HTTP", C.DOCKER_REGISTRY_ERROR),
    MALFORMED_STREAM,
)

# containerd and BuildKit say only "<ref>: not found" for a missing image; too loose for push.
NOT_FOUND_TAIL: tuple[Rule, ...] = (Rule(regex(r"\bnot found\b"), C.DOCKER_IMAGE_NOT_FOUND),)

TABLES: dict[str, tuple[Rule, ...]] = {
    "build": BUILD_RULES + RULES + NOT_FOUND_TAIL,
    "push": RULES,
    "pull": RULES + NOT_FOUND_TAIL,
}
