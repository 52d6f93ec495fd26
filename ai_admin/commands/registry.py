"""The command registry: the one definition every door reads.

A command is a pydantic params model, an async handler, the model of its result (from
``ai_admin.wire.results``), a description written for people and for models (when to use it,
what it returns), an example and three honest flags. Validation, JSON schemas (of params and
of answers), HTTP routes, MCP tools, CLI help and the ``commands/`` catalogue all come from
here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ai_admin.wire.envelope import Undocumented

if TYPE_CHECKING:
    from ai_admin.agent import Agent

P = TypeVar("P", bound=BaseModel)
Handler = Callable[["Agent", P], Awaitable[dict[str, Any]]]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Command(Generic[P]):
    name: str
    description: str
    params: type[P]
    handler: Handler[P]
    # the shape of the handler's data, as the wire layer documents it
    result: type[BaseModel] = Undocumented
    example: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False  # a read-only token may run it; MCP readOnlyHint
    destructive: bool = False  # may delete or stop work (MCP destructiveHint)
    idempotent: bool = False  # repeating it changes nothing more (MCP idempotentHint)

    def schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def example_message(self) -> dict[str, Any]:
        return {"action": self.name, "params": self.example}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "read_only": self.read_only,
            "destructive": self.destructive,
            "idempotent": self.idempotent,
            "params_schema": self.schema(),
            "example": self.example_message(),
        }


class Registry:
    def __init__(self) -> None:
        self._commands: dict[str, Command[Any]] = {}

    def command(
        self,
        name: str,
        params: type[P],
        *,
        result: type[BaseModel] = Undocumented,
        example: dict[str, Any] | None = None,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        description_suffix: str = "",
    ) -> Callable[[Handler[P]], Handler[P]]:
        """Register the decorated handler; its docstring is the command's description."""

        def register(handler: Handler[P]) -> Handler[P]:
            if name in self._commands:
                raise ValueError(f"command {name} is defined twice")
            self._commands[name] = Command(
                name=name,
                description=_clean(handler.__doc__ or name) + description_suffix,
                params=params,
                handler=handler,
                result=result,
                example=example or {},
                read_only=read_only,
                destructive=destructive,
                idempotent=idempotent,
            )
            return handler

        return register

    def get(self, name: str) -> Command[Any] | None:
        return self._commands.get(name)

    def names(self) -> list[str]:
        return list(self._commands)

    def __iter__(self) -> Iterator[Command[Any]]:
        return iter(self._commands.values())


def _clean(doc: str) -> str:
    lines = [line.strip() for line in doc.strip().splitlines()]
    return " ".join(line for line in lines if line)


REGISTRY = Registry()
