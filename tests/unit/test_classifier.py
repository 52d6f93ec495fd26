"""The Docker error classifier, driven by real messages (``classifier_cases``) and exceptions."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
from collections.abc import Callable
from typing import Any

import docker.errors
import pytest
import requests
import urllib3.exceptions
from classifier_cases import ORDER_DECIDES, REAL_MESSAGES

import ai_admin.docker.errors as clf_module
from ai_admin.docker import error_rules
from ai_admin.docker.errors import Classification, DockerOperation, classify, docker_errors
from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError, QueueFull, code_info

C = ErrorCode
REGISTRY = "127.0.0.1:5001"
IMAGE = f"{REGISTRY}/team/app:1.4"


def api_error(
    status: int,
    explanation: str | None,
    cls: Any = docker.errors.APIError,
) -> Any:
    """An APIError as docker-py builds it from the engine's answer."""
    response = requests.Response()
    response.status_code = status
    response.reason = {401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}.get(
        status, "Internal Server Error"
    )
    response.url = "http+docker://localhost/v1.41/images/create?tag=1.4&fromImage=team%2Fapp"
    return cls(f"{status} error", response=response, explanation=explanation)


def test_the_table_holds_at_least_40_real_messages() -> None:
    assert len(REAL_MESSAGES) >= 40


@pytest.mark.parametrize(("operation", "message", "code", "transient"), REAL_MESSAGES)
def test_real_message(operation: Any, message: str, code: ErrorCode, transient: bool) -> None:
    clf = classify(message, operation, image=IMAGE)

    assert (clf.code, clf.transient) == (code, transient)
    assert clf.description == code_info(code).description
    assert clf.details["docker_message"] == message
    assert clf.details["operation"] == operation
    assert "\n" not in clf.message
    assert clf.message.startswith(f"{operation.capitalize()} of {IMAGE} failed: ")
    generic = list(code_info(code).suggestions_for(transient))  # retry advice only if it helps
    assert clf.suggestions[-len(generic) :] == generic


@pytest.mark.parametrize(("operation", "message", "code", "transient"), REAL_MESSAGES)
def test_real_message_inside_a_stream_chunk(
    operation: Any, message: str, code: ErrorCode, transient: bool
) -> None:
    chunk = {"errorDetail": {"message": message}, "error": message}

    assert classify(chunk, operation).code is code
    assert classify(chunk["errorDetail"], operation).code is code
    assert classify({"error": message}, operation).transient is transient


# --- exceptions -----------------------------------------------------------------------------

