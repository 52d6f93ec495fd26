"""The error taxonomy: every failure the agent reports has a stable code from this module.

Codes are strings clients match on (``DOCKER_AUTHENTICATION_FAILED``), so they never change once
published. Each code carries a one-line description, generic advice, whether retrying can help,
and the HTTP status a door answers with.

Exception tree (catch ``AiAdminError`` to catch them all)::

    AiAdminError(code, message, details, suggestions, transient)
    ├── InvalidParams            VALIDATION_* (bad input from a client)
    ├── BadRequest               REQUEST_*, AUTH_* (a door refused the request itself)
    ├── TaskNotFound             QUEUE_TASK_NOT_FOUND
    ├── ScheduleNotFound         SCHEDULE_NOT_FOUND
    ├── QueueFull                QUEUE_FULL
    ├── QueueShuttingDown        QUEUE_SHUTTING_DOWN
    ├── TransitionNotAllowed     QUEUE_TASK_* (an action the state machine refuses)
    ├── TaskTimeout              SYSTEM_TIMEOUT
    ├── StoreError               SYSTEM_DISK_SPACE, INTERNAL_ERROR (the agent's own database)
    └── ExecutionError           any code an executor reports (DOCKER_*, SYSTEM_*)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # Docker
    DOCKER_IMAGE_NOT_FOUND = "DOCKER_IMAGE_NOT_FOUND"
    DOCKER_AUTHENTICATION_FAILED = "DOCKER_AUTHENTICATION_FAILED"
    DOCKER_PERMISSION_DENIED = "DOCKER_PERMISSION_DENIED"
    DOCKER_NETWORK_ERROR = "DOCKER_NETWORK_ERROR"
    DOCKER_REGISTRY_ERROR = "DOCKER_REGISTRY_ERROR"
    DOCKER_BUILD_FAILED = "DOCKER_BUILD_FAILED"
    DOCKER_PUSH_FAILED = "DOCKER_PUSH_FAILED"
    DOCKER_PULL_FAILED = "DOCKER_PULL_FAILED"
    DOCKER_DAEMON_UNAVAILABLE = "DOCKER_DAEMON_UNAVAILABLE"
    DOCKER_RATE_LIMITED = "DOCKER_RATE_LIMITED"
    DOCKER_INVALID_REFERENCE = "DOCKER_INVALID_REFERENCE"
    # System
    SYSTEM_TIMEOUT = "SYSTEM_TIMEOUT"
    SYSTEM_RESOURCE_LIMIT = "SYSTEM_RESOURCE_LIMIT"
    SYSTEM_DISK_SPACE = "SYSTEM_DISK_SPACE"
    SYSTEM_MEMORY_LIMIT = "SYSTEM_MEMORY_LIMIT"
    # Validation
    VALIDATION_INVALID_PARAMS = "VALIDATION_INVALID_PARAMS"
    VALIDATION_MISSING_REQUIRED = "VALIDATION_MISSING_REQUIRED"
    VALIDATION_INVALID_FORMAT = "VALIDATION_INVALID_FORMAT"
    VALIDATION_PATH_NOT_ALLOWED = "VALIDATION_PATH_NOT_ALLOWED"
    VALIDATION_OPTION_NOT_ALLOWED = "VALIDATION_OPTION_NOT_ALLOWED"
    # Requests (the doors)
    REQUEST_INVALID_JSON = "REQUEST_INVALID_JSON"
    REQUEST_INVALID_MESSAGE = "REQUEST_INVALID_MESSAGE"
    REQUEST_UNKNOWN_ACTION = "REQUEST_UNKNOWN_ACTION"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    REQUEST_NOT_FOUND = "REQUEST_NOT_FOUND"
    REQUEST_METHOD_NOT_ALLOWED = "REQUEST_METHOD_NOT_ALLOWED"
    REQUEST_HOST_NOT_ALLOWED = "REQUEST_HOST_NOT_ALLOWED"
    REQUEST_ORIGIN_NOT_ALLOWED = "REQUEST_ORIGIN_NOT_ALLOWED"
    REQUEST_LIMIT_REACHED = "REQUEST_LIMIT_REACHED"
    AUTH_REQUIRED = "AUTH_REQUIRED"
    AUTH_INVALID_TOKEN = "AUTH_INVALID_TOKEN"  # noqa: S105 - a code, not a token
    AUTH_FORBIDDEN = "AUTH_FORBIDDEN"
    # Queue
    QUEUE_FULL = "QUEUE_FULL"
    QUEUE_TASK_NOT_FOUND = "QUEUE_TASK_NOT_FOUND"
    QUEUE_TASK_ALREADY_RUNNING = "QUEUE_TASK_ALREADY_RUNNING"
    QUEUE_TASK_ALREADY_PAUSED = "QUEUE_TASK_ALREADY_PAUSED"
    QUEUE_TASK_NOT_PAUSED = "QUEUE_TASK_NOT_PAUSED"
    QUEUE_TASK_FINISHED = "QUEUE_TASK_FINISHED"
    QUEUE_TASK_NOT_RETRYABLE = "QUEUE_TASK_NOT_RETRYABLE"
    QUEUE_RETRY_LIMIT_REACHED = "QUEUE_RETRY_LIMIT_REACHED"
    QUEUE_SHUTTING_DOWN = "QUEUE_SHUTTING_DOWN"
    QUEUE_CREDENTIALS_LOST = "QUEUE_CREDENTIALS_LOST"
    QUEUE_DEPENDENCY_FAILED = "QUEUE_DEPENDENCY_FAILED"
    QUEUE_DEPENDENCY_INVALID = "QUEUE_DEPENDENCY_INVALID"
    QUEUE_NOT_FOUND = "QUEUE_NOT_FOUND"
    QUEUE_ALREADY_EXISTS = "QUEUE_ALREADY_EXISTS"
    QUEUE_NOT_EMPTY = "QUEUE_NOT_EMPTY"
    BATCH_NOT_FOUND = "BATCH_NOT_FOUND"
    BATCH_ACTION_NOT_ALLOWED = "BATCH_ACTION_NOT_ALLOWED"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    # Generic
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    description: str
    suggestions: tuple[str, ...]
    transient: bool = False
    http_status: int = 500
    # Advice that holds only when retrying can help: left out of a failure known not to be.
    if_transient: tuple[str, ...] = ()

    def suggestions_for(self, transient: bool) -> tuple[str, ...]:
        return (*self.suggestions, *self.if_transient) if transient else self.suggestions


_CATALOGUE: dict[ErrorCode, CodeInfo] = {
    ErrorCode.DOCKER_IMAGE_NOT_FOUND: CodeInfo(
        "The image or tag does not exist (locally for a push, in the registry for a pull).",
        (
            "Check the image name and tag for typos.",
            "List local images with `docker images`; build or tag the image before pushing it.",
        ),
        http_status=404,
    ),
    ErrorCode.DOCKER_AUTHENTICATION_FAILED: CodeInfo(
        "The registry refused the credentials, or none were given where they are required.",
        (
            'Pass credentials in the task: "auth": {"username": "...", "password": "..."}.',
            "Or log the agent's user in: `docker login <registry>`.",
            "Check that the account may read or write this repository.",
        ),
    ),
    ErrorCode.DOCKER_PERMISSION_DENIED: CodeInfo(
        "Docker or the registry denied the operation for this user.",
        (
            "Check that the agent's user may use the Docker socket (group `docker`).",
            "Check that the registry account has permission for this repository.",
        ),
    ),
    ErrorCode.DOCKER_NETWORK_ERROR: CodeInfo(
        "The registry could not be reached over the network.",
        (
            "Check the registry address and port.",
            "Check DNS, proxy and firewall settings of the Docker host.",
        ),
        transient=True,
    ),
    ErrorCode.DOCKER_REGISTRY_ERROR: CodeInfo(
        "The registry answered with an error of its own.",
        ("Check the registry's status and logs.",),
        transient=True,
        if_transient=("Retry later; server-side errors are often temporary.",),
    ),
    ErrorCode.DOCKER_BUILD_FAILED: CodeInfo(
        "The image build failed.",
        ("Read the failing step and its last output lines in the task's log.",),
    ),
    ErrorCode.DOCKER_PUSH_FAILED: CodeInfo(
        "The push failed.",
        ("Read the task's log for Docker's message.",),
    ),
    ErrorCode.DOCKER_PULL_FAILED: CodeInfo(
        "The pull failed.",
        ("Read the task's log for Docker's message.",),
    ),
    ErrorCode.DOCKER_DAEMON_UNAVAILABLE: CodeInfo(
        "The Docker engine cannot be reached.",
        (
            "Start the Docker engine (`systemctl start docker` or `dockerd`).",
            "Check DOCKER_HOST and the socket path the agent uses.",
        ),
        transient=True,
        http_status=503,
    ),
    ErrorCode.DOCKER_RATE_LIMITED: CodeInfo(
        "The registry is limiting the request rate.",
        (
            "Wait and retry; the agent retries this automatically with backoff.",
            "Authenticate to get a higher rate limit, or use a registry mirror.",
        ),
        transient=True,
    ),
    ErrorCode.DOCKER_INVALID_REFERENCE: CodeInfo(
        "The image reference is not a valid Docker image name.",
        (
            "Use lowercase names like `registry:5000/team/app:1.4`.",
            "Tags may hold letters, digits, `_`, `.` and `-`, up to 128 characters.",
        ),
        http_status=400,
    ),
    ErrorCode.SYSTEM_TIMEOUT: CodeInfo(
        "The task ran longer than its timeout.",
        (
            "Raise the task's `timeout` if the operation is expected to be slow.",
            "Check the network speed to the registry and the build's slow steps.",
        ),
    ),
    ErrorCode.SYSTEM_RESOURCE_LIMIT: CodeInfo(
        "A system resource limit was exceeded.",
        ("Lower the agent's concurrency or free resources on the Docker host.",),
        transient=True,
    ),
    ErrorCode.SYSTEM_DISK_SPACE: CodeInfo(
        "The Docker host or the agent's data directory ran out of disk space.",
        (
            "Free space: `docker system prune` removes unused images and build cache.",
            "Free space on the agent's data directory; `queue_clear` deletes finished tasks.",
        ),
        http_status=507,
    ),
    ErrorCode.SYSTEM_MEMORY_LIMIT: CodeInfo(
        "The operation ran out of memory.",
        ("Lower concurrency or give the Docker host more memory.",),
    ),
    ErrorCode.VALIDATION_INVALID_PARAMS: CodeInfo(
        "The parameters are not valid.",
        ("Send the parameters the command's schema describes (`commands` lists them).",),
        http_status=400,
    ),
    ErrorCode.VALIDATION_MISSING_REQUIRED: CodeInfo(
        "A required parameter is missing.",
        ("Add the missing parameter; `commands` lists each command's schema.",),
        http_status=400,
    ),
    ErrorCode.VALIDATION_INVALID_FORMAT: CodeInfo(
        "A parameter has the wrong format.",
        ("Check the parameter's type and format against the command's schema.",),
        http_status=400,
    ),
    ErrorCode.VALIDATION_PATH_NOT_ALLOWED: CodeInfo(
        "The path is outside the directories the agent may read.",
        ("Use a path under one of the configured `allowed_roots`.",),
        http_status=400,
    ),
    ErrorCode.VALIDATION_OPTION_NOT_ALLOWED: CodeInfo(
        "The option would reach outside the build, which the agent's configuration does not allow.",
        ("Use an allowed value, or ask the operator to allow it (`allowed_network_modes`).",),
        http_status=400,
    ),
    ErrorCode.REQUEST_INVALID_JSON: CodeInfo(
        "The request body is not valid JSON.",
        ('Send a JSON object: {"action": "queue_status", "params": {}}.',),
        http_status=400,
    ),
    ErrorCode.REQUEST_INVALID_MESSAGE: CodeInfo(
        "The message is not a command: it must be a JSON object with a string `action`.",
        ('Send {"action": "<command>", "params": {...}}; `commands` lists the commands.',),
        http_status=400,
    ),
    ErrorCode.REQUEST_UNKNOWN_ACTION: CodeInfo(
        "No command has this name.",
        ("Send `commands` to list every command with its schema and an example.",),
        http_status=400,
    ),
    ErrorCode.REQUEST_TOO_LARGE: CodeInfo(
        "The request body is larger than the agent accepts.",
        ("Send a smaller body; build contexts go by `context_path`, not inline.",),
        http_status=413,
    ),
    ErrorCode.REQUEST_NOT_FOUND: CodeInfo(
        "No such route.",
        ("See /openapi.json for the routes.",),
        http_status=404,
    ),
    ErrorCode.REQUEST_METHOD_NOT_ALLOWED: CodeInfo(
        "This route does not take this HTTP method.",
        ("See /openapi.json for the methods of each route.",),
        http_status=405,
    ),
    ErrorCode.REQUEST_HOST_NOT_ALLOWED: CodeInfo(
        "The request's Host header names a host the agent does not serve.",
        ("Use the address the agent listens on, or add the name to `allowed_hosts`.",),
        http_status=400,
    ),
    ErrorCode.REQUEST_ORIGIN_NOT_ALLOWED: CodeInfo(
        "Requests from this browser origin are not allowed.",
        ("Add the origin to `allowed_origins` if pages from it may drive the agent.",),
        http_status=403,
    ),
    ErrorCode.REQUEST_LIMIT_REACHED: CodeInfo(
        "This token holds as many open streams or sessions as the agent allows.",
        (
            "Close streams or sessions you no longer read.",
            "Or raise `max_event_streams_per_token` / `max_mcp_sessions_per_token`.",
        ),
        transient=True,
        http_status=429,
    ),
    ErrorCode.AUTH_REQUIRED: CodeInfo(
        "This request needs a bearer token.",
        (
            "Send `Authorization: Bearer <token>`; the token is in the data directory "
            "(file `token`) or AI_ADMIN_TOKEN.",
        ),
        http_status=401,
    ),
    ErrorCode.AUTH_INVALID_TOKEN: CodeInfo(
        "The bearer token is not valid.",
        ("Check the token; it is in the data directory (file `token`) or AI_ADMIN_TOKEN.",),
        http_status=401,
    ),
    ErrorCode.AUTH_FORBIDDEN: CodeInfo(
        "This token may only read; the command changes the queue.",
        ("Use an operator token to submit and manage tasks.",),
        http_status=403,
    ),
    ErrorCode.QUEUE_FULL: CodeInfo(
        "The queue holds its maximum number of waiting tasks.",
        ("Wait for tasks to finish, or raise `max_queue_size`.",),
        transient=True,
        http_status=429,
    ),
    ErrorCode.QUEUE_TASK_NOT_FOUND: CodeInfo(
        "No task has this id.",
        ("Check the id; list tasks with `queue_status` and `detailed: true`.",),
        http_status=404,
    ),
    ErrorCode.QUEUE_TASK_ALREADY_RUNNING: CodeInfo(
        "The task is running, which this action does not allow.",
        ("Pause or cancel the task first, or wait for it to finish.",),
        http_status=409,
    ),
    ErrorCode.QUEUE_TASK_ALREADY_PAUSED: CodeInfo(
        "The task is already paused.",
        ("Resume it with `queue_manage` action `resume`.",),
        http_status=409,
    ),
    ErrorCode.QUEUE_TASK_NOT_PAUSED: CodeInfo(
        "Only a paused task can be resumed.",
        ("Check the task's status with `queue_task_status`.",),
        http_status=409,
    ),
    ErrorCode.QUEUE_TASK_FINISHED: CodeInfo(
        "The task has already finished.",
        ("A failed, cancelled or timed-out task can be retried with action `retry`.",),
        http_status=409,
    ),
    ErrorCode.QUEUE_TASK_NOT_RETRYABLE: CodeInfo(
        "Only a failed, cancelled or timed-out task can be retried.",
        ("Check the task's status with `queue_task_status`.",),
        http_status=409,
    ),
    ErrorCode.QUEUE_RETRY_LIMIT_REACHED: CodeInfo(
        "The task has used all its retries.",
        ('Retry anyway with "force": true, after fixing the cause of the failure.',),
        http_status=409,
    ),
    ErrorCode.QUEUE_SHUTTING_DOWN: CodeInfo(
        "The agent is shutting down and takes no new work.",
        ("Submit the task again once the agent has restarted.",),
        transient=True,
        http_status=503,
    ),
    ErrorCode.QUEUE_CREDENTIALS_LOST: CodeInfo(
        "The task's credentials were held in memory only and were lost when the agent restarted.",
        ("Submit the task again with its credentials (`auth`, secret build args).",),
        http_status=409,
    ),
    ErrorCode.QUEUE_DEPENDENCY_FAILED: CodeInfo(
        "A task this one depends on failed, was cancelled or timed out, so it did not run.",
        (
            "Look at the task named in the error's details (`queue_task_status`), fix its "
            "cause, retry it, then retry this task.",
        ),
        http_status=409,
    ),
    ErrorCode.QUEUE_DEPENDENCY_INVALID: CodeInfo(
        "`depends_on` names a task that does not exist, or would make a cycle.",
        ("Name existing task ids (or, in a batch, earlier entries by their index).",),
        http_status=400,
    ),
    ErrorCode.QUEUE_NOT_FOUND: CodeInfo(
        "No queue has this name.",
        ("List the queues with `queue_list`, or create one with `queue_create`.",),
        http_status=404,
    ),
    ErrorCode.QUEUE_ALREADY_EXISTS: CodeInfo(
        "A queue with this name exists already.",
        ("Change its settings with `queue_configure`, or choose another name.",),
        http_status=409,
    ),
    ErrorCode.QUEUE_NOT_EMPTY: CodeInfo(
        "The queue still holds tasks or batches that have not finished.",
        ("Wait for them to finish, or cancel them (`queue_clear`), then delete the queue.",),
        http_status=409,
    ),
    ErrorCode.BATCH_NOT_FOUND: CodeInfo(
        "No batch has this id.",
        ("List the batches with `batch_list`.",),
        http_status=404,
    ),
    ErrorCode.BATCH_ACTION_NOT_ALLOWED: CodeInfo(
        "The batch's state does not allow this action.",
        ("Check the batch's state with `batch_status`.",),
        http_status=409,
    ),
    ErrorCode.SCHEDULE_NOT_FOUND: CodeInfo(
        "No schedule has this id (it may have been deleted).",
        ("List the schedules with `schedule_list`.",),
        http_status=404,
    ),
    ErrorCode.UNKNOWN_ERROR: CodeInfo(
        "The operation failed for a reason the agent could not classify.",
        ("Read the task's log and the error details for the original message.",),
    ),
    ErrorCode.INTERNAL_ERROR: CodeInfo(
        "The agent hit an internal error.",
        ("Retry; if it persists, report it with the agent's log.",),
    ),
}

assert set(_CATALOGUE) == set(ErrorCode), "every ErrorCode needs a catalogue entry"


def code_info(code: ErrorCode) -> CodeInfo:
    return _CATALOGUE[code]


class AiAdminError(Exception):
    """Base of every error the agent reports; carries a stable code and advice."""

    default_code = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: Mapping[str, Any] | None = None,
        suggestions: Sequence[str] | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        info = _CATALOGUE[self.code]
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.transient = info.transient if transient is None else transient
        self.suggestions: list[str] = list(suggestions or info.suggestions_for(self.transient))

    @property
    def description(self) -> str:
        return _CATALOGUE[self.code].description

    @property
    def http_status(self) -> int:
        return _CATALOGUE[self.code].http_status

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "message": self.message,
            "details": self.details,
            "suggestions": self.suggestions,
        }


class InvalidParams(AiAdminError):
    default_code = ErrorCode.VALIDATION_INVALID_PARAMS


class BadRequest(AiAdminError):
    default_code = ErrorCode.REQUEST_INVALID_MESSAGE


class TaskNotFound(AiAdminError):
    default_code = ErrorCode.QUEUE_TASK_NOT_FOUND

    def __init__(self, task_id: str) -> None:
        super().__init__(f"No task with id {task_id!r}.", details={"task_id": task_id})


class ScheduleNotFound(AiAdminError):
    default_code = ErrorCode.SCHEDULE_NOT_FOUND

    def __init__(self, schedule_id: str) -> None:
        super().__init__(
            f"No schedule with id {schedule_id!r}.", details={"schedule_id": schedule_id}
        )


class QueueFull(AiAdminError):
    default_code = ErrorCode.QUEUE_FULL


class QueueShuttingDown(AiAdminError):
    default_code = ErrorCode.QUEUE_SHUTTING_DOWN


class TransitionNotAllowed(AiAdminError):
    """The state machine refused an action; the code says why."""


class TaskTimeout(AiAdminError):
    default_code = ErrorCode.SYSTEM_TIMEOUT


class ExecutionError(AiAdminError):
    """An executor's failure, already classified (DOCKER_*, SYSTEM_*)."""

    default_code = ErrorCode.UNKNOWN_ERROR


class StoreError(AiAdminError):
    """The agent's own database failed (disk full, unreadable); nothing was stored half-way."""
