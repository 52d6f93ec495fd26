"""``Dispatcher.dispatch(message) -> Reply``: the one way any door runs a command.

A reply is the envelope every client sees (``ai_admin.wire.envelope``: ``{"success": true,
"action", "data"}`` or ``{"success": false, "action", "error": {"code", "message", "details",
"suggestions"}}``), plus the HTTP status that agrees with it. Nothing a client sends can make
it raise: unexpected failures become ``INTERNAL_ERROR`` with the traceback in the agent's log,
never in the reply (a traceback of code only: the log shows no variable's value, see
``ai_admin.logging``).
Params holding text no parameter may hold (NUL, lone surrogates) are refused for every
command before its model sees them (``ai_admin.validation.check_text``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from ai_admin.commands.registry import REGISTRY, Command, Registry
from ai_admin.errors import AiAdminError, BadRequest, ErrorCode
from ai_admin.validation import parse
from ai_admin.wire.envelope import failure, success

if TYPE_CHECKING:
    from ai_admin.agent import Agent

_MESSAGE_KEYS = frozenset({"action", "params"})


@dataclass(frozen=True, slots=True)
class Reply:
    envelope: dict[str, Any]
    status: int = 200

    @property
    def success(self) -> bool:
        return bool(self.envelope["success"])


def error_reply(error: AiAdminError, action: str | None = None) -> Reply:
    return Reply(failure(error, action), error.http_status)


class Dispatcher:
    def __init__(self, agent: Agent, registry: Registry = REGISTRY) -> None:
        self.agent = agent
        self.registry = registry

    async def dispatch(self, message: Any, *, can_write: bool = True) -> Reply:
        """Validate and run one command message; ``can_write`` False allows read-only ones."""
        action = message.get("action") if isinstance(message, Mapping) else None
        # Echoed in the reply, so bounded (a client may send a megabyte as its "action") and
        # printable (a NUL or a lone surrogate would break an encoder on the way out).
        action = shown_text(action) if isinstance(action, str) and action else None
        try:
            command, params = self._resolve(message)
            return await self.run(command, params, can_write=can_write)
        except AiAdminError as exc:
            return error_reply(exc, action)

    async def run(
        self, command: Command[Any], params: Any, *, can_write: bool = True, strict: bool = True
    ) -> Reply:
        """Run a command whose name is already known (REST routes, MCP tools).

        ``strict``: the params are JSON a client sent, so their types must match the schema
        exactly; False for params read from a query string, whose values are all strings.
        """
        try:
            if not can_write and not command.read_only:
                raise BadRequest(
                    f"{command.name} changes the queue; this token may only read.",
                    code=ErrorCode.AUTH_FORBIDDEN,
                )
            model = parse(
                command.params,
                params if params is not None else {},
                prefix="params.",
                strict=strict,
            )
            data = await command.handler(self.agent, model)
        except AiAdminError as exc:
            return error_reply(exc, command.name)
        except Exception:
            logger.exception("command {} failed", command.name)
            return error_reply(
                AiAdminError(
                    "The agent hit an internal error; the details are in its log.",
                    code=ErrorCode.INTERNAL_ERROR,
                ),
                command.name,
            )
        return Reply(success(command.name, data))

    def _resolve(self, message: Any) -> tuple[Command[Any], Any]:
        if not isinstance(message, Mapping):
            raise BadRequest(
                f"A command message is a JSON object, not {_json_type(message)}.",
                details={"received": _json_type(message)},
            )
        action = message.get("action")
        if not isinstance(action, str) or not action:
            raise BadRequest(
                'The message needs a string "action" naming the command.',
                details={"received_keys": sorted(str(k) for k in message)[:20]},
            )
        extra = sorted(str(k) for k in message if k not in _MESSAGE_KEYS)
        if extra:
            raise BadRequest(
                f"Unknown message keys {extra}: a message has only action and params.",
                details={"unknown_keys": extra[:20]},
            )
        command = self.registry.get(action)
        if command is None:
            raise self._unknown(action)
        params = message.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise BadRequest(
                f'"params" must be a JSON object, not {_json_type(params)}.',
                code=ErrorCode.VALIDATION_INVALID_FORMAT,
            )
        return command, params

    def _unknown(self, action: str) -> BadRequest:
        close = difflib.get_close_matches(action, self.registry.names(), n=3)
        suggestions = [f"Did you mean {', '.join(close)}?"] if close else []
        suggestions.append("Send `commands` to list every command with its schema and example.")
        return BadRequest(
            f"Unknown action '{shown_text(action)}'.",
            code=ErrorCode.REQUEST_UNKNOWN_ACTION,
            details={"action": shown_text(action), "known_actions": self.registry.names()},
            suggestions=suggestions,
        )


def shown_text(text: str, limit: int = 100) -> str:
    """Client text fit to echo: at most ``limit`` characters, each one that is not printable
    (a control character, a lone surrogate) written as its escape."""
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)