EXCEPTIONS = [
    pytest.param(
        lambda: api_error(401, "unauthorized: incorrect username or password"),
        "pull",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        401,
        id="api-401",
    ),
    pytest.param(
        # A 401 settles Docker Hub's ambiguous "does not exist or may require 'docker login'".
        lambda: api_error(
            401,
            "pull access denied for team/app, repository does not exist or may require "
            "'docker login': denied: requested access to the resource is denied",
        ),
        "pull",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        401,
        id="api-401-ambiguous-hub-message",
    ),
    pytest.param(
        lambda: api_error(
            404,
            "pull access denied for team/app, repository does not exist or may require "
            "'docker login': denied: requested access to the resource is denied",
            docker.errors.ImageNotFound,
        ),
        "pull",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        404,
        id="image-not-found-404-ambiguous-hub-message",
    ),
    pytest.param(
        lambda: api_error(
            404,
            f"manifest for {IMAGE} not found: manifest unknown: manifest unknown",
            docker.errors.NotFound,
        ),
        "pull",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        404,
        id="not-found-404",
    ),
    pytest.param(
        lambda: api_error(404, None, docker.errors.NotFound),
        "pull",
        C.DOCKER_IMAGE_NOT_FOUND,
        False,
        404,
        id="not-found-404-without-explanation",
    ),
    pytest.param(
        lambda: api_error(429, "toomanyrequests: too many requests"),
        "pull",
        C.DOCKER_RATE_LIMITED,
        True,
        429,
        id="api-429",
    ),
    pytest.param(
        lambda: api_error(429, None),
        "push",
        C.DOCKER_RATE_LIMITED,
        True,
        429,
        id="api-429-without-explanation",
    ),
    pytest.param(
        # The engine answers 500 for a registry's failure; its own text names the layer.
        lambda: api_error(500, "received unexpected HTTP status: 502 Bad Gateway"),
        "pull",
        C.DOCKER_REGISTRY_ERROR,
        True,
        500,
        id="api-500-registry-502",
    ),
    pytest.param(
        lambda: api_error(
            500, 'Head "http://127.0.0.1:5102/v2/team/app/manifests/1.4": no basic auth credentials'
        ),
        "pull",
        C.DOCKER_AUTHENTICATION_FAILED,
        False,
        500,
        id="api-500-no-credentials",
    ),
    pytest.param(
        lambda: api_error(500, "Cannot locate specified Dockerfile: Nope.Dockerfile"),
        "build",
        C.DOCKER_BUILD_FAILED,
        False,
        500,
        id="api-500-is-not-a-registry-error",
    ),
    pytest.param(
        lambda: api_error(500, "something the classifier has never seen"),
        "push",
        C.DOCKER_PUSH_FAILED,
        False,
        500,
        id="api-500-unknown",
    ),
    pytest.param(
        lambda: api_error(400, "dockerfile parse error line 2: unknown instruction: FOO"),
        "build",
        C.DOCKER_BUILD_FAILED,
        False,
        400,
        id="api-400-parse-error",
    ),
    pytest.param(
        lambda: docker.errors.DockerException(
            "Error while fetching server API version: ('Connection aborted.', "
            "FileNotFoundError(2, 'No such file or directory'))"
        ),
        "pull",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        None,
        id="docker-exception-no-engine",
    ),
    pytest.param(
        lambda: docker.errors.BuildError(
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
            iter([{"stream": "Step 2/2 : RUN exit 3"}]),
        ),
        "build",
        C.DOCKER_BUILD_FAILED,
        False,
        None,
        id="build-error",
    ),
    pytest.param(
        lambda: requests.exceptions.ConnectionError(
            "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
        ),
        "pull",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        None,
        id="requests-no-socket",
    ),
    pytest.param(
        lambda: requests.exceptions.ConnectionError(
            "('Connection aborted.', PermissionError(13, 'Permission denied'))"
        ),
        "pull",
        C.DOCKER_PERMISSION_DENIED,
        False,
        None,
        id="requests-socket-not-allowed",
    ),
    pytest.param(
        # docker-py talks to the engine; a refused TCP engine is not the registry's network.
        lambda: requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='127.0.0.1', port=2375): Max retries exceeded with url: "
            "/version (Caused by NewConnectionError('Connection refused'))"
        ),
        "push",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        None,
        id="requests-tcp-engine-refused",
    ),
    pytest.param(
        lambda: requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='127.0.0.1', port=5001): Max retries exceeded with url: "
            "/v2/ (Caused by NewConnectionError('Connection refused'))"
        ),
        "push",
        C.DOCKER_NETWORK_ERROR,
        True,
        None,
        id="requests-registry-refused",
    ),
    pytest.param(
        lambda: requests.exceptions.ConnectionError(
            "Connection refused",
            request=requests.Request("GET", f"https://{REGISTRY}/v2/").prepare(),
        ),
        "pull",
        C.DOCKER_NETWORK_ERROR,
        True,
        None,
        id="requests-registry-refused-with-request",
    ),
    pytest.param(
        lambda: requests.exceptions.ReadTimeout(
            "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=1)"
        ),
        "pull",
        C.SYSTEM_TIMEOUT,
        True,
        None,
        id="requests-read-timeout",
    ),
    pytest.param(
        lambda: urllib3.exceptions.ProtocolError(
            "Connection broken: IncompleteRead(0 bytes read, 2 more expected)"
        ),
        "push",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        None,
        id="urllib3-stream-broken",
    ),
    pytest.param(
        lambda: FileNotFoundError(errno.ENOENT, "No such file or directory"),
        "pull",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        None,
        id="socket-file-missing",
    ),
    pytest.param(
        lambda: ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        "pull",
        C.DOCKER_DAEMON_UNAVAILABLE,
        True,
        None,
        id="socket-refused",
    ),
    pytest.param(
        lambda: OSError(errno.ENOSPC, "No space left on device"),
        "build",
        C.SYSTEM_DISK_SPACE,
        False,
        None,
        id="os-disk-full",
    ),
    pytest.param(
        lambda: OSError(errno.EMFILE, "Too many open files"),
        "build",
        C.SYSTEM_RESOURCE_LIMIT,
        True,
        None,
        id="os-too-many-open-files",
    ),
    pytest.param(
        # A missing local file (the build context) is the build's problem, not the engine's.
        lambda: FileNotFoundError(errno.ENOENT, "No such file or directory", "/srv/ctx/Dockerfile"),
        "build",
        C.DOCKER_BUILD_FAILED,
        False,
        None,
        id="os-local-file-missing",
    ),
]


