"""From pydantic's validation errors to the agent's codes, in one place for every door.

Each problem is described by where it is and what is wrong; the offending value is never
echoed (it may be a password).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ai_admin.docker.reference import InvalidReference
from ai_admin.errors import ErrorCode, InvalidParams

M = TypeVar("M", bound=BaseModel)

_MISSING = frozenset({"missing"})
_EXTRA = frozenset({"extra_forbidden"})


def _code_for(err: Mapping[str, Any]) -> ErrorCode:
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidReference):
        return ErrorCode.DOCKER_INVALID_REFERENCE
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
    order = [
        ErrorCode.DOCKER_INVALID_REFERENCE,
        ErrorCode.VALIDATION_MISSING_REQUIRED,
        ErrorCode.VALIDATION_INVALID_FORMAT,
    ]
    code = next((c for c in order if c in codes), ErrorCode.VALIDATION_INVALID_PARAMS)
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return InvalidParams(f"Invalid parameters: {summary}", code=code, details={"errors": problems})


def parse(model: type[M], data: Any, *, prefix: str = "", strict: bool = False) -> M:
    """Validate ``data`` against ``model``.

    ``strict`` is for data a client sent as JSON: types must match the schema exactly (no
    ``"yes"`` for a boolean, no ``"5"`` for an integer), as JSON Schema and OpenAPI say; enums
    still take their string values. Without it, strings are converted (query strings).
    """
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
