"""A stand-in Docker engine on a Unix socket that takes requests and then misbehaves.

For the SDK's failures that a healthy engine never causes: a socket that accepts a request and
never answers (the client's read timeout fires), an engine whose stream stalls after its first
chunk, and one whose stream is not JSON. ``/version`` and ``/_ping`` are answered as an engine
would (API 1.41) except in ``silent`` mode, so ``version="auto"`` clients get as far as the
operation.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

Mode = Literal["silent", "stall-stream", "broken-json"]

_VERSION = b'{"ApiVersion":"1.41","Version":"20.10.24","MinAPIVersion":"1.12"}'
_FIRST_CHUNK = b'{"status":"Pulling from team/app","id":"1"}\r\n'
# A stream that breaks off in the middle of its second object.
BROKEN_STREAM = _FIRST_CHUNK + b'{"status":"Downloading","progressDetail":{"current":1\r\n'


def _request_line(conn: socket.socket) -> str | None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def _chunked(conn: socket.socket, body: bytes, *, end: bool) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    conn.sendall(head + b"%x\r\n%s\r\n" % (len(body), body) + (b"0\r\n\r\n" if end else b""))


def _serve(conn: socket.socket, mode: Mode, stop: threading.Event) -> None:
    with conn:
        while (line := _request_line(conn)) is not None:
            if mode == "silent":
                break
            target = line.split(" ")[1] if " " in line else ""
            if target.endswith(("/version", "/_ping")):
                length = b"Content-Length: %d\r\n" % len(_VERSION)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + length)
                conn.sendall(b"\r\n" + _VERSION)
                continue
            if mode == "stall-stream":
                _chunked(conn, _FIRST_CHUNK, end=False)
            else:
                _chunked(conn, BROKEN_STREAM, end=True)
            break
        stop.wait()  # keep the connection open, answering nothing more


@contextlib.contextmanager
def standin_engine(socket_path: Path, mode: Mode) -> Iterator[str]:
    """``unix://SOCKET`` of a stand-in engine in ``mode``; closed (with its connections) on exit."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(16)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(conn, mode, stop), daemon=True).start()

    acceptor = threading.Thread(target=accept, name=f"engine-{mode}", daemon=True)
    acceptor.start()
    try:
        yield f"unix://{socket_path}"
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(timeout=5)
