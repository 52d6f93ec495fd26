"""The event's wire form: ``TaskEvent.to_dict`` (the type itself lives with the queue)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from ai_admin.queue.events import TaskEvent

__all__ = ["EVENT", "event_schema"]

EVENT: TypeAdapter[TaskEvent] = TypeAdapter(TaskEvent)


def event_schema(ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """The JSON schema of one event as the doors send it. ``line`` defaults to None, so it is
    not required: ``to_dict`` sends it on log events only. ``id`` (null on a snapshot that no
    change precedes) and ``progress_detail`` (null until an executor reports numbers) are
    always sent. A stdlib dataclass takes no pydantic
    config, so the schema forbids other keys here."""
    schema = EVENT.json_schema(mode="serialization", ref_template=ref_template)
    return {**schema, "additionalProperties": False}