@pytest.mark.parametrize(("make", "operation", "code", "transient", "status"), EXCEPTIONS)
def test_exception(
    make: Callable[[], BaseException],
    operation: Any,
    code: ErrorCode,
    transient: bool,
    status: int | None,
) -> None:
    error = make()
    clf = classify(error, operation, image=IMAGE, registry=REGISTRY)

    assert (clf.code, clf.transient) == (code, transient)
    assert clf.details.get("http_status") == status
    assert clf.details["error_type"] == type(error).__name__


def test_an_empty_chunk_gets_the_operation_fallback() -> None:
    assert classify({}, "pull").code is C.DOCKER_PULL_FAILED
    assert classify({"errorDetail": {}}, "build").code is C.DOCKER_BUILD_FAILED


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("build", C.DOCKER_BUILD_FAILED),
        ("push", C.DOCKER_PUSH_FAILED),
        ("pull", C.DOCKER_PULL_FAILED),
    ],
)
def test_an_unknown_message_gets_the_operation_fallback(operation: Any, code: ErrorCode) -> None:
    clf = classify("the flux capacitor melted", operation)

    assert (clf.code, clf.transient) == (code, False)
    assert (
        clf.message
        == f"{operation.capitalize()} failed: Docker reported an error (the flux capacitor melted)."
    )


# --- what the registry's status says --------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code", "transient", "status"),
    [
        (
            "error parsing HTTP 429 response body: invalid character '<'",
            C.DOCKER_RATE_LIMITED,
            True,
            429,
        ),
        (
            'error parsing HTTP 403 response body: unexpected end of JSON input: ""',
            C.DOCKER_PERMISSION_DENIED,
            False,
            403,
        ),
        ("received unexpected HTTP status: 502 Bad Gateway", C.DOCKER_REGISTRY_ERROR, True, 502),
        (
            "error parsing HTTP 400 response body: invalid character 'B'",
            C.DOCKER_REGISTRY_ERROR,
            False,
            400,
        ),
    ],
)
def test_the_registry_status_in_the_text_decides(
    message: str, code: ErrorCode, transient: bool, status: int
) -> None:
    clf = classify(message, "push")

    assert (clf.code, clf.transient) == (code, transient)
    assert clf.details["registry_http_status"] == status


# --- ordering traps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "echo denied",
        "echo no space left on device",
        "curl -u bob unauthorized.example",
        "cat x | grep 'not found'",
        "echo permission denied",
        "echo toomanyrequests",
        "wget http://x: connection refused",
        "echo manifest unknown",
        "echo cannot allocate memory",
    ],
)
def test_a_failed_step_is_a_build_failure_whatever_its_command_says(command: str) -> None:
    message = f"The command '/bin/sh -c {command}' returned a non-zero code: 1"

    assert classify(message, "build").code is C.DOCKER_BUILD_FAILED


def test_exit_code_137_hints_at_the_out_of_memory_killer() -> None:
    message = "The command '/bin/sh -c make -j64' returned a non-zero code: 137"
    clf = classify(message, "build")

    assert (clf.code, clf.details["exit_code"]) == (C.DOCKER_BUILD_FAILED, 137)
    assert clf.suggestions[0].startswith("Exit code 137 means `/bin/sh -c make -j64` was killed")


def test_an_image_named_unauthorized_is_not_an_authentication_failure() -> None:
    message = (
        "manifest for reg:5000/team/unauthorized:1 not found: manifest unknown: manifest unknown"
    )

    assert classify(message, "pull").code is C.DOCKER_IMAGE_NOT_FOUND


def test_docker_hubs_rate_limit_text_is_not_read_as_authentication() -> None:
    message = (
        "toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
        "authenticating and upgrading: https://www.docker.com/increase-rate-limit"
    )

    assert classify(message, "pull").code is C.DOCKER_RATE_LIMITED


def test_the_ambiguous_hub_message_is_authentication_when_it_says_unauthorized() -> None:
    message = (
        "pull access denied for team/app, repository does not exist or may require "
        "'docker login': unauthorized: authentication required"
    )

    assert classify(message, "pull").code is C.DOCKER_AUTHENTICATION_FAILED


