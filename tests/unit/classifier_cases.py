"""Real Docker error messages and what the classifier must make of them.

Each message is verbatim. "here" means produced on the project's test machine (Docker engine
20.10.24 through docker-py 7.2 and the docker CLI 28.2, the reference registry
``docker-registry`` 2.8 as a plain process, open or with htpasswd auth); "here, fake registry"
means the engine's own text for an answer a small stand-in registry gave (a 429 with Docker
Hub's body, a 403 DENIED, a NAME_UNKNOWN, a 503, a closed connection). The others are quoted
from the sources that emit them or from the issue where a user pasted them.
"""

from __future__ import annotations

import pytest

from ai_admin.errors import ErrorCode

C = ErrorCode

_HUB_RATE = (
    "toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
    "authenticating and upgrading: https://www.docker.com/increase-rate-limit"
)
# Produced here: the agent's user may not use the engine's socket (used twice below).
SOCKET_NOT_ALLOWED = (
    "permission denied while trying to connect to the Docker daemon socket at "
    'unix:///var/run/docker.sock: Post "http://%2Fvar%2Frun%2Fdocker.sock/v1.50/images/create'
    '?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest": dial unix /var/run/docker.sock: '
    "connect: permission denied"
)

# (operation, Docker's message, expected code, transient)
REAL_MESSAGES = [
    # --- pull, produced here --------------------------------------------------------------
    pytest.param(
        "pull",
        "manifest for 127.0.0.1:5101/team/nope:1 not found: manifest unknown: manifest unknown",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-pull-missing-repo",
    ),
    pytest.param(
        "pull",
        "manifest for 127.0.0.1:5101/team/app:9.9 not found: manifest unknown: manifest unknown",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-pull-missing-tag",
    ),
    pytest.param(
        "pull",
        'Head "http://127.0.0.1:5102/v2/team/app/manifests/1.4": no basic auth credentials',
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        id="here-pull-htpasswd-no-credentials",
    ),
    pytest.param(
        "pull",
        "unauthorized: authentication required",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        id="here-pull-htpasswd-wrong-password",
    ),
    pytest.param(
        "pull",
        'Get "http://127.0.0.1:5199/v2/": dial tcp 127.0.0.1:5199: connect: connection refused',
        C.DOCKER_NETWORK_ERROR,
        True,
        id="here-pull-closed-port",
    ),
    pytest.param(
        "pull",
        'Get "https://nosuchhost.invalid:5000/v2/": dial tcp: lookup nosuchhost.invalid on '
        "10.255.255.53:53: no such host",
        C.DOCKER_NETWORK_ERROR,
        True,
        id="here-pull-unknown-host",
    ),
    pytest.param(
        "pull",
        'Get "http://127.0.0.1:5106/v2/": context deadline exceeded',
        C.DOCKER_NETWORK_ERROR,
        True,
        id="here-pull-registry-never-answers",
    ),
    pytest.param(
        "pull",
        "invalid reference format: repository name must be lowercase",
        C.DOCKER_INVALID_REFERENCE,
        False,
        id="here-pull-uppercase-name",
    ),
    pytest.param(
        "pull",
        "invalid tag format",
        C.DOCKER_INVALID_REFERENCE,
        False,
        id="here-pull-tag-with-space",
    ),
    pytest.param(
        "pull",
        'Get "https://172.17.0.1:5107/v2/": http: server gave HTTP response to HTTPS client',
        C.DOCKER_NETWORK_ERROR,
        False,
        id="here-pull-plain-http-registry",
    ),
    pytest.param(
        "pull",
        _HUB_RATE,
        C.DOCKER_RATE_LIMITED,
        True,
        id="here-fake-pull-429",
    ),
    pytest.param("pull", "denied", C.DOCKER_PERMISSION_DENIED, False, id="here-fake-pull-403"),
    pytest.param(
        "pull",
        "repository 127.0.0.1:5105/team/app not found: name unknown: "
        "repository name not known to registry",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-fake-pull-name-unknown",
    ),
    pytest.param(
        "pull",
        "received unexpected HTTP status: 503 Service Unavailable",
        C.DOCKER_REGISTRY_ERROR,
        True,
        id="here-fake-pull-503",
    ),
    pytest.param(
        "pull", "blob unknown", C.DOCKER_REGISTRY_ERROR, True, id="here-fake-pull-blob-unknown"
    ),
    pytest.param(
        "pull",
        'Get "http://127.0.0.1:5105/v2/": EOF',
        C.DOCKER_NETWORK_ERROR,
        True,
        id="here-fake-pull-connection-closed",
    ),
    # --- push, produced here --------------------------------------------------------------
    pytest.param(
        "push",
        "An image does not exist locally with the tag: 127.0.0.1:5101/team/ghost",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-push-unknown-local-repo",
    ),
    pytest.param(
        "push",
        "tag does not exist: 127.0.0.1:5101/team/app:7.7",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-push-unknown-local-tag",
    ),
    pytest.param(
        "push",
        "no basic auth credentials",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        id="here-push-htpasswd-no-credentials",
    ),
    pytest.param(
        "push",
        "unauthorized: authentication required",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        id="here-push-htpasswd-wrong-password",
    ),
    pytest.param(
        "push",
        "login attempt to http://127.0.0.1:5102/v2/ failed with status: 401 Unauthorized",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        id="here-login-wrong-password",
    ),
    pytest.param(
        "push",
        'Get "http://127.0.0.1:5199/v2/": dial tcp 127.0.0.1:5199: connect: connection refused',
        C.DOCKER_NETWORK_ERROR,
        True,
        id="here-push-closed-port",
    ),
    pytest.param(
        "push",
        "error parsing HTTP 405 response body: invalid character 'M' looking for beginning of "
        'value: "Method not allowed\\n"',
        C.DOCKER_REGISTRY_ERROR,
        False,
        id="here-push-read-only-registry",
    ),
    pytest.param(
        "push",
        "received unexpected HTTP status: 500 Internal Server Error",
        C.DOCKER_REGISTRY_ERROR,
        True,
        id="here-push-registry-storage-broken",
    ),
    pytest.param(
        "push",
        'Get "https://172.17.0.1:5108/v2/": x509: certificate signed by unknown authority',
        C.DOCKER_NETWORK_ERROR,
        False,
        id="here-push-self-signed-registry",
    ),
    pytest.param("push", _HUB_RATE, C.DOCKER_RATE_LIMITED, True, id="here-fake-push-429"),
    pytest.param("push", "denied", C.DOCKER_PERMISSION_DENIED, False, id="here-fake-push-403"),
    pytest.param(
        "push",
        "name unknown: repository name not known to registry",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-fake-push-name-unknown",
    ),
    pytest.param(
        "push",
        "blob upload unknown",
        C.DOCKER_REGISTRY_ERROR,
        True,
        id="here-fake-push-blob-upload-unknown",
    ),
    # --- build (classic builder), produced here -------------------------------------------
    pytest.param(
        "build",
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-run-exit-3",
    ),
    pytest.param(
        "build",
        "The command '/bin/sh -c nosuchcmd' returned a non-zero code: 127",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-run-unknown-command",
    ),
    pytest.param(
        # OOM-killed under a 6 MB limit: the classic builder reports only the exit code.
        "build",
        "The command '/bin/sh -c head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null' "
        "returned a non-zero code: 137",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-run-oom-killed",
    ),
    pytest.param(
        "build",
        "dockerfile parse error line 2: unknown instruction: FOO",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-unknown-instruction",
    ),
    pytest.param(
        "build",
        "dockerfile parse error line 2: ENV requires at least one argument",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-parse-error",
    ),
    pytest.param(
        "build",
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat missing.txt: file does not exist",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-copy-missing",
    ),
    pytest.param(
        "build",
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat secret.txt: file does not exist",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-copy-dockerignored",
    ),
    pytest.param(
        "build",
        "ADD failed: file not found in build context or excluded by .dockerignore: "
        "stat data/: file does not exist",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-add-missing-dir",
    ),
    pytest.param(
        "build",
        "the Dockerfile (Dockerfile) cannot be empty",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-empty-dockerfile",
    ),
    pytest.param(
        "build",
        "no build stage in current context",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-no-from",
    ),
    pytest.param(
        "build",
        "Cannot locate specified Dockerfile: Nope.Dockerfile",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-dockerfile-missing",
    ),
    pytest.param(
        "build",
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to "
        'start container process: exec: "/nope": stat /nope: no such file or directory: unknown',
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-run-exec-missing-program",
    ),
    pytest.param(
        "build",
        "manifest for 127.0.0.1:5101/team/nope:1 not found: manifest unknown: manifest unknown",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="here-build-from-missing",
    ),
    pytest.param(
        "build",
        "invalid reference format: repository name must be lowercase",
        C.DOCKER_INVALID_REFERENCE,
        False,
        id="here-build-from-uppercase",
    ),
    pytest.param(
        "build",
        "Minimum memory limit allowed is 6MB",
        C.DOCKER_BUILD_FAILED,
        False,
        id="here-build-memory-limit-too-low",
    ),
    # --- the engine's socket, produced here -----------------------------------------------
    pytest.param(
        "pull",
        "Cannot connect to the Docker daemon at unix:///tmp/clf-exp/none.sock. "
        "Is the docker daemon running?",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        id="here-cli-no-daemon",
    ),
    pytest.param(
        "pull",
        SOCKET_NOT_ALLOWED,
        C.DOCKER_PERMISSION_DENIED,
        False,
        id="here-cli-socket-not-allowed",
    ),
    pytest.param(
        "push",
        "Error while fetching server API version: ('Connection aborted.', "
        "FileNotFoundError(2, 'No such file or directory'))",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        id="here-sdk-no-socket",
    ),
    pytest.param(
        "push",
        "Error while fetching server API version: ('Connection aborted.', "
        "ConnectionRefusedError(111, 'Connection refused'))",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        id="here-sdk-dead-socket",
    ),
    pytest.param(
        "build",
        "Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))",
        C.DOCKER_PERMISSION_DENIED,
        False,
        id="here-sdk-socket-not-allowed",
    ),
    pytest.param(
        "pull",
        "Error while fetching server API version: HTTPConnectionPool(host='127.0.0.1', "
        "port=5199): Max retries exceeded with url: /version (Caused by NewConnectionError("
        "\"HTTPConnection(host='127.0.0.1', port=5199): Failed to establish a new connection: "
        '[Errno 111] Connection refused"))',
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        id="here-sdk-tcp-daemon-down",
    ),
    pytest.param(
        "pull",
        "Error while fetching server API version: UnixHTTPConnectionPool(host='localhost', "
        "port=None): Read timed out. (read timeout=1)",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        id="here-sdk-daemon-hangs",
    ),
    # --- from the sources -----------------------------------------------------------------
    pytest.param(
        # moby daemon/internal/distribution/errors.go (notFoundError, errcode DENIED)
        "pull",
        "pull access denied for foo/bar, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="moby-hub-ambiguous-denied",
    ),
    pytest.param(
        # moby daemon/containerd/image_pull.go (containerd image store)
        "pull",
        "pull access denied for dna-base, repository does not exist or may require 'docker login'",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="moby-containerd-ambiguous-denied",
    ),
    pytest.param(
        # distribution registry/api/errcode/register.go DENIED, as the engine prints it
        "push",
        "denied: requested access to the resource is denied",
        C.DOCKER_PERMISSION_DENIED,
        False,
        id="errcode-denied",
    ),
    pytest.param(
        # errcode UNSUPPORTED (405)
        "push",
        "unsupported: The operation is unsupported.",
        C.DOCKER_REGISTRY_ERROR,
        False,
        id="errcode-unsupported",
    ),
    pytest.param(
        # errcode UNAVAILABLE (503)
        "pull",
        "unavailable: service unavailable",
        C.DOCKER_REGISTRY_ERROR,
        True,
        id="errcode-unavailable",
    ),
    pytest.param(
        # errcode UNKNOWN (500)
        "push",
        "unknown: unknown error",
        C.DOCKER_REGISTRY_ERROR,
        True,
        id="errcode-unknown",
    ),
    pytest.param(
        # errcode BLOB_UPLOAD_UNKNOWN (404), full form
        "push",
        "blob upload unknown: blob upload unknown to registry",
        C.DOCKER_REGISTRY_ERROR,
        True,
        id="errcode-blob-upload-unknown",
    ),
    pytest.param(
        # errcode NAME_INVALID (400)
        "push",
        "name invalid: invalid repository name",
        C.DOCKER_INVALID_REFERENCE,
        False,
        id="errcode-name-invalid",
    ),
    pytest.param(
        # moby daemon/internal/distribution/pull_v2.go: platform missing from the index
        "pull",
        "no matching manifest for linux/arm64/v8 in the manifest list entries",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="moby-no-matching-platform",
    ),
    pytest.param(
        # moby api/swagger.yaml, ImageInspect's 404 (the engine's words for a missing local image)
        "push",
        "No such image: someimage (tag: latest)",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="moby-no-such-image",
    ),
    pytest.param(
        # docker-py docker/errors.py _image_not_found_explanation_fragments
        "pull",
        "team/app not found: does not exist or no pull access",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        id="docker-py-no-pull-access",
    ),
    pytest.param(
        # moby/buildkit frontend/dockerfile/instructions/parse.go
        "build",
        "dockerfile parse error on line 2: unknown instruction: FOO",
        C.DOCKER_BUILD_FAILED,
        False,
        id="buildkit-unknown-instruction",
    ),
    # --- from issues ----------------------------------------------------------------------
    pytest.param(
        # github.com/exadel-inc/CompreFace/issues/1277
        "pull",
        'Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for '
        "connection (Client.Timeout exceeded while awaiting headers)",
        C.DOCKER_NETWORK_ERROR,
        True,
        id="issue-hub-client-timeout",
    ),
    pytest.param(
        # github.com/xiaopeng163/docker.tips/issues/4
        "pull",
        'Head "https://registry-1.docker.io/v2/library/postgres/manifests/10": '
        "net/http: TLS handshake timeout",
        C.DOCKER_NETWORK_ERROR,
        True,
        id="issue-tls-handshake-timeout",
    ),
    pytest.param(
        # github.com/docker/for-mac/issues/2152
        "pull",
        "Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io on "
        "192.168.65.1:53: read udp 192.168.65.2:45941->192.168.65.1:53: i/o timeout",
        C.DOCKER_NETWORK_ERROR,
        True,
        id="issue-dns-io-timeout",
    ),
    pytest.param(
        # github.com/docker/hub-feedback/issues/2464
        "pull",
        "toomanyrequests: You have reached your unauthenticated pull rate limit. "
        "https://www.docker.com/increase-rate-limit",
        C.DOCKER_RATE_LIMITED,
        True,
        id="issue-hub-unauthenticated-rate-limit",
    ),
    pytest.param(
        # github.com/zebrunner/mcloud-agent/issues/235 (public.ecr.aws)
        "pull",
        "toomanyrequests: Rate exceeded",
        C.DOCKER_RATE_LIMITED,
        True,
        id="issue-ecr-rate-exceeded",
    ),
    pytest.param(
        # github.com/ScribeMD/docker-cache/issues/829 (BuildKit)
        "build",
        "failed to copy: httpReadSeeker: failed open: unexpected status code "
        "https://registry-1.docker.io/v2/library/rust/manifests/sha256:de6e081a4e9c10e70731071c"
        "ec6f629892da1bbaa24b478a96bdc59060674117: 429 Too Many Requests - Server message: "
        "toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
        "authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        C.DOCKER_RATE_LIMITED,
        True,
        id="issue-buildkit-429",
    ),
    pytest.param(
        # github.com/docker/for-win/issues/4298
        "pull",
        "Get https://registry-1.docker.io/v2/: unauthorized: incorrect username or password",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        id="issue-hub-wrong-password",
    ),
    pytest.param(
        # github.com/mimoralea/gdrl/issues/11
        "pull",
        "failed to register layer: Error processing tar file(exit status 1): write "
        "/opt/conda/lib/libnvvm.so.3.3.0: no space left on device",
        C.SYSTEM_DISK_SPACE,
        False,
        id="issue-pull-disk-full",
    ),
    pytest.param(
        # github.com/docker/for-linux/issues/1288
        "pull",
        "failed to register layer: Error processing tar file(exit status 1): write "
        "/app/node_modules/core-js-pure/modules/esnext.iterator.for-each.js: "
        "cannot allocate memory",
        C.SYSTEM_MEMORY_LIMIT,
        False,
        id="issue-pull-out-of-memory",
    ),
    pytest.param(
        # github.com/moby/moby/issues/23686
        "pull",
        "open /var/lib/docker/image/overlay2/imagedb/content/sha256/47bcc53f74dc94b1920f0b34f6"
        "036096526296767650f223433fe65c35f149eb: too many open files",
        C.SYSTEM_RESOURCE_LIMIT,
        True,
        id="issue-too-many-open-files",
    ),
    pytest.param(
        # github.com/formio/formio/issues/2069 (BuildKit)
        "build",
        'failed to solve: process "/bin/sh -c npm install" did not complete successfully: '
        "exit code: 2",
        C.DOCKER_BUILD_FAILED,
        False,
        id="issue-buildkit-run-failed",
    ),
    pytest.param(
        # github.com/docker/getting-started/issues/347 (older BuildKit)
        "build",
        "executor failed running [/bin/sh -c yarn install --production]: exit code: 1",
        C.DOCKER_BUILD_FAILED,
        False,
        id="issue-buildkit-executor-failed",
    ),
    pytest.param(
        # github.com/infiniflow/ragflow/issues/5135 (BuildKit)
        "build",
        "failed to solve: failed to compute cache key: failed to calculate checksum of ref "
        '7da38710-a6ce-4a7d-9049-057ba1430ef0::mf6s0i1gs597gpu63dim6oruj: "/.git": not found',
        C.DOCKER_BUILD_FAILED,
        False,
        id="issue-buildkit-copy-missing",
    ),
    pytest.param(
        # github.com/edusense/edusense/issues/42 (BuildKit, COPY --from)
        "build",
        'failed to compute cache key: "/app/build/examples/edusense/edusense.bin" not found: '
        "not found",
        C.DOCKER_BUILD_FAILED,
        False,
        id="issue-buildkit-copy-from-stage-missing",
    ),
]

