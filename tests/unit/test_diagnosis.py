"""The failures users hit most, each by its real messages (``classifier_cases.FAMILY_CASES``).

Each family on every operation where it occurs: the code, whether the queue retries it, and a
first suggestion that names the concrete registry, image, file or engine involved. The same
failures as the exceptions docker-py raises (timeouts, a broken stream, an unreadable file)
are classified by their type.
"""

from __future__ import annotations

import errno
import json
from typing import Any

import docker.errors
import pytest
import requests
import urllib3.exceptions
from classifier_cases import FAMILY_CASES

from ai_admin.docker.errors import classify
from ai_admin.errors import ErrorCode, code_info

C = ErrorCode
ENGINE = "unix:///var/run/docker.sock"
CONTEXT = "/srv/ctx"


@pytest.mark.parametrize(
    ("operation", "message", "code", "transient", "image", "names"), FAMILY_CASES
)
def test_a_family_message_is_named_and_its_fix_is_concrete(
    operation: Any, message: str, code: ErrorCode, transient: bool, image: str, names: str
) -> None:
    clf = classify(message, operation, image=image, path=CONTEXT, engine=ENGINE)

    assert (clf.code, clf.transient) == (code, transient), clf.message
    assert names in clf.suggestions[0], clf.suggestions
    assert clf.suggestions[1:] == list(code_info(code).suggestions_for(transient))
    assert clf.message.startswith(f"{operation.capitalize()} of {image} failed: ")


@pytest.mark.parametrize(
    ("operation", "message", "code", "transient", "image", "names"), FAMILY_CASES
)
def test_a_family_message_in_a_stream_chunk_is_read_alike(
    operation: Any, message: str, code: ErrorCode, transient: bool, image: str, names: str
) -> None:
    chunk = {"errorDetail": {"message": message}, "error": message}
    clf = classify(chunk, operation, image=image, path=CONTEXT, engine=ENGINE)

    assert (clf.code, clf.transient) == (code, transient)
    assert names in clf.suggestions[0]


def test_the_engines_404_does_not_hide_an_expired_token() -> None:
    # Produced here: the engine answers a pull refused for an expired token with 404
    # (docker-py raises ImageNotFound); the message, not the status, says what happened.
    response = requests.Response()
    response.status_code = 404
    explanation = (
        "pull access denied for 127.0.0.1:5361/team/app, repository does not exist or may "
        "require 'docker login': denied: Your authorization token has expired. Reauthenticate "
        "and try again."
    )
    error = docker.errors.ImageNotFound("404", response=response, explanation=explanation)

    clf = classify(error, "pull", image="127.0.0.1:5361/team/app:1")

    assert (clf.code, clf.transient) == (C.DOCKER_AUTHENTICATION_FAILED, False)
    assert clf.suggestions[0].startswith("Log in to 127.0.0.1:5361 again for a fresh token")


def test_a_registry_status_does_not_overrule_a_404_no_registry_sends() -> None:
    message = (
        "error parsing HTTP 404 response body: invalid character 'p' after top-level value: "
        '"404 page not found\\n"'
    )
    clf = classify(message, "pull", image="127.0.0.1:5364/team/app:1")

    assert clf.code is C.DOCKER_REGISTRY_ERROR
    assert clf.details["registry_http_status"] == 404


# --- the same failures as docker-py raises them ---------------------------------------------

_STALLED = "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out."


@pytest.mark.parametrize(
    "make",
    [
        # Produced here: a socket that accepts and never answers, client timeout 1 s.
        lambda: requests.exceptions.ReadTimeout(f"{_STALLED} (read timeout=1)"),
        # Produced here: a push whose stream stalls after its first chunk.
        lambda: urllib3.exceptions.ReadTimeoutError(None, "/images/push", "Read timed out."),
        # requests' wrapping of a read timeout met while iterating a stream.
        lambda: requests.exceptions.ConnectionError(_STALLED),
        lambda: TimeoutError("timed out"),
    ],
    ids=["requests-read-timeout", "urllib3-read-timeout", "stream-read-timeout", "socket"],
)
@pytest.mark.parametrize("operation", ["pull", "push", "build"])
def test_an_sdk_read_timeout_is_a_transient_timeout(make: Any, operation: Any) -> None:
    clf = classify(make(), operation, engine=ENGINE)

    assert (clf.code, clf.transient) == (C.SYSTEM_TIMEOUT, True)
    assert clf.suggestions[0].startswith(f"The engine at {ENGINE} took the request")


def test_an_engine_that_hangs_on_the_version_handshake_stays_unavailable() -> None:
    error = docker.errors.DockerException(
        f"Error while fetching server API version: {_STALLED} (read timeout=1)"
    )

    assert classify(error, "pull").code is C.DOCKER_DAEMON_UNAVAILABLE


@pytest.mark.parametrize(
    "make",
    [
        # Produced here: docker-py reading a pull's stream that breaks off mid-object.
        lambda: docker.errors.StreamParseError(
            json.JSONDecodeError("Expecting ',' delimiter", '{"a":1 "b"}', 7)
        ),
        lambda: json.JSONDecodeError("Expecting value", "<html>", 0),
        # Known by its type alone: no rule reads this json error's text.
        lambda: docker.errors.StreamParseError(
            json.JSONDecodeError("Invalid \\uXXXX escape", '"\\u12"', 1)
        ),
    ],
    ids=["stream-parse-error", "json-decode-error", "stream-parse-error-by-type"],
)
@pytest.mark.parametrize("operation", ["pull", "push", "build"])
def test_a_stream_the_agent_cannot_parse_is_unknown_not_a_guess(make: Any, operation: Any) -> None:
    clf = classify(make(), operation, engine=ENGINE)

    assert (clf.code, clf.transient) == (C.UNKNOWN_ERROR, False)
    assert clf.suggestions[0].startswith(f"Check what answers at {ENGINE}")


def test_an_unreadable_context_file_is_named() -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/srv/ctx/secret.txt")

    clf = classify(error, "build", image="app:1", path=CONTEXT)

    assert (clf.code, clf.transient) == (C.DOCKER_PERMISSION_DENIED, False)
    assert clf.details["file"] == "/srv/ctx/secret.txt"
    assert clf.message == (
        "Build of app:1 failed: the client may not read '/srv/ctx/secret.txt' in the build context."
    )
    assert clf.suggestions[0].startswith("Make '/srv/ctx/secret.txt' readable")


def test_docker_pys_unreadable_context_file_is_named() -> None:
    # Produced here: docker.utils.tar() run as user nobody over a file of mode 600.
    error = OSError("Can not read file in context: /srv/ctx/secret.txt")

    clf = classify(error, "build", path=CONTEXT)

    assert (clf.code, clf.details["file"]) == (C.DOCKER_PERMISSION_DENIED, "/srv/ctx/secret.txt")