@pytest.mark.parametrize(("operation", "message", "code", "transient", "phrase"), ORDER_DECIDES)
def test_where_two_rules_match_the_first_decides(
    operation: Any, message: str, code: ErrorCode, transient: bool, phrase: str
) -> None:
    table = error_rules.TABLES[operation]
    matching = [rule for rule in table if clf_module._match((rule,), message) is not None]
    outcomes = {(r.code, r.reason, r.hint, r.transient) for r in matching}
    assert len(outcomes) >= 2, "the case must be one only the rules' order decides"

    clf = classify(message, operation, image=IMAGE)

    assert (clf.code, clf.transient) == (code, transient)
    assert phrase in clf.message or clf.suggestions[0].startswith(phrase), (
        clf.message,
        clf.suggestions[0],
    )


# --- messages and suggestions name what is involved -----------------------------------------


def test_a_failed_step_says_which_command_and_exit_code() -> None:
    clf = classify(
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3", "build", image="app:1"
    )

    assert clf.message == "Build of app:1 failed: step `/bin/sh -c exit 3` returned exit code 3."
    assert clf.details["exit_code"] == 3
    assert clf.details["command"] == "/bin/sh -c exit 3"
    assert clf.suggestions[0].startswith("Run `/bin/sh -c exit 3` in the image")


def test_a_missing_copy_source_is_named_in_message_and_suggestions() -> None:
    message = (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat missing.txt: file does not exist"
    )
    clf = classify(message, "build", image="app:1", path="/srv/ctx")

    assert (
        clf.message
        == "Build of app:1 failed: COPY source 'missing.txt' is not in the build context."
    )
    assert clf.suggestions[0].startswith(
        "COPY source 'missing.txt' is not in the build context (/srv/ctx), or .dockerignore"
    )
    assert clf.details["file"] == "missing.txt"


def test_buildkit_missing_copy_source_is_named() -> None:
    message = (
        "failed to solve: failed to compute cache key: failed to calculate checksum of ref "
        '7da38710-a6ce-4a7d-9049-057ba1430ef0::mf6s0i1gs597gpu63dim6oruj: "/.git": not found'
    )
    clf = classify(message, "build")

    assert clf.details["file"] == ".git"
    assert "COPY/ADD source '.git'" in clf.message


def test_an_unknown_instruction_is_named() -> None:
    clf = classify("dockerfile parse error line 2: unknown instruction: FOO", "build")

    assert "`FOO`" in clf.message
    assert clf.suggestions[0].startswith("Fix or remove `FOO` on line 2 of the Dockerfile")


def test_authentication_suggestions_name_the_registry() -> None:
    clf = classify("unauthorized: authentication required", "push", image=IMAGE)

    assert clf.suggestions[0] == (
        f"Log in to {REGISTRY} (`docker login {REGISTRY}`) or give the task credentials for it."
    )
    assert clf.details["registry"] == REGISTRY


def test_the_registry_a_message_names_is_used_when_none_is_given() -> None:
    message = 'Head "http://127.0.0.1:5102/v2/team/app/manifests/1.4": no basic auth credentials'
    clf = classify(message, "build")

    assert clf.suggestions[0].startswith("Log in to 127.0.0.1:5102 ")


def test_a_missing_image_is_named_with_its_registry() -> None:
    message = f"manifest for {IMAGE} not found: manifest unknown: manifest unknown"
    clf = classify(message, "pull", image=IMAGE)

    assert clf.suggestions[0] == (
        f"Check that {IMAGE} exists in {REGISTRY}: repository and tag must match exactly."
    )


def test_a_push_of_a_missing_local_tag_says_to_tag_it() -> None:
    message = f"tag does not exist: {IMAGE}"
    clf = classify(message, "push", image=IMAGE)

    assert clf.suggestions[0].startswith(f"Build or tag {IMAGE} locally before pushing it")


def test_docker_hub_is_the_registry_of_a_short_name() -> None:
    clf = classify("denied: requested access to the resource is denied", "push", image="team/app:1")

    assert clf.suggestions[0] == "Check that the account used for docker.io may push to team/app."


