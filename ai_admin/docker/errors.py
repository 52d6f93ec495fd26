"""Docker's failures, turned into the agent's error codes: the classification pipeline.

Docker reports one failure in several shapes: a docker-py exception, a ``requests`` exception
from the engine's socket, an ``error`` chunk inside a JSON stream (a refused push or a failed
build step arrives there, under HTTP 200), or bare text. The engine answers 500 for nearly every
registry failure, so its status says little; the message says which layer failed (socket,
engine, registry, builder, host). So the pipeline:

1. reads the message out of whatever it was given;
2. trusts an engine status only where it cannot mean anything else (401, 429);
3. knows the link to the engine by exception type (a read timeout, a broken socket);
4. matches the message against the operation's rules, where the first matching rule decides
   (``error_rules``, whose docstring gives the order and why);
5. lets a registry status quoted in the text refine a generic registry error, then falls back
   to the engine's status and finally to the operation's own failure code (``error_meanings``).

What leaves this module may quote the user's input (a registry URL) and Docker's text; both
can carry credentials, so every string is scrubbed on the way out (``scrub_credentials``).
"""

from __future__ import annotations

import asyncio
import errno
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import docker.errors
import requests
import urllib3.exceptions

from ai_admin.docker.error_meanings import (
    DECISIVE_ENGINE_STATUS,
    ERRNO_CODES,
    FALLBACK,
    GENERIC_REASON,
    HINTS,
    OPERATION_NAMES,
    REASONS,
    REGISTRY_STATUS,
    SOCKET_ERRNOS,
    STATUS_CODES,
)
from ai_admin.docker.error_rules import (
    ENGINE_RULES,
    MALFORMED_STREAM,
    READ_TIMEOUT,
    RULES,
    TABLES,
    UNREADABLE_CONTEXT_FILE,
    Rule,
)
from ai_admin.docker.reference import read_reference, registry_host, registry_url
from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError, code_info
from ai_admin.queue.secrets import scrub_credentials

__all__ = ["Classification", "DockerOperation", "classify", "docker_errors"]

DockerOperation = Literal["build", "push", "pull"]

