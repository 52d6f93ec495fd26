"""The wire layer's models and what is derived from them: every command names its result,
every model forbids keys it does not name, keys only some answers carry are optional (never
null), each MCP tool publishes its own command's envelope, and the OpenAPI document gives
every operation an id, a tag and its command's answer.

That real answers fit these schemas is checked against a running agent in
``tests/integration/test_wire_schemas.py``, ``test_http_cmd.py`` and ``test_http_rest.py``.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
from pydantic import BaseModel, ValidationError

from ai_admin.commands import REGISTRY
from ai_admin.commands.queue_commands import ConfigureParams
from ai_admin.errors import ErrorCode, TaskNotFound
from ai_admin.http import openapi, sse
from ai_admin.http.route_table import ROUTES, Params
from ai_admin.mcp.tools import input_schema, list_tools, output_schema
from ai_admin.queue import stats_views, views
from ai_admin.queue.events import EventKind, TaskEvent
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.views import View
from ai_admin.wire import envelope, events, results, stats, task
from ai_admin.wire.envelope import Failure, Undocumented, Wire, failure, success, success_of
from ai_admin.wire.results import RUNTIME_SETTINGS, RuntimeSettings, Submitted
from ai_admin.wire.task import TaskSummary, TaskView

# Where the models of what crosses the doors are defined: the wire layer's own, and the queue's
# views (task, summary, statistics), which ``wire.task`` and ``wire.stats`` name.
MODULES = (envelope, task, stats, results, views, stats_views)
SUBMITTED = {"task_id": "t", "status": "pending", "queue_position": 1, "merged_into": None}


def wire_models() -> list[type[BaseModel]]:
    found = {
        model
        for module in MODULES
        for _, model in inspect.getmembers(module, inspect.isclass)
        if issubclass(model, Wire | View) and model.__module__ == module.__name__
    }
    return sorted(found, key=lambda m: m.__name__)


def test_the_wire_layer_names_the_queues_views_without_defining_them_again() -> None:
    assert task.TaskView is views.TaskView
    assert task.TaskSummary is views.TaskSummary
    assert stats.QueueStatistics is stats_views.QueueStatistics
    assert {m.__name__ for m in wire_models()} >= {"TaskView", "TaskSummary", "QueueStatistics"}
    assert not hasattr(stats, "QueueStats")  # the name of the queue's counters, not of a view


def test_every_command_names_the_model_of_its_result() -> None:
    assert [c.name for c in REGISTRY if c.result is Undocumented] == []


@pytest.mark.parametrize("model", wire_models(), ids=lambda m: m.__name__)
def test_every_model_refuses_keys_it_does_not_name(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert model.model_json_schema(mode="serialization")["additionalProperties"] is False


def test_queue_configure_takes_the_settings_it_shows() -> None:
    # and the queue whose own limits to change
    assert tuple(ConfigureParams.model_fields) == ("queue", *RUNTIME_SETTINGS)
    assert tuple(RuntimeSettings.model_fields) == RUNTIME_SETTINGS


def test_a_key_only_some_answers_carry_is_optional_never_null_and_has_no_default() -> None:
    schema = TaskSummary.model_json_schema(mode="serialization")
    assert "logs" not in schema["required"]
    assert schema["properties"]["logs"] == {
        "description": "The task's log lines, when asked for.",
        "items": {"type": "string"},
        "title": "Logs",
        "type": "array",
    }


def test_the_envelopes_are_built_as_their_models_say() -> None:
    ok = success("docker_pull", dict(SUBMITTED))
    assert list(ok) == ["success", "action", "data"]
    assert success_of(Submitted).model_validate(ok).data == Submitted(**SUBMITTED)
    refused = failure(TaskNotFound("Task x not found."), "queue_task_status")
    assert list(refused) == ["success", "action", "error"]
    assert Failure.model_validate(refused).error.code == ErrorCode.QUEUE_TASK_NOT_FOUND
    with pytest.raises(ValidationError):
        Failure.model_validate({**refused, "data": {}})


def test_the_queues_views_of_a_task_fit_their_models() -> None:
    done = DockerTask(task_type=TaskType.PULL, status=TaskStatus.COMPLETED, progress=100.0)
    TaskView.model_validate({**done.public_dict(), "queue_position": None})
    TaskSummary.model_validate(views.task_summary(done, None).as_json())


def test_the_event_schema_is_task_events_wire_form() -> None:
    task = DockerTask(task_type=TaskType.BUILD)
    schema = events.event_schema()
    jsonschema.validate(TaskEvent.of(task, EventKind.STATUS).to_dict(), schema)
    jsonschema.validate(TaskEvent.of(task, EventKind.LOG, "Step 1/2").to_dict(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**TaskEvent.of(task, EventKind.STATUS).to_dict(), "x": 1}, schema)


def test_each_tool_publishes_its_own_commands_envelope() -> None:
    tools = {tool.name: tool for tool in list_tools()}
    assert set(tools) == set(REGISTRY.names())
    submitted = success("docker_pull", dict(SUBMITTED))
    for name, tool in tools.items():
        schema = tool.output_schema
        assert schema is not None
        assert schema["type"] == "object", name  # MCP: an outputSchema is an object schema
        fits = jsonschema.Draft202012Validator(schema).is_valid(submitted)
        assert fits == name.startswith("docker_"), name
        refused = failure(TaskNotFound("Task x not found."), name)
        assert jsonschema.Draft202012Validator(schema).is_valid(refused), name


def test_a_submitting_tool_also_publishes_what_waiting_answers() -> None:
    pull = REGISTRY.get("docker_pull")
    status = REGISTRY.get("queue_status")
    assert pull is not None
    assert status is not None
    names = set(output_schema(pull)["$defs"])
    assert {"Success_WaitedTask_", "TaskFailed"} <= names
    assert "TaskFailed" not in output_schema(status)["$defs"]


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in openapi.document()["paths"].items()
        for method, op in item.items()
    ]


def test_every_operation_has_a_unique_id_and_a_declared_tag() -> None:
    document = openapi.document()
    declared = {tag["name"] for tag in document["tags"]}
    ids = Counter(op["operationId"] for _, _, op in operations())
    assert [i for i, n in ids.items() if n > 1] == []
    for method, path, op in operations():
        assert op["tags"], f"{method} {path}"
        assert set(op["tags"]) <= declared, f"{method} {path}"


def test_every_route_of_the_table_is_documented_with_its_commands_answer() -> None:
    paths = openapi.document()["paths"]
    for route in ROUTES:
        op = paths[route.path][route.method.lower()]
        assert op["operationId"] == route.operation_id
        if route.params in (Params.NONE, Params.MESSAGE):
            continue
        names = {openapi.success_schema_name(c) for c in route.commands}
        success = "202" if route.params is Params.SUBMIT else "200"  # a submit is accepted
        assert set(op["responses"]) & {"200", "202"} == {success}, route.path
        schema = op["responses"][success]["content"]["application/json"]["schema"]
        refs = [schema] if "$ref" in schema else schema["anyOf"]
        assert {r["$ref"].rsplit("/", 1)[-1] for r in refs} == names, route.path


def test_a_rule_kept_out_of_a_tool_schema_is_in_the_openapi_request_schema() -> None:
    """docker_build needs context_path or dockerfile: the tool says it in words (assistants
    refuse an anyOf at a tool schema's root), the OpenAPI request schema as an anyOf."""
    build = REGISTRY.get("docker_build")
    assert build is not None
    assert "anyOf" not in input_schema(build)
    assert "at least one" in build.description
    schemas = openapi.document()["components"]["schemas"]
    request = {
        "$ref": "#/components/schemas/DockerBuildCommand",
        "components": {"schemas": schemas},
    }
    validator = jsonschema.Draft202012Validator(request)
    assert not validator.is_valid({"tags": ["app:1"]})
    assert not validator.is_valid({"dockerfile": None, "context_path": None})
    assert validator.is_valid({"dockerfile": "FROM scratch\n"})
    assert validator.is_valid({"context_path": "/src"})
    # and the rules across fields (SCHEMA_RULES): a build that pushes needs a tag...
    assert not validator.is_valid({"dockerfile": "FROM scratch\n", "push": True})
    assert validator.is_valid({"dockerfile": "FROM scratch\n", "push": True, "tags": ["a:1"]})
    # ... and a push takes tag or all_tags, not both
    push = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/DockerPushCommand", "components": {"schemas": schemas}}
    )
    assert not push.is_valid({"image_name": "app", "tag": "1", "all_tags": True})
    assert push.is_valid({"image_name": "app", "tag": None, "all_tags": True})
    assert not push.is_valid({"image_name": "app@sha256:" + "a" * 64})
    push_tool = REGISTRY.get("docker_push")
    assert push_tool is not None
    assert "not" not in input_schema(push_tool)  # assistants refuse it at a tool schema's root


