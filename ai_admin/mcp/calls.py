"""One tool call: validate, run the command through the dispatcher, and optionally wait.

Every call goes through ``Dispatcher.run``, so a tool validates, refuses read-only tokens and
reports errors exactly as ``POST /cmd`` does. Waiting follows the task
(``ai_admin.queue.follow``): each change of its percentage becomes an MCP progress
notification (``progress`` = percent, ``total`` = 100, ``message`` = status and step, then the
numbers where known: "downloading: Downloaded 12.0 MB of 30.0 MB (2 layers) [4.1 MB/s, 4 s
left]") until the task finishes or the wait limit passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types

from ai_admin.agent import Agent
from ai_admin.commands.dispatcher import Dispatcher
from ai_admin.commands.registry import REGISTRY, Command, Registry
from ai_admin.errors import AiAdminError
from ai_admin.mcp.results import submitted_headline, task_result, tool_result
from ai_admin.mcp.tools import WAIT_KEYS, WaitOptions, submits_task
from ai_admin.queue.events import SubscriptionLagged
from ai_admin.queue.follow import follow
from ai_admin.queue.models import DockerTask, ProgressDetail
from ai_admin.validation import parse
from ai_admin.wire.envelope import failure

__all__ = ["ProgressFn", "ToolCalls"]

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
"""``(progress, total, message)``: the SDK's ``ctx.session.report_progress``."""

_PERCENT = 100.0


class ToolCalls:
    def __init__(self, agent: Agent, registry: Registry = REGISTRY) -> None:
        self.agent = agent
        self.registry = registry
        self.dispatcher = Dispatcher(agent, registry)

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        can_write: bool,
        progress: ProgressFn | None = None,
    ) -> types.CallToolResult:
        command = self.registry.get(name)
        params = dict(arguments or {})
        if command is None:  # the dispatcher's answer names the closest tools
            reply = await self.dispatcher.dispatch({"action": name, "params": params})
            return tool_result(reply.envelope)
        wait: WaitOptions | None = None
        if submits_task(command):
            try:
                wait_args = {k: params.pop(k) for k in WAIT_KEYS & params.keys()}
                # strict, like the command's own params: JSON types must match the schema.
                wait = parse(WaitOptions, wait_args, prefix="params.", strict=True)
            except AiAdminError as exc:
                return tool_result(failure(exc, name))
        reply = await self.dispatcher.run(command, params, can_write=can_write)
        if not reply.success or wait is None:
            return tool_result(reply.envelope)
        data = reply.envelope["data"]
        if not wait.wait:
            return tool_result(reply.envelope, submitted_headline(name, data))
        return await self._wait(command, data["merged_into"] or data["task_id"], wait, progress)

    async def _wait(
        self, command: Command[Any], task_id: str, wait: WaitOptions, progress: ProgressFn | None
    ) -> types.CallToolResult:
        queue = self.agent.queue
        reporter = _Reporter(progress)
        try:
            with anyio.fail_after(wait.wait_timeout_s):
                task = await _follow(self.agent, task_id, reporter)
        except TimeoutError:
            summary = await queue.get_task_summary(task_id)
            return task_result(command.name, summary, finished=False)
        summary = await queue.get_task_summary(task.id)
        return task_result(command.name, summary, finished=True)


async def _follow(agent: Agent, task_id: str, reporter: _Reporter) -> DockerTask:
    """Report the task's progress until it has finished, and return it."""
    try:
        async with contextlib.aclosing(follow(agent.queue, task_id)) as events:
            async for event in events:
                step = event.current_step + _numbers(event.progress_detail)
                await reporter(event.progress, event.status.value, step)
    except SubscriptionLagged:
        pass  # too far behind to report; wait_for still sees the end
    return await agent.queue.wait_for(task_id)


def _numbers(detail: ProgressDetail | None) -> str:
    """The rate and time left, as a message's tail (" [4.1 MB/s, 4 s left]"), where known."""
    if detail is None or detail.rate_bps is None:
        return ""
    parts = [f"{detail.rate_bps / 1_000_000:.1f} MB/s"]
    if detail.eta_s is not None:
        parts.append(f"{detail.eta_s:.0f} s left")
    return f" [{', '.join(parts)}]"


class _Reporter:
    """Sends progress only when the percentage grows, as MCP requires."""

    def __init__(self, send: ProgressFn | None) -> None:
        self._send = send
        self._sent = -1.0

    async def __call__(self, percent: float, status: str, step: str) -> None:
        if self._send is None or percent <= self._sent:
            return
        self._sent = percent
        try:
            await self._send(percent, _PERCENT, f"{status}: {step}")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send = None  # the client has gone; the task still runs to its end
