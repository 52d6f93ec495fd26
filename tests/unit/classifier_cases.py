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
        C.DOCKER_REGISTRY_ERROR,
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
        C.DOCKER_REGISTRY_ERROR,
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
    pytest.param(
        # an expired token before Docker Hub's ambiguous answer it is wrapped in (Amazon ECR)
        "pull",
        "pull access denied for 623860924167.dkr.ecr.eu-north-1.amazonaws.com/helpers, "
        "repository does not exist or may require 'docker login': denied: Your authorization "
        "token has expired. Reauthenticate and try again.",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        "the registry's token for these credentials has expired",
        id="expired-token-before-hub-ambiguous",
    ),
    pytest.param(
        # an expired token before the bare DENIED it comes in
        "push",
        "denied: Your authorization token has expired. Reauthenticate and try again.",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        "the registry's token for these credentials has expired",
        id="expired-token-before-denied",
    ),
    pytest.param(
        # ECR's immutable tag before TAG_INVALID: not a bad reference
        "push",
        "tag invalid: The image tag '1' already exists in the 'team/app' repository and cannot "
        "be overwritten because the repository is immutable.",
        C.DOCKER_PUSH_FAILED,
        False,
        "the registry refuses to overwrite the tag",
        id="immutable-before-tag-invalid",
    ),
    pytest.param(
        # Harbor 1.10's immutable tag before the bare DENIED: not a permission problem
        "push",
        "denied: The tag:library/app:1 is immutable, cannot be overwrite.",
        C.DOCKER_PUSH_FAILED,
        False,
        "the registry refuses to overwrite the tag",
        id="immutable-before-denied",
    ),
    pytest.param(
        # Docker Hub's immutable tag before "requested access to the resource is denied"
        "push",
        "denied: requested access to the resource is denied - This tag is already assigned to an "
        "image in this repository and cannot be updated due to immutability settings. To push "
        "this image, use a different tag.",
        C.DOCKER_PUSH_FAILED,
        False,
        "the registry refuses to overwrite the tag",
        id="immutable-before-resource-denied",
    ),
    pytest.param(
        # an expired certificate before the general x509 rule: renew it, no CA to add
        "pull",
        'Get "https://172.17.0.1:5353/v2/": x509: certificate has expired or is not yet valid: '
        "current time 2026-12-02T00:01:39Z is after 2020-02-01T00:00:00Z",
        C.DOCKER_REGISTRY_ERROR,
        False,
        "Renew 172.17.0.1:5353's certificate",
        id="expired-certificate-before-x509",
    ),
    pytest.param(
        # a certificate for another name before the general x509 rule
        "push",
        'Get "https://10.0.0.5:5000/v2/": x509: certificate is valid for registry.example.com, '
        "not 10.0.0.5",
        C.DOCKER_REGISTRY_ERROR,
        False,
        "Reach 10.0.0.5:5000 by a name its certificate lists",
        id="hostname-before-x509",
    ),
    pytest.param(
        # a 404 with a body no registry sends before the general "error parsing HTTP", whose
        # registry status would call it a missing image
        "pull",
        "error parsing HTTP 404 response body: invalid character 'p' after top-level value: "
        '"404 page not found\\n"',
        C.DOCKER_REGISTRY_ERROR,
        False,
        "the address answered 404 with a body no registry sends",
        id="not-a-registry-404-before-error-parsing-http",
    ),
    pytest.param(
        # the engine's rules before the SDK's read timeout: an engine that hangs on the version
        # handshake is unavailable, not slow
        "pull",
        "Error while fetching server API version: UnixHTTPConnectionPool(host='localhost', "
        "port=None): Read timed out. (read timeout=1)",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        "the Docker engine cannot be reached",
        id="api-version-before-read-timeout",
    ),
]

# --- the families of issue 15: failures users hit most -------------------------------------
# (operation, Docker's message, code, transient, the image the task named, what the first
# suggestion must name). "here" as above: produced on the test machine against the real engine
# (20.10.24) and the reference registry run with TLS (a self-signed and an expired certificate)
# or plain HTTP on the docker0 address 172.17.0.1 (not an insecure registry to the engine);
# "here-standin" is the engine's text for what tests/registry_standin.py answers (as ECR,
# Harbor, a token issuer, a web server or a corrupting mirror would); "here-client" is the
# docker CLI 28.2 or docker-py 7.2 run as a user who may not read a context file; "here-sdk" is
# docker-py against tests/engine_standin.py, a socket that accepts and then stalls or sends
# broken JSON. tests/integration/test_registry_diagnosis.py produces each of these again. The
# others are quoted from the issue or the source named.
_EXPIRED = "Your authorization token has expired. Reauthenticate and try again."
_CERT_EXPIRED = (
    "x509: certificate has expired or is not yet valid: current time 2026-12-02T00:01:39Z is "
    "after 2020-02-01T00:00:00Z"
)
_NOT_A_REGISTRY = (
    "error parsing HTTP 404 response body: invalid character 'p' after top-level value: "
    '"404 page not found\\n"'
)
_LAYER_DIGEST = "sha256:1e93cf090ac787e2248b4e962d9496cd6ac868a58825a9ee0e318221969db529"
_ECR = "623860924167.dkr.ecr.eu-north-1.amazonaws.com"

