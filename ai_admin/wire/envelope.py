"""The reply envelope every door sends: built by ``success`` and ``failure``, nowhere else.

``{"success": true, "action": <command>, "data": <its result>}`` or
``{"success": false, "action": <command or null>, "error": {"code", "message", "details",
"suggestions"}}``. ``Success[R]`` and ``Failure`` are the same shapes as models, so each
command's answer has a JSON schema (``envelope_schema``) that OpenAPI and MCP publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from ai_admin.errors import AiAdminError
from ai_admin.queue.views import View, sometimes

__all__ = [
    "ErrorBody",
    "Failure",
    "Success",
    "Undocumented",
    "Wire",
    "envelope_schema",
    "failure",
    "sometimes",
    "success",
    "success_of",
]

R = TypeVar("R", bound=BaseModel)


# A shape the agent emits (a key it does not name is a bug), and the field of a key only some
# answers carry: defined with the queue's views, the first of those shapes.
Wire = View


class Undocumented(BaseModel):
    """Any JSON object: the result of a command that names no result model (a test's)."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(Wire):
    """What failed, in a stable code, and what to do about it (``AiAdminError.to_dict``)."""

    code: str = Field(description="A stable ErrorCode, e.g. QUEUE_TASK_NOT_FOUND.")
    message: str
    details: dict[str, Any] = Field(description="Facts about the failure, by name.")
    suggestions: list[str] = Field(description="What to do about it, for people and models.")


class Success(Wire, Generic[R]):
    success: Literal[True]
    action: str = Field(description="The command that ran.")
    data: R


class Failure(Wire):
    success: Literal[False]
    action: str | None = Field(description="The command, when the message named a known one.")
    error: ErrorBody


def success_of(result: type[BaseModel]) -> type[Success[Any]]:
    """``Success[result]`` for a result model known only at run time (a command's)."""
    return Success[result]  # type: ignore[valid-type]


def success(action: str, data: dict[str, Any]) -> dict[str, Any]:
    """The envelope of a command that ran: ``data`` is its result, already JSON-able."""
    return {"success": True, "action": action, "data": data}


def failure(error: AiAdminError | Mapping[str, Any], action: str | None = None) -> dict[str, Any]:
    """The envelope of a refusal or a failure: ``error`` is the error, or its body already
    made (a finished task's recorded error, which is no longer an exception)."""
    body = error.to_dict() if isinstance(error, AiAdminError) else dict(error)
    return {"success": False, "action": action, "error": body}


def envelope_schema(*models: type[BaseModel]) -> dict[str, Any]:
    """One JSON schema (an object) accepting any of ``models`` (whole envelopes: ``Success``
    of a command's result, ``Failure``, ...), self-contained with its ``$defs``."""
    refs, top = models_json_schema([(m, "serialization") for m in models])
    return {
        "type": "object",
        "anyOf": [refs[(m, "serialization")] for m in models],
        "$defs": top.get("$defs", {}),
    }