def test_a_message_for_a_build_must_carry_params() -> None:
    """Schemathesis found it: {"action": "docker_build"} was documented as valid (no field
    of a build is required alone), and the agent refused it: it needs one of two."""
    cmd = openapi.document()["paths"]["/cmd"]["post"]["requestBody"]["content"]
    build = next(
        m for m in cmd["application/json"]["schema"]["oneOf"] if m["title"] == "docker_build"
    )
    assert build["required"] == ["action", "params"]


def test_a_submission_documents_that_it_takes_no_other_key() -> None:
    """Schemathesis found it: a submission with a key besides task_type and params was
    documented as valid, and the agent refused it."""
    body = openapi.document()["paths"]["/api/tasks"]["post"]["requestBody"]["content"]
    for branch in body["application/json"]["schema"]["oneOf"]:
        assert branch["additionalProperties"] is False


def test_an_event_stream_documents_each_events_name_and_data() -> None:
    document = openapi.document()
    stream = document["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
    schema = {**stream["text/event-stream"]["schema"], "components": document["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    event = TaskEvent.of(DockerTask(task_type=TaskType.PULL), EventKind.STATUS)
    assert validator.is_valid({"event": "status", "data": json.dumps(event.to_dict())})
    assert validator.is_valid({"event": "lagged", "data": '{"event": "lagged"}'})
    assert not validator.is_valid({"event": "other", "data": "{}"})
    data = {"$ref": "#/components/schemas/TaskEvent", "components": document["components"]}
    jsonschema.validate(event.to_dict(), data)


def test_every_kind_of_frame_the_stream_sends_is_documented() -> None:
    """The frames sse.py writes (a task event, lagged, reset) parse to a documented name, and
    their data validates against the documented content schema."""
    document = openapi.document()
    event_schema = document["components"]["schemas"]["Event"]
    data_schema = {**event_schema["properties"]["data"]["contentSchema"], **document}
    names = event_schema["properties"]["event"]["enum"]
    task_event = TaskEvent.of(DockerTask(task_type=TaskType.PULL), EventKind.PROGRESS)
    for frame in (sse.frame(task_event), sse.reset_frame(5, 9), sse._LAGGED):
        fields = dict(
            line.split(": ", 1) for line in frame.decode().strip().splitlines() if ": " in line
        )
        assert fields["event"] in names, frame
        jsonschema.validate(json.loads(fields["data"]), data_schema)


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    openapi_spec_validator.validate(openapi.document())


def test_a_path_parameter_has_its_params_schema() -> None:
    """Schemathesis found it: a task_id of 200 characters in the path was documented as valid
    (any string) and refused by queue_manage's bound (128)."""
    paths = openapi.document()["paths"]
    for path in ("/api/tasks/{task_id}", "/api/tasks/{task_id}/cancel"):
        for operation in paths[path].values():
            (parameter,) = [p for p in operation["parameters"] if p["in"] == "path"]
            assert (parameter["schema"]["minLength"], parameter["schema"]["maxLength"]) == (1, 128)
