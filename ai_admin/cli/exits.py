"""How a client command ends: its exit status tells failure classes apart, and a failure
carries the code, message and suggestions it prints.

A script reads the class from the status alone (documented in ``docs/cli.md``)::

    0   OK            the command did what it was asked (a followed task completed)
    1   TASK_FAILED   a followed task ended failed, timed out or cancelled
    2   USAGE         a wrong option or argument, a bad configuration, an unreadable file
    3   UNREACHABLE   no agent answered at the URL (refused, timed out, not HTTP)
    4   AUTH          no token, a wrong token, or a read-only token for a change (401, 403)
    5   NOT_FOUND     no such task, queue, batch or schedule (404)
    6   REFUSED       the agent refused the request: invalid params, a transition its state
                      does not allow, a full queue, no disk space (400, 409, 413, 429, 503, 507)
    7   UNSUPPORTED   the agent does not know the command (an older agent)
    8   AGENT_ERROR   the agent failed inside (500) or answered something that is no envelope
    9   DECLINED      a confirmation was answered no: nothing was changed
    130 INTERRUPTED   Ctrl-C (a followed task goes on running in the agent)

Codes of the agent's answers are its own (``ai_admin.errors.ErrorCode``); the few situations
only the client sees have codes starting with ``CLIENT_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

__all__ = ["CliFailure", "ExitCode", "exit_code_for"]


class ExitCode(IntEnum):
    OK = 0
    TASK_FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    AUTH = 4
    NOT_FOUND = 5
    REFUSED = 6
    UNSUPPORTED = 7
    AGENT_ERROR = 8
    DECLINED = 9
    INTERRUPTED = 130


# Codes whose class the HTTP status alone would not tell.
_BY_CODE = {
    "REQUEST_UNKNOWN_ACTION": ExitCode.UNSUPPORTED,
    "AUTH_REQUIRED": ExitCode.AUTH,
    "AUTH_INVALID_TOKEN": ExitCode.AUTH,
    "AUTH_FORBIDDEN": ExitCode.AUTH,
}


def exit_code_for(http_status: int, code: str) -> ExitCode:
    """The class of an error the agent answered with ``http_status`` and ``code``."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if http_status in (401, 403):
        return ExitCode.AUTH
    if http_status == 404:
        return ExitCode.NOT_FOUND
    if http_status >= 500 and http_status not in (503, 507):
        return ExitCode.AGENT_ERROR
    return ExitCode.REFUSED


class CliFailure(Exception):
    """A command's failure as it is printed: a stable code, one message, what to do, and the
    exit status of its class."""

    def __init__(
        self,
        code: str,
        message: str,
        exit_code: ExitCode,
        suggestions: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code
        self.suggestions = list(suggestions)
        self.details = details or {}