# Messages that two rules of the operation's table both match, with different outcomes: only
# the rules' order decides, so each case pins what the rule that must come first gives (the
# code, whether to retry, and a phrase of its message or first suggestion). Swapping the two
# rules fails the case. (operation, message, code, transient, phrase)
ORDER_DECIDES = [
    pytest.param(
        # BuildKit's 137 rule before its general exit-code rule: the OOM-killer hint
        "build",
        'failed to solve: process "/bin/sh -c make -j64" did not complete successfully: '
        "exit code: 137",
        C.DOCKER_BUILD_FAILED,
        False,
        "Exit code 137 means `/bin/sh -c make -j64` was killed",
        id="buildkit-137-before-exit-code",
    ),
    pytest.param(
        # the classic builder's 137 rule before its general exit-code rule
        "build",
        "The command '/bin/sh -c make -j64' returned a non-zero code: 137",
        C.DOCKER_BUILD_FAILED,
        False,
        "Exit code 137 means `/bin/sh -c make -j64` was killed",
        id="classic-137-before-exit-code",
    ),
    pytest.param(
        # moby's builder wraps the pull error for COPY --from=<no such stage> (dispatchers.go,
        # "invalid from flag value %s: %w"): a build rule before Docker Hub's ambiguous answer
        "build",
        "invalid from flag value nope: pull access denied for nope, repository does not exist "
        "or may require 'docker login': denied: requested access to the resource is denied",
        C.DOCKER_BUILD_FAILED,
        False,
        "`COPY --from=nope` names no earlier stage",
        id="copy-from-stage-before-hub-denied",
    ),
    pytest.param(
        # the runtime's "executable file not found" is no missing image: the build rule
        # before the bare "not found" tail (runc 1.1, exec form of RUN)
        "build",
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to "
        'start container process: exec: "nonexistent": executable file not found in $PATH: '
        "unknown",
        C.DOCKER_BUILD_FAILED,
        False,
        "a step's program 'nonexistent' could not be started",
        id="oci-exec-before-not-found",
    ),
    pytest.param(
        # COPY's own rule before the bare "not found" tail
        "build",
        "COPY failed: file not found in build context or excluded by .dockerignore: stat "
        "missing.txt: file does not exist",
        C.DOCKER_BUILD_FAILED,
        False,
        "COPY source 'missing.txt' is not in the build context",
        id="copy-source-before-not-found",
    ),
    pytest.param(
        # the registry's NAME_UNKNOWN before the bare "not found" tail: says what to create
        "pull",
        "repository 127.0.0.1:5105/team/app not found: name unknown: repository name not known "
        "to registry",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        "the registry has no such repository",
        id="name-unknown-before-not-found",
    ),
    pytest.param(
        # the engine's socket before the generic "permission denied": the socket advice
        "pull",
        SOCKET_NOT_ALLOWED,
        C.DOCKER_PERMISSION_DENIED,
        False,
        "the agent's user may not use the Docker socket",
        id="socket-permission-before-permission-denied",
    ),
    pytest.param(
        # docker-py's PermissionError on the socket before "Error while fetching server API
        # version": the engine is there, the agent may not use it
        "pull",
        "Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))",
        C.DOCKER_PERMISSION_DENIED,
        False,
        "the agent's user may not use the Docker socket",
        id="socket-permission-before-api-version",
    ),
    pytest.param(
        # Go's dial failing for want of descriptors: the host's limit, not the network
        "pull",
        'Get "https://registry-1.docker.io/v2/": dial tcp 54.236.113.205:443: socket: too many '
        "open files",
        C.SYSTEM_RESOURCE_LIMIT,
        True,
        "a system resource limit was hit",
        id="open-files-before-dial-tcp",
    ),
    pytest.param(
        # an explicit "unauthorized" before Docker Hub's ambiguous "does not exist or may
        # require 'docker login'"
        "pull",
        "pull access denied for team/app, repository does not exist or may require "
        "'docker login': unauthorized: authentication required",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        "the registry refused the credentials",
        id="unauthorized-before-hub-ambiguous",
    ),
    pytest.param(
        # Docker Hub's ambiguous answer before the DENIED it ends with: not found (or private)
        "pull",
        "pull access denied for foo/bar, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        "the repository does not exist, or is private and needs a login",
        id="hub-ambiguous-before-denied",
    ),
]
