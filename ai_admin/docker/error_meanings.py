"""What statuses, errnos and codes mean to the classifier, and the words of its result.

Data beside the rules (``error_rules``): the registry statuses quoted in Docker's text, the
engine statuses no message can overrule, the errnos of local and socket failures, each
operation's own failure code, and the reason and concrete advice written for each code.
"""

from __future__ import annotations

import errno
import re

from ai_admin.docker.error_rules import LOCAL_HINT, regex
from ai_admin.errors import ErrorCode

C = ErrorCode


# A registry's own status, quoted in the engine's text (distribution registry/client/errors.go,
# moby daemon/pkg/registry/auth.go, containerd's remotes).
REGISTRY_STATUS: tuple[re.Pattern[str], ...] = (
    regex(r"HTTP status: (\d{3})"),
    regex(r"error parsing HTTP (\d{3}) response body"),
    regex(r"failed with status: (\d{3})"),
    regex(r"unexpected status\b.*?: (\d{3})\b"),
)
STATUS_CODES: dict[int, ErrorCode] = {
    401: C.DOCKER_AUTHENTICATION_FAILED,
    403: C.DOCKER_PERMISSION_DENIED,
    404: C.DOCKER_IMAGE_NOT_FOUND,
    429: C.DOCKER_RATE_LIMITED,
}
# Engine statuses no message can overrule (the engine maps errdefs.Unauthorized to 401).
DECISIVE_ENGINE_STATUS = frozenset({401, 429})

ERRNO_CODES: dict[int, ErrorCode] = {
    errno.ENOSPC: C.SYSTEM_DISK_SPACE,
    errno.EDQUOT: C.SYSTEM_DISK_SPACE,
    errno.ENOMEM: C.SYSTEM_MEMORY_LIMIT,
    errno.EMFILE: C.SYSTEM_RESOURCE_LIMIT,
    errno.ENFILE: C.SYSTEM_RESOURCE_LIMIT,
    errno.EACCES: C.DOCKER_PERMISSION_DENIED,
    errno.EPERM: C.DOCKER_PERMISSION_DENIED,
}
# Errors of a socket with no file name: the engine's socket is gone or refuses.
SOCKET_ERRNOS = frozenset(
    {errno.ENOENT, errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE}
)

FALLBACK: dict[str, ErrorCode] = {
    "build": C.DOCKER_BUILD_FAILED,
    "push": C.DOCKER_PUSH_FAILED,
    "pull": C.DOCKER_PULL_FAILED,
}
REASONS: dict[ErrorCode, str] = {
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
GENERIC_REASON = "Docker reported an error"

# Concrete advice per code (and operation); a rule's own hint replaces it.
HINTS: dict[tuple[ErrorCode, str | None], tuple[str, ...]] = {
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
    (C.DOCKER_IMAGE_NOT_FOUND, "push"): (LOCAL_HINT,),
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

OPERATION_NAMES: dict[str, str] = {"build": "Build", "push": "Push", "pull": "Pull"}
