"""A stand-in registry that answers the engine as a misbehaving or strict registry does.

The real-engine diagnosis tests need answers the reference registry never gives: a token
issuer's "expired" refusal (Amazon ECR's words), an immutable tag (ECR's TAG_INVALID, Harbor's
PRECONDITION), a web server or proxy route where the registry should be ("404 page not found"),
and a mirror that serves a layer whose bytes do not match its digest. Each mode answers
``GET /v2/`` as a registry (so the engine talks to it) and then the way that registry would;
the engine (on 127.0.0.0/8, an insecure registry to it) reads the answers and words the
failure in its own text, which is what the agent classifies.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

Mode = Literal["expired-token", "ecr-immutable", "harbor-immutable", "not-a-registry", "corrupt"]

EXPIRED_TOKEN = "Your authorization token has expired. Reauthenticate and try again."
_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _one_file_layer() -> tuple[bytes, bytes]:
    """(the uncompressed tar, its gzip): one small file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return raw, gzip.compress(raw, mtime=0)


class _Image:
    """A one-layer image (config, layer, manifest) and a copy of the layer with a flipped byte."""

    def __init__(self) -> None:
        raw, self.layer = _one_file_layer()
        self.config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [_sha256(raw)]},
            }
        ).encode()
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": _MANIFEST_TYPE,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(self.config),
                    "digest": _sha256(self.config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.layer),
                        "digest": _sha256(self.layer),
                    }
                ],
            }
        ).encode()
        self.corrupt_layer = self.layer[:1] + bytes([self.layer[1] ^ 0xFF]) + self.layer[2:]
        self.layer_digest = _sha256(self.layer)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _errors(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"errors": [{"code": code, "message": message}]}).encode())

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.rstrip("/") == "/v2":
            self._send(200, b"{}")
            return
        mode = self.server.mode
        if mode == "expired-token":
            self._errors(403, "DENIED", EXPIRED_TOKEN)
        elif mode == "not-a-registry":  # what Go's http.NotFound writes
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        elif mode == "corrupt":
            self._corrupt()
        else:
            self._immutable()

    def _immutable(self) -> None:
        """Every blob already there, the tag too: a manifest PUT is refused as immutable."""
        name, _, rest = self.path.removeprefix("/v2/").partition("/blobs/")
        if rest and self.command == "HEAD":
            digest = rest.rpartition("/")[2]
            headers = {"Content-Length": "1024", "Docker-Content-Digest": digest}
            self._send(200, content_type="application/octet-stream", headers=headers)
            return
        name, _, tag = self.path.removeprefix("/v2/").partition("/manifests/")
        if tag and self.command == "PUT":
            if self.server.mode == "ecr-immutable":  # Amazon ECR
                message = (
                    f"The image tag '{tag}' already exists in the '{name}' repository and "
                    "cannot be overwritten because the repository is immutable."
                )
                self._errors(400, "TAG_INVALID", message)
            else:  # Harbor 2.x: its ErrImmutable, answered with its PRECONDITION code
                message = (
                    f"Failed to process request due to '{name}:{tag}' configured as immutable."
                )
                self._errors(412, "PRECONDITION", message)
            return
        self._errors(404, "MANIFEST_UNKNOWN", "manifest unknown")

    def _corrupt(self) -> None:
        """A one-layer image whose layer arrives with one byte changed."""
        image = self.server.image
        if "/manifests/" in self.path:
            headers = {"Docker-Content-Digest": _sha256(image.manifest)}
            self._send(200, image.manifest, _MANIFEST_TYPE, headers)
        elif self.path.endswith(_sha256(image.config)):
            self._send(200, image.config, "application/octet-stream")
        elif self.path.endswith(image.layer_digest):
            self._send(200, image.corrupt_layer, "application/octet-stream")
        else:
            self._errors(404, "BLOB_UNKNOWN", "blob unknown to registry")


_IMAGE = _Image()
# The layer a ``corrupt`` stand-in serves with a changed byte (the same on every run).
CORRUPT_LAYER_DIGEST = _IMAGE.layer_digest


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: Mode) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.image = _IMAGE


@contextmanager
def standin_registry(mode: Mode) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a stand-in registry answering in ``mode``; stopped on exit."""
    server = _Server(mode)
    thread = threading.Thread(target=server.serve_forever, name=f"registry-{mode}", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
