"""The one boundary where the synchronous Docker SDK meets the event loop.

docker-py blocks, so every call runs on a thread of its own (``queue.threads.in_thread``): a slow
registry never holds up another task or the loop. A stream is pumped by its thread into an
asyncio queue and all the logic (steps, progress, errors) runs on the loop. To stop an
operation, the client shuts down the socket its response is streaming from: the blocked read
returns at once and the engine, seeing the client gone, cancels the build, push or pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import docker
from docker.utils import kwargs_from_env
from loguru import logger

from ai_admin.docker.errors import DockerOperation, classify, docker_errors
from ai_admin.docker.progress import error_of
from ai_admin.errors import ExecutionError
from ai_admin.threads import in_thread

T = TypeVar("T")
Chunk = dict[str, Any]
_STOP_WAIT_S = 10.0
_END = object()
_DEFAULT_ENGINE = "unix:///var/run/docker.sock"


class OperationAborted(Exception):
    """A request was about to start on a client that has been aborted."""


class StreamingClient(docker.APIClient):  # type: ignore[misc]
    """An API client that can abort the operation it runs from another thread.

    The engine sends no response headers before an operation's first output (a pull from a
    registry that does not answer has none for as long as it stalls), so the stream alone is
    not enough: every connection the client uses is remembered, and ``abort`` shuts all their
    sockets down, whether the call waits for headers or reads the stream.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._response: Any = None
        self._aborted = threading.Event()
        self._connections: list[Any] = []
        for adapter in self.adapters.values():
            self._watch_adapter(adapter)

    def _watch_adapter(self, adapter: Any) -> None:
        for name in ("get_connection_with_tls_context", "get_connection"):
            original = getattr(adapter, name, None)
            if original is None:
                continue

            def pool_of(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                pool = _original(*args, **kwargs)
                self._watch_pool(pool)
                return pool

            setattr(adapter, name, pool_of)

    def _watch_pool(self, pool: Any) -> None:
        if getattr(pool, "_ai_admin_watched", False):
            return
        get_conn = pool._get_conn

        def checked_out(*args: Any, **kwargs: Any) -> Any:
            if self._aborted.is_set():
                raise OperationAborted("the Docker operation was stopped")
            conn = get_conn(*args, **kwargs)
            self._connections.append(conn)
            return conn

        pool._get_conn = checked_out
        pool._ai_admin_watched = True

    def _stream_helper(self, response: Any, decode: bool = False) -> Iterator[Any]:
        # Every streaming call of docker-py (build, push, pull) reads through here.
        self._response = response
        if self._aborted.is_set():
            response.close()
            return
        yield from super()._stream_helper(response, decode)

    def abort(self) -> None:
        self._aborted.set()
        for conn in list(self._connections):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()


def client_settings(base_url: str | None) -> dict[str, Any]:
    """How to reach the engine: DOCKER_HOST and its TLS variables, ``base_url`` first."""
    kwargs: dict[str, Any] = kwargs_from_env()
    if base_url:
        kwargs["base_url"] = base_url
    return kwargs


def connect(base_url: str | None) -> StreamingClient:
    """A client for one operation (blocking: asks the engine for its API version).

    No read timeout: a build step may be silent for minutes; the task's timeout bounds it.
    """
    return StreamingClient(**client_settings(base_url), version="auto", timeout=None)


def engine_address(base_url: str | None) -> str:
    """Where a client made with ``connect(base_url)`` looks for the engine."""
    return str(client_settings(base_url).get("base_url") or _DEFAULT_ENGINE)


class DockerSession:
    """One operation's client and its context for error classification."""

    def __init__(
        self,
        operation: DockerOperation,
        base_url: str | None,
        *,
        image: str | None = None,
        registry: str | None = None,
        path: str | None = None,
    ) -> None:
        self.operation = operation
        self.image = image
        self.registry = registry
        self.path = path  # a build's context directory, named in its advice
        self._base_url = base_url
        self._client: StreamingClient | None = None
        self._threads: list[asyncio.Future[Any]] = []

    def _context(self) -> dict[str, Any]:
        """What the classifier needs to name the image, registry, file and engine involved."""
        return {
            "image": self.image,
            "registry": self.registry,
            "path": self.path,
            "engine": engine_address(self._base_url),
        }

    def chunk_error(self, chunk: Chunk) -> ExecutionError:
        return classify(chunk, self.operation, **self._context()).to_error()

    async def call(self, fn: Callable[[StreamingClient], T]) -> T:
        """Run one blocking SDK call; Docker's errors come back classified."""
        client = await self._connected()
        return await self._await(in_thread(lambda: fn(client), f"docker-{self.operation}"))

    async def _connected(self) -> StreamingClient:
        if self._client is None:
            connecting = in_thread(lambda: connect(self._base_url), "docker-connect")
            # Adopted even when this task is cancelled meanwhile, so close() still closes it.
            connecting.add_done_callback(self._adopt)
            self._client = await self._await(connecting)
        return self._client

    def _adopt(self, connecting: asyncio.Future[StreamingClient]) -> None:
        if self._client is None and not connecting.cancelled() and not connecting.exception():
            self._client = connecting.result()

    async def _await(self, fut: asyncio.Future[T]) -> T:
        self._threads.append(fut)
        with docker_errors(self.operation, **self._context()):
            return await asyncio.shield(fut)

    async def stream(
        self,
        start: Callable[[StreamingClient], Iterable[Chunk]],
        on_chunk: Callable[[Chunk], Awaitable[None]],
    ) -> None:
        """Read a JSON stream to its end, handing each chunk to ``on_chunk`` on the loop.

        A chunk carrying an error fails the operation (the engine reports refused pushes and
        failed build steps in the stream, not as an HTTP error); ``on_chunk`` sees it first
        and may raise a more specific error of its own.
        """
        client = await self._connected()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def pump() -> None:
            try:
                for chunk in start(client):
                    loop.call_soon_threadsafe(inbox.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(inbox.put_nowait, _END)

        reader = in_thread(pump, f"docker-{self.operation}-stream")
        self._threads.append(reader)
        try:
            while (chunk := await inbox.get()) is not _END:
                if isinstance(chunk, dict):
                    await on_chunk(chunk)
                    if error_of(chunk) is not None:
                        raise self.chunk_error(chunk)
            await self._await(reader)  # raises what the reader raised, classified
        finally:
            if not reader.done():
                client.abort()

    async def close(self) -> None:
        """Stop whatever still runs and wait (bounded) for its threads to end."""
        if self._client is not None:
            self._client.abort()
        pending = [t for t in self._threads if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=_STOP_WAIT_S)
            if still:
                logger.warning(
                    "{} Docker call(s) did not stop within {} s", len(still), _STOP_WAIT_S
                )
        for t in self._threads:
            if t.done() and not t.cancelled():
                t.exception()  # retrieved: already reported through the task
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()

    async def __aenter__(self) -> DockerSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(self.close())