FAMILY_CASES = [
    # --- TLS and protocol: a registry configuration problem, not the network ----------------
    *(
        pytest.param(
            operation,
            'Get "https://172.17.0.1:5351/v2/": x509: certificate signed by unknown authority',
            C.DOCKER_REGISTRY_ERROR,
            False,
            "172.17.0.1:5351/team/app:1",
            "/etc/docker/certs.d/172.17.0.1:5351/ca.crt",
            id=f"here-{operation}-self-signed-certificate",
        )
        for operation in ("pull", "push", "build")
    ),
    *(
        pytest.param(
            operation,
            f'Get "https://172.17.0.1:5353/v2/": {_CERT_EXPIRED}',
            C.DOCKER_REGISTRY_ERROR,
            False,
            "172.17.0.1:5353/team/app:1",
            "Renew 172.17.0.1:5353's certificate",
            id=f"here-{operation}-expired-certificate",
        )
        for operation in ("pull", "push", "build")
    ),
    *(
        pytest.param(
            operation,
            'Get "https://172.17.0.1:5352/v2/": http: server gave HTTP response to HTTPS client',
            C.DOCKER_REGISTRY_ERROR,
            False,
            "172.17.0.1:5352/team/app:1",
            "172.17.0.1:5352 speaks plain HTTP: list it in `insecure-registries`",
            id=f"here-{operation}-registry-speaks-http",
        )
        for operation in ("pull", "push", "build")
    ),
    pytest.param(
        # github.com/vmware-tanzu/carvel-kapp-controller/issues/39 (a Harbor with its own CA)
        "pull",
        'Get "https://core.harbor.domain/v2/": x509: certificate signed by unknown authority',
        C.DOCKER_REGISTRY_ERROR,
        False,
        "core.harbor.domain/build-service/bundle:1.2.2",
        "/etc/docker/certs.d/core.harbor.domain/ca.crt",
        id="issue-harbor-unknown-authority",
    ),
    pytest.param(
        # Go crypto/x509 HostnameError, as the engine prints it for a registry's certificate
        "push",
        'Get "https://10.0.0.5:5000/v2/": x509: certificate is valid for registry.example.com, '
        "not 10.0.0.5",
        C.DOCKER_REGISTRY_ERROR,
        False,
        "10.0.0.5:5000/team/app:1",
        "Reach 10.0.0.5:5000 by a name its certificate lists",
        id="go-x509-hostname-mismatch",
    ),
    # --- expired or revoked tokens: a login problem -----------------------------------------
    *(
        pytest.param(
            operation,
            "pull access denied for 127.0.0.1:5361/team/app, repository does not exist or may "
            f"require 'docker login': denied: {_EXPIRED}",
            C.DOCKER_AUTHENTICATION_FAILED,
            False,
            "127.0.0.1:5361/team/app:1",
            "Log in to 127.0.0.1:5361 again",
            id=f"here-standin-{operation}-expired-token",
        )
        for operation in ("pull", "build")
    ),
    pytest.param(
        "push",
        f"denied: {_EXPIRED}",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        "127.0.0.1:5361/team/app:1",
        "Log in to 127.0.0.1:5361 again",
        id="here-standin-push-expired-token",
    ),
    pytest.param(
        # github.com/causify-ai/helpers/issues/20 (Amazon ECR)
        "pull",
        f"pull access denied for {_ECR}/helpers, repository does not exist or may require "
        f"'docker login': denied: {_EXPIRED}",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        f"{_ECR}/helpers:latest",
        f"Log in to {_ECR} again",
        id="issue-ecr-pull-expired-token",
    ),
    pytest.param(
        # github.com/aws/aws-cli/issues/6580 (Amazon ECR, a push from Jenkins)
        "push",
        f"denied: {_EXPIRED}",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        f"{_ECR}/app:1",
        f"Log in to {_ECR} again",
        id="issue-ecr-push-expired-token",
    ),
    pytest.param(
        # github.com/sailor-sh/CK-X/issues/60 (Docker Hub personal access token)
        "pull",
        'Head "https://registry-1.docker.io/v2/library/redis/manifests/alpine": unauthorized: '
        "personal access token is expired",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        "redis:alpine",
        "Log in to registry-1.docker.io again",
        id="issue-hub-pat-expired",
    ),
    # --- a build context file the client may not read ---------------------------------------
    pytest.param(
        "build",
        "error checking context: no permission to read from '/tmp/s19exp/ctx/secret.txt'",
        C.DOCKER_PERMISSION_DENIED,
        False,
        "app:1",
        "Make '/tmp/s19exp/ctx/secret.txt' readable",
        id="here-client-cli-context-unreadable",
    ),
    pytest.param(
        "build",
        "Can not read file in context: /tmp/s19exp/ctx/secret.txt",
        C.DOCKER_PERMISSION_DENIED,
        False,
        "app:1",
        "Make '/tmp/s19exp/ctx/secret.txt' readable",
        id="here-client-docker-py-context-unreadable",
    ),
    # --- the SDK's read timeout: the engine took the request and did not answer -------------
    *(
        pytest.param(
            operation,
            "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=1)",
            C.SYSTEM_TIMEOUT,
            True,
            "127.0.0.1:5001/team/app:1",
            "The engine at unix:///var/run/docker.sock took the request",
            id=f"here-sdk-{operation}-read-timeout",
        )
        for operation in ("pull", "push", "build")
    ),
    pytest.param(
        # urllib3's ReadTimeoutError in the middle of a push's stream
        "push",
        "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out.",
        C.SYSTEM_TIMEOUT,
        True,
        "127.0.0.1:5001/team/app:1",
        "The engine at unix:///var/run/docker.sock took the request",
        id="here-sdk-push-stream-stalls",
    ),
    # --- a registry that refuses to overwrite an immutable tag ------------------------------
    pytest.param(
        "push",
        "tag invalid: The image tag '1' already exists in the 'team/app' repository and cannot "
        "be overwritten because the repository is immutable.",
        C.DOCKER_PUSH_FAILED,
        False,
        "127.0.0.1:5362/team/app:1",
        "The tag of 127.0.0.1:5362/team/app:1 already exists in 127.0.0.1:5362",
        id="here-standin-ecr-immutable-tag",
    ),
    pytest.param(
        "push",
        "unknown: Failed to process request due to 'team/app:1' configured as immutable.",
        C.DOCKER_PUSH_FAILED,
        False,
        "127.0.0.1:5363/team/app:1",
        "The tag of 127.0.0.1:5363/team/app:1 already exists in 127.0.0.1:5363",
        id="here-standin-harbor-immutable-tag",
    ),
    pytest.param(
        # github.com/aws/containers-roadmap/issues/862 (Amazon ECR)
        "push",
        "tag invalid: The image tag 'latest' already exists in the 'app_service_image' "
        "repository and cannot be overwritten because the repository is immutable.",
        C.DOCKER_PUSH_FAILED,
        False,
        f"{_ECR}/app_service_image:latest",
        f"The tag of {_ECR}/app_service_image:latest already exists in {_ECR}",
        id="issue-ecr-immutable-tag",
    ),
    pytest.param(
        # goharbor/harbor pull 9427, src/core/middlewares/immutable/handler.go (Harbor 1.10)
        "push",
        "denied: The tag:library/app:1 is immutable, cannot be overwrite.",
        C.DOCKER_PUSH_FAILED,
        False,
        "harbor.example.com/library/app:1",
        "The tag of harbor.example.com/library/app:1 already exists in harbor.example.com",
        id="harbor-source-immutable-tag",
    ),
    pytest.param(
        # Docker Hub's immutable tags, as a user quoted the push's answer
        # (github.com/sergienko4/israeli-bank-scrapers-to-actual-budget, DOCKER-IMMUTABILITY-FIX.md)
        "push",
        "denied: requested access to the resource is denied - This tag is already assigned to an "
        "image in this repository and cannot be updated due to immutability settings. To push "
        "this image, use a different tag.",
        C.DOCKER_PUSH_FAILED,
        False,
        "team/app:latest",
        "The tag of team/app:latest already exists in docker.io",
        id="hub-immutable-tag",
    ),
    # --- a layer that fails digest verification: a fresh download usually succeeds ----------
    *(
        pytest.param(
            operation,
            f"filesystem layer verification failed for digest {_LAYER_DIGEST}",
            code,
            True,
            "127.0.0.1:5365/team/app:1",
            "Retry: a fresh download usually succeeds",
            id=f"here-standin-{operation}-layer-digest-mismatch",
        )
        for operation, code in (("pull", C.DOCKER_PULL_FAILED), ("build", C.DOCKER_BUILD_FAILED))
    ),
    pytest.param(
        # github.com/containerd/containerd/issues/1893 (containerd's content store)
        "pull",
        'failed to pull and unpack image "xxxxxx": failed commit on ref "layer-sha256:55ae122ef7'
        '7dfe5b336bcf9d55af5e3ddc515c91e4f5efe51509cb13f983da3b": unexpected commit digest '
        "sha256:a8f2c3f33adf8b40a3f21558f2a7e48fa1fefa482729e4e9f8db1dbb5f654e9a, expected "
        "sha256:55ae122ef77dfe5b336bcf9d55af5e3ddc515c91e4f5efe51509cb13f983da3b: failed "
        "precondition",
        C.DOCKER_PULL_FAILED,
        True,
        "127.0.0.1:5001/team/app:1",
        "Retry: a fresh download usually succeeds",
        id="issue-containerd-unexpected-commit-digest",
    ),
    pytest.param(
        # distribution registry/api/errcode DIGEST_INVALID, as the engine prints it
        "push",
        "digest invalid: provided digest did not match uploaded content",
        C.DOCKER_PUSH_FAILED,
        True,
        "127.0.0.1:5001/team/app:1",
        "Retry: a fresh upload usually succeeds. If it keeps failing, a proxy in front of "
        "127.0.0.1:5001",
        id="errcode-digest-invalid",
    ),
    # --- a 404 with a body no registry sends: a proxy or an address that is no registry -----
    *(
        pytest.param(
            operation,
            _NOT_A_REGISTRY,
            C.DOCKER_REGISTRY_ERROR,
            False,
            "127.0.0.1:5364/team/app:1",
            "Check that 127.0.0.1:5364 is the registry's own address",
            id=f"here-standin-{operation}-404-page-not-found",
        )
        for operation in ("pull", "push")
    ),
    pytest.param(
        "build",
        _NOT_A_REGISTRY,
        C.DOCKER_REGISTRY_ERROR,
        False,
        "app:1",
        "Check the registry addresses on the Dockerfile's FROM lines",
        id="here-standin-build-404-page-not-found",
    ),
    pytest.param(
        "push",
        'error parsing HTTP 404 response body: no error details found in HTTP response body: "{}"',
        C.DOCKER_REGISTRY_ERROR,
        False,
        "127.0.0.1:5364/team/app:1",
        "Check that 127.0.0.1:5364 is the registry's own address",
        id="here-standin-push-404-empty-json",
    ),
    pytest.param(
        # github.com/goharbor/harbor/issues/4893 (an ingress in front of Harbor)
        "push",
        _NOT_A_REGISTRY,
        C.DOCKER_REGISTRY_ERROR,
        False,
        "zhangbin.harbor/library/busybox:latest",
        "Check that zhangbin.harbor is the registry's own address",
        id="issue-harbor-ingress-404",
    ),
    pytest.param(
        # github.com/goharbor/harbor/issues/11615 (nginx in front, after an iptables change)
        "push",
        "error parsing HTTP 404 response body: invalid character '<' looking for beginning of "
        'value: "<html>\\r\\n<head><title>404 Not Found</title></head>\\r\\n<body '
        'bgcolor=\\"white\\">\\r\\n<center><h1>404 Not Found</h1></center>\\r\\n<hr><center>'
        'nginx/1.14.0</center>\\r\\n</body>\\r\\n</html>\\r\\n"',
        C.DOCKER_REGISTRY_ERROR,
        False,
        "123.126.106.88/baseimg:latest",
        "Check that 123.126.106.88 is the registry's own address",
        id="issue-harbor-nginx-404",
    ),
    # --- what the agent cannot parse from the engine: no guess ------------------------------
    *(
        pytest.param(
            operation,
            "Expecting ',' delimiter: line 1 column 54 (char 53)",
            C.UNKNOWN_ERROR,
            False,
            "127.0.0.1:5001/team/app:1",
            "Check what answers at unix:///var/run/docker.sock",
            id=f"here-sdk-{operation}-malformed-stream",
        )
        for operation in ("pull", "push", "build")
    ),
    pytest.param(
        # github.com/docker/docker-py/issues/1059 (Python 2's json error for a stream)
        "pull",
        "Extra data: line 2 column 1 - line 3 column 58 (char 55 - 206)",
        C.UNKNOWN_ERROR,
        False,
        "ubuntu:16.04",
        "Check what answers at unix:///var/run/docker.sock",
        id="issue-docker-py-extra-data",
    ),
]

# Every family case is a real message like the others.
REAL_MESSAGES += [pytest.param(*case.values[:4], id=case.id) for case in FAMILY_CASES]
