"""Commands: each defined once (params model, handler, description, example) in the registry."""

from ai_admin.commands import (
    batch_commands,
    docker_commands,
    named_queue_commands,
    queue_commands,
    schedule_commands,
)
from ai_admin.commands.dispatcher import Dispatcher, Reply
from ai_admin.commands.registry import REGISTRY, Command

__all__ = [
    "REGISTRY",
    "Command",
    "Dispatcher",
    "Reply",
    "batch_commands",
    "docker_commands",
    "named_queue_commands",
    "queue_commands",
    "schedule_commands",
]