C = ErrorCode
_MESSAGE_EXCERPT_CHARS = 300
_REGISTRY_URL = re.compile(r"https?://(?:[^/\s\"'@]+@)?([^/\s\"']+)/v[12]/")
# The image a FROM line's pull was refused for (moby daemon/internal/distribution/errors.go).
_PULLED_IMAGE = re.compile(r"pull access denied for (?P<image>[^\s,]+),")
_POOL_HOST = re.compile(r"host='(?P<host>[^']+)', port=(?P<port>\d+)")
_INT_GROUPS = frozenset({"exit_code", "line"})


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
    named = registry_host(registry) if registry else _registry_in(text, image, operation)
    context = _Context(operation, image, named, path, engine)
    fields = _fields(context, verdict.groups)
    transient = _transient(verdict, registry_status)
    return Classification(
        code=verdict.code,
        transient=transient,
        description=code_info(verdict.code).description,
        suggestions=_suggestions(verdict, operation, fields, transient),
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
    for pattern in REGISTRY_STATUS:
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
    if engine_status in DECISIVE_ENGINE_STATUS:
        return _Verdict(STATUS_CODES[engine_status])
    own = FALLBACK.get(operation, C.UNKNOWN_ERROR)
    found = _transport(error, text, operation, registry) or _match(
        TABLES.get(operation, RULES), text, own
    )
    decisive = found is not None and found.rule is not None and found.rule.decisive
    if found is None or (found.code is C.DOCKER_REGISTRY_ERROR and not decisive):
        found = _by_registry_status(registry_status) or found
    if found is None and engine_status in STATUS_CODES:
        found = _Verdict(STATUS_CODES[engine_status])
    return found or _Verdict(own)


def _match(rules: tuple[Rule, ...], text: str, own: ErrorCode = C.UNKNOWN_ERROR) -> _Verdict | None:
    """The first rule that matches decides; ``own`` is the code of a rule without one."""
    folded = text.casefold()
    for rule in rules:
        if isinstance(rule.pattern, str):
            if rule.pattern.casefold() in folded:
                return _Verdict(rule.code or own, rule)
        elif found := rule.pattern.search(text):
            groups = {k: v for k, v in found.groupdict().items() if v is not None}
            return _Verdict(rule.code or own, rule, groups)
    return None


def _by_registry_status(status: int | None) -> _Verdict | None:
    if status is None or status < 400:
        return None
    return _Verdict(STATUS_CODES.get(status, C.DOCKER_REGISTRY_ERROR))


def _transport(error: object, text: str, operation: str, registry: str | None) -> _Verdict | None:
    """The link to the engine, known by exception type: docker-py talks only to the engine."""
    # urllib3's ReadTimeoutError says "Read timed out" itself: the rules read it as a timeout.
    if isinstance(error, requests.exceptions.ReadTimeout | TimeoutError):
        return _Verdict(C.SYSTEM_TIMEOUT, READ_TIMEOUT)
    if isinstance(error, docker.errors.StreamParseError | json.JSONDecodeError):
        return _Verdict(C.UNKNOWN_ERROR, MALFORMED_STREAM)
    if isinstance(
        error,
        requests.exceptions.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.ProtocolError,
    ):
        if _is_registry_request(error, text, registry):
            return _Verdict(C.DOCKER_NETWORK_ERROR)
        # requests wraps a read timeout in the middle of a stream in a ConnectionError.
        engine = _match((*ENGINE_RULES, READ_TIMEOUT), text)
        return engine or _Verdict(C.DOCKER_DAEMON_UNAVAILABLE)
    if isinstance(error, OSError) and not isinstance(error, requests.RequestException):
        return _os_error(error, operation)
    return None


def _os_error(error: OSError, operation: str) -> _Verdict | None:
    if error.errno in (errno.EACCES, errno.EPERM) and error.filename and operation == "build":
        # A build context file the agent's user may not read: name it.
        file = {"file": str(error.filename)}
        return _Verdict(C.DOCKER_PERMISSION_DENIED, UNREADABLE_CONTEXT_FILE, file)
    if error.errno in ERRNO_CODES:
        return _Verdict(ERRNO_CODES[error.errno])
    if error.filename is None and error.errno in SOCKET_ERRNOS:
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
    wanted = registry_url(registry)
    same_port = wanted.port is None or wanted.port == port
    return host is not None and host.lower() == (wanted.hostname or "") and same_port


def _transient(verdict: _Verdict, registry_status: int | None) -> bool:
    if verdict.rule is not None and verdict.rule.transient is not None:
        return verdict.rule.transient
    if verdict.code is C.DOCKER_REGISTRY_ERROR and registry_status is not None:
        return registry_status >= 500
    return code_info(verdict.code).transient


# --- writing the result ---------------------------------------------------------------------


def _registry_in(text: str, image: str | None, operation: str) -> str | None:
    """The registry a message names (``Head "https://reg:5000/v2/…"``), else the image's; a
    build's failures concern its FROM images, so there the image a message quotes."""
    if found := _REGISTRY_URL.search(text):
        return found.group(1)
    if operation != "build":
        return read_reference(image).registry_name if image else None
    if found := _PULLED_IMAGE.search(text):
        return read_reference(found["image"]).registry_name
    return None


def _fields(context: _Context, groups: Mapping[str, str]) -> dict[str, str]:
    fields = dict(groups)
    if context.image:
        fields["image"] = context.image
        fields["repository"] = read_reference(context.image).path
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
    subject = OPERATION_NAMES.get(context.operation, "Docker operation")
    if context.image:
        subject = f"{subject} of {context.image}"
    line = f"{subject} failed: {reason or REASONS.get(verdict.code, GENERIC_REASON)}"
    excerpt = _one_line(text)
    if reason is None and excerpt:
        line = f"{line} ({excerpt})"
    return scrub_credentials(f"{line}.")


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _MESSAGE_EXCERPT_CHARS:
        return flat[: _MESSAGE_EXCERPT_CHARS - 1] + "…"
    return flat


def _suggestions(
    verdict: _Verdict, operation: str, fields: Mapping[str, str], transient: bool
) -> list[str]:
    rule = verdict.rule
    if rule is not None and rule.hint:
        # A rule's alternatives: the first whose fields this failure knows.
        alternatives = (rule.hint,) if isinstance(rule.hint, str) else rule.hint
        filled = (s for s in (_fill(t, fields) for t in alternatives) if s)
        found = next(filled, None)
        hints = [found] if found else []
    else:
        templates = HINTS.get((verdict.code, operation)) or HINTS.get((verdict.code, None), ())
        hints = [s for s in (_fill(t, fields) for t in templates) if s]
    # Only the concrete ones quote input that may carry a credential; the catalogue's are ours.
    concrete = [scrub_credentials(s) for s in hints]
    generic = code_info(verdict.code).suggestions_for(transient)
    return list(dict.fromkeys([*concrete, *generic]))


def _details(
    verdict_code: ErrorCode,
    error: object,
    text: str,
    context: _Context,
    engine_status: int | None,
    registry_status: int | None,
    groups: Mapping[str, str],
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "operation": context.operation,
        "docker_message": scrub_credentials(text),
    }
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
    return {k: scrub_credentials(v) if isinstance(v, str) else v for k, v in details.items()}
