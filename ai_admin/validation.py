"""From pydantic's validation errors to the agent's codes, in one place for every door.

Each problem is described by where it is and what is wrong; the offending value is never
echoed (it may be a password). Before any model sees them, params are searched for text no
parameter may hold (a NUL character, a lone surrogate), at any depth: such a value would fail
later, deep in a system call or an encoder, as an internal error.

A validator that knows a more specific code than pydantic's kinds of error raises a
``CodedValueError`` carrying it (an image reference raises ``DOCKER_INVALID_REFERENCE``): this
module reads the code from the error and never needs to know the layer that raised it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from ai_admin.errors import ErrorCode, InvalidParams

M = TypeVar("M", bound=BaseModel)

_MISSING = frozenset({"missing"})
_MAX_BAD_TEXT_REPORTED = 10
_MAX_KEY_SHOWN = 100
_EXTRA = frozenset({"extra_forbidden"})
# Pydantic's own kinds of problem, from the most specific; a code a validator names comes first.
_GENERIC_ORDER = (ErrorCode.VALIDATION_MISSING_REQUIRED, ErrorCode.VALIDATION_INVALID_FORMAT)
_GENERIC = frozenset({*_GENERIC_ORDER, ErrorCode.VALIDATION_INVALID_PARAMS})


class CodedValueError(ValueError):
    """A ``ValueError`` raised in a validator that names the code of its problem.

    Pydantic turns it into a validation error like any ``ValueError`` (the message is what the
    client reads); ``invalid_params`` then answers with ``code`` rather than a generic one.
    Subclasses set ``code``.
    """

    code: ClassVar[ErrorCode] = ErrorCode.VALIDATION_INVALID_PARAMS


def _code_for(err: Mapping[str, Any]) -> ErrorCode:
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, CodedValueError):
        return cause.code
    if err["type"] in _MISSING:
        return ErrorCode.VALIDATION_MISSING_REQUIRED
    if err["type"].endswith(("_type", "_parsing", "json_invalid")) or "pattern" in err["type"]:
        return ErrorCode.VALIDATION_INVALID_FORMAT
    return ErrorCode.VALIDATION_INVALID_PARAMS


def _where(err: Mapping[str, Any], prefix: str) -> str:
    # An error of the whole model (a wrong type, a model validator) has no location of its own.
    if not err["loc"]:
        return _whole(prefix)
    return prefix + ".".join(str(p) for p in err["loc"])


def _whole(prefix: str) -> str:
    return prefix.rstrip(".") or "params"


def _what(err: Mapping[str, Any]) -> str:
    if err["type"] in _EXTRA:
        return "unknown parameter"
    return str(err["msg"]).removeprefix("Value error, ")


def invalid_params(exc: ValidationError, *, prefix: str = "") -> InvalidParams:
    """An ``InvalidParams`` whose code is the most specific one among the problems."""
    errors = exc.errors(include_url=False, include_input=False)
    problems = [{"field": _where(e, prefix), "problem": _what(e)} for e in errors]
    codes = [_code_for(e) for e in errors]
    named = [c for c in codes if c not in _GENERIC]
    order = [*named, *_GENERIC_ORDER]
    code = next((c for c in order if c in codes), ErrorCode.VALIDATION_INVALID_PARAMS)
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return InvalidParams(f"Invalid parameters: {summary}", code=code, details={"errors": problems})


def parse(model: type[M], data: Any, *, prefix: str = "", strict: bool = False) -> M:
    """Validate ``data`` against ``model``.

    ``strict`` is for data a client sent as JSON: types must match the schema exactly (no
    ``"yes"`` for a boolean, no ``"5"`` for an integer), as JSON Schema and OpenAPI say; enums
    still take their string values. Without it, strings are converted (query strings).
    """
    check_text(data, prefix=prefix)
    try:
        if strict:
            return model.model_validate_json(_as_json(data, prefix), strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_params(exc, prefix=prefix) from None


def _as_json(data: Any, prefix: str) -> str:
    try:
        return json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        where = _whole(prefix)
        raise InvalidParams(
            f"{where} must be plain JSON data: numbers finite (no NaN or Infinity), nesting "
            "shallow.",
            code=ErrorCode.VALIDATION_INVALID_FORMAT,
            details={"errors": [{"field": where, "problem": type(exc).__name__}]},
        ) from None


def check_text(data: Any, *, prefix: str = "") -> None:
    """Refuse params holding a NUL character or a lone surrogate in any string, key or value,
    however deeply nested, naming each place (``params.build_args.X``) and never the value."""
    problems = []
    for where, problem in _bad_text(data, prefix.rstrip(".")):
        problems.append({"field": where or _whole(prefix), "problem": problem})
        if len(problems) == _MAX_BAD_TEXT_REPORTED:
            break
    if problems:
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        raise InvalidParams(
            f"Invalid parameters: {summary}",
            code=ErrorCode.VALIDATION_INVALID_FORMAT,
            details={"errors": problems},
        )


def _bad_text(data: Any, root: str) -> Iterator[tuple[str, str]]:
    """(where, what is wrong) for each bad string; iterative, so depth cannot overflow."""
    stack: list[tuple[str, Any]] = [(root, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                yield where, problem
        elif isinstance(value, Mapping):
            for key, item in reversed(list(value.items())):
                name = str(key)
                problem = _text_problem(name)
                if problem:
                    yield _join(where, _shown_key(name)), f"the key {problem}"
                    continue
                stack.append((_join(where, name), item))
        elif isinstance(value, list | tuple):
            stack.extend((_join(where, str(i)), v) for i, v in reversed(list(enumerate(value))))


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which no parameter may contain"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (\\ud800-\\udfff), which is not valid text"
    return None


def _shown_key(key: str) -> str:
    """A refused key, its bad characters escaped, so the answer is plain text."""
    shown = key[:_MAX_KEY_SHOWN].encode("utf-8", "backslashreplace").decode("utf-8")
    return shown.replace("\x00", "\\x00")