@pytest.mark.parametrize(
    ("message", "start"),
    [
        (
            'Get "https://reg.example.com:5000/v2/": x509: certificate signed by unknown authority',
            "Trust reg.example.com:5000's certificate: put its CA in "
            "/etc/docker/certs.d/reg.example.com:5000/",
        ),
        (
            'Get "https://reg.example.com:5000/v2/": http: server gave HTTP response to HTTPS '
            "client",
            "reg.example.com:5000 speaks plain HTTP",
        ),
        (
            'Get "https://reg.example.com:5000/v2/": dial tcp: lookup reg.example.com: '
            "no such host",
            "Check that reg.example.com:5000 is reachable",
        ),
        ("toomanyrequests: too many requests", "Authenticate to reg.example.com:5000"),
    ],
)
def test_network_suggestions_name_the_registry(message: str, start: str) -> None:
    clf = classify(message, "pull", image="reg.example.com:5000/team/app:1")

    assert clf.suggestions[0].startswith(start)


def test_to_error_carries_everything() -> None:
    clf = classify(
        api_error(500, "received unexpected HTTP status: 503 Service Unavailable"), "pull"
    )
    error = clf.to_error()

    assert isinstance(error, ExecutionError)
    assert (error.code, error.message, error.transient) == (clf.code, clf.message, True)
    assert error.details == clf.details
    assert error.suggestions == clf.suggestions
    assert error.description == clf.description


def test_a_classification_is_frozen() -> None:
    clf = classify("denied", "push")

    with pytest.raises(dataclasses.FrozenInstanceError):
        clf.code = C.UNKNOWN_ERROR  # type: ignore[misc]


def test_the_public_names() -> None:
    assert set(clf_module.__all__) == {
        "Classification",
        "DockerOperation",
        "classify",
        "docker_errors",
    }
    assert isinstance(classify("denied", "pull"), Classification)


# --- the boundary ---------------------------------------------------------------------------


def test_docker_errors_turns_a_docker_exception_into_an_execution_error() -> None:
    original = api_error(500, "unauthorized: authentication required")

    with pytest.raises(ExecutionError) as caught, docker_errors("push", image=IMAGE):
        raise original

    assert caught.value.code is C.DOCKER_AUTHENTICATION_FAILED
    assert caught.value.__cause__ is original
    assert caught.value.suggestions[0].startswith(f"Log in to {REGISTRY} ")


@pytest.mark.parametrize(
    "make",
    [
        lambda: requests.exceptions.ConnectionError(
            "('Connection aborted.', FileNotFoundError(2))"
        ),
        lambda: requests.exceptions.ReadTimeout("Read timed out."),
        lambda: docker.errors.DockerException("Error while fetching server API version: x"),
        lambda: urllib3.exceptions.ProtocolError("Connection broken"),
        lambda: ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    ],
    ids=["requests-connection", "requests-timeout", "docker", "urllib3", "socket"],
)
def test_docker_errors_converts_the_transport_exceptions(make: Callable[[], BaseException]) -> None:
    with pytest.raises(ExecutionError), docker_errors("pull"):
        raise make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: QueueFull("full"),
        lambda: ExecutionError("already classified", code=C.DOCKER_NETWORK_ERROR),
        lambda: asyncio.CancelledError(),
        lambda: KeyError("a bug stays a bug"),
    ],
    ids=["ai-admin-error", "execution-error", "cancelled", "bug"],
)
def test_docker_errors_lets_other_exceptions_through_untouched(
    make: Callable[[], BaseException],
) -> None:
    original = make()

    with pytest.raises(type(original)) as caught, docker_errors("build"):
        raise original

    assert caught.value is original
    if isinstance(original, AiAdminError):
        assert caught.value.__cause__ is None


async def test_docker_errors_in_a_coroutine() -> None:
    async def pull() -> None:
        await asyncio.sleep(0)
        raise api_error(
            404, f"manifest for {IMAGE} not found: manifest unknown", docker.errors.NotFound
        )

    with (
        pytest.raises(ExecutionError) as caught,
        docker_errors("pull", image=IMAGE, registry=REGISTRY),
    ):
        await pull()

    assert caught.value.code is C.DOCKER_IMAGE_NOT_FOUND
    assert caught.value.details["http_status"] == 404


async def test_docker_errors_passes_a_cancellation_through() -> None:
    async def pull() -> None:
        await asyncio.Event().wait()

    async def run() -> None:
        with docker_errors("pull"):
            await pull()

    task = asyncio.create_task(run())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- credentials never leave ----------------------------------------------------------------

SECRETS = ("s3cr3t", "Ym9iOnMzY3IzdA==", "eyJhbGciOiJIUzI1NiJ9.tok3n", "hunter2")


