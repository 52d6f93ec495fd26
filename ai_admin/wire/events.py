"""The events' wire forms: ``TaskEvent.to_dict`` and ``ObjectEvent.to_dict`` (the types live
with the queue)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from ai_admin.queue.events import ObjectEvent, TaskEvent

__all__ = ["EVENT", "OBJECT_EVENT", "event_schema", "object_event_schema"]

EVENT: TypeAdapter[TaskEvent] = TypeAdapter(TaskEvent)
OBJECT_EVENT: TypeAdapter[ObjectEvent] = TypeAdapter(ObjectEvent)


def event_schema(ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """The JSON schema of one event as the doors send it. ``line`` defaults to None, so it is
    not required: ``to_dict`` sends it on log events only. ``id`` (null on a snapshot that no
    change precedes) and ``progress_detail`` (null until an executor reports numbers) are
    always sent. A stdlib dataclass takes no pydantic
    config, so the schema forbids other keys here."""
    schema = EVENT.json_schema(mode="serialization", ref_template=ref_template)
    return {**schema, "additionalProperties": False}


def object_event_schema(ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """The JSON schema of a change of something that is not a task (``ObjectEvent``): every
    key always sent, no other."""
    schema = OBJECT_EVENT.json_schema(mode="serialization", ref_template=ref_template)
    return {**schema, "required": sorted(schema["properties"]), "additionalProperties": False}