@pytest.mark.parametrize(
    "message",
    [
        'Get "https://bob:s3cr3t@reg.example.com/v2/": dial tcp: lookup reg.example.com: '
        "no such host",
        "unauthorized: authentication required; Authorization: Basic Ym9iOnMzY3IzdA==",
        "error parsing HTTP 401 response body: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.tok3n",
        "login attempt to https://reg.example.com/v2/?password=hunter2 failed with status: 401",
        'X-Registry-Auth: Ym9iOnMzY3IzdA== {"password": "hunter2", "auth": "Ym9iOnMzY3IzdA=="}',
        "The command '/bin/sh -c curl -u bob:s3cr3t@reg.example.com/x' returned a non-zero code: 6",
        "pull of bob:s3cr3t@reg.example.com/team/app:1 failed: token=hunter2",
    ],
)
def test_a_credential_in_dockers_message_never_leaves(message: str) -> None:
    operations: tuple[DockerOperation, ...] = ("build", "push", "pull")
    for operation in operations:
        clf = classify(message, operation)
        out = json.dumps([clf.message, clf.details, clf.suggestions])

        assert not any(secret in out for secret in SECRETS), out
        assert "***" in out


def test_a_credential_in_the_context_never_leaves() -> None:
    clf = classify(
        "unauthorized: authentication required",
        "push",
        image="bob:s3cr3t@reg.example.com/team/app:1",
        registry="https://bob:s3cr3t@reg.example.com",
        path="/srv/ctx?token=hunter2",
    )
    out = json.dumps([clf.message, clf.details, clf.suggestions])

    assert not any(secret in out for secret in SECRETS), out
    assert clf.suggestions[0].startswith("Log in to reg.example.com ")


def test_a_credential_in_an_exception_never_leaves() -> None:
    error = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='reg.example.com', port=443): Max retries exceeded with url: "
        "/v2/?access_token=hunter2 (Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.tok3n)"
    )
    with pytest.raises(ExecutionError) as caught, docker_errors("pull", registry="reg.example.com"):
        raise error

    out = json.dumps(caught.value.to_dict())
    assert caught.value.code is C.DOCKER_NETWORK_ERROR
    assert not any(secret in out for secret in SECRETS), out


@pytest.mark.parametrize(
    "message",
    [
        "no basic auth credentials",
        "unauthorized: authentication required",
        f"tag does not exist: {REGISTRY}/team/app:1.4@sha256:{'ab12' * 16}",
        'Www-Authenticate: Basic realm="basic-realm"',
    ],
)
def test_scrubbing_leaves_ordinary_text_alone(message: str) -> None:
    assert classify(message, "push").details["docker_message"] == message


def test_a_parse_error_keeps_its_line_number() -> None:
    clf = classify("dockerfile parse error line 3: unknown instruction: FROBNICATE", "build")
    assert clf.code is ErrorCode.DOCKER_BUILD_FAILED
    assert "line 3" in clf.message
    assert "FROBNICATE" in clf.suggestions[0]


def test_a_misspelled_copy_from_stage_is_a_build_failure_not_a_network_error() -> None:
    # Produced here: with no registry reachable, the engine tries to pull the "stage" as an image.
    message = (
        'invalid from flag value nope: Get "https://registry-1.docker.io/v2/": dial tcp: '
        "lookup registry-1.docker.io on 10.0.0.1:53: no such host"
    )
    clf = classify(message, "build")
    assert clf.code is ErrorCode.DOCKER_BUILD_FAILED
    assert clf.transient is False
    assert "COPY --from=nope" in clf.suggestions[0]


def test_a_missing_build_target_names_it() -> None:
    clf = classify("failed to reach build target nope in Dockerfile", "build")
    assert clf.code is ErrorCode.DOCKER_BUILD_FAILED
    assert "`nope`" in clf.message


def test_advice_to_retry_is_given_only_where_retrying_can_help() -> None:
    tls = "x509: certificate signed by unknown authority"
    refused = classify(Exception(tls), "pull", image="reg.example:5000/app:1")
    busy = classify(
        Exception("received unexpected HTTP status: 503 Service Unavailable"),
        "pull",
        image="reg.example:5000/app:1",
    )
    assert (refused.code, busy.code) == (ErrorCode.DOCKER_REGISTRY_ERROR,) * 2
    assert (refused.transient, busy.transient) == (False, True)
    assert not any("Retry" in s for s in refused.suggestions)
    assert any(s.startswith("Retry later") for s in busy.suggestions)
