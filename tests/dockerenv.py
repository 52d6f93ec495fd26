"""Images and helpers for the real-engine tests, built from files on this machine only.

The test machines reach no internet registry, so nothing can be pulled: every image the tests
need is built ``FROM scratch`` out of host binaries that ``scripts/ensure-docker`` installs
(``docker-registry``, ``htpasswd``, a static ``busybox``). The build contexts are assembled in a
temporary directory at test time, so no binary is ever committed.

Each image carries a label with a hash of everything that went into it; when an image with the
same tag and the same hash already exists it is reused, which keeps a warm run to a fraction of
a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound
from docker.models.images import Image

REGISTRY_IMAGE = "ai-admin-test-registry:local"
BUSYBOX_IMAGE = "ai-admin-test-base:busybox"

# The registry's port inside its container; the compose file publishes it on 127.0.0.1.
REGISTRY_PORT = 5000
OPEN_CONFIG = "/etc/docker/registry/open.yml"
AUTH_CONFIG = "/etc/docker/registry/auth.yml"
HTPASSWD_PATH = "/etc/docker/registry/htpasswd"

# A fixed user for the throw-away htpasswd registry (it only ever listens on 127.0.0.1 during a
# test run). Fixed rather than generated so the image's input hash is stable across runs.
TEST_USERNAME = "tester"
TEST_PASSWORD = "ai-admin-test-5f1c9e2b"

INPUTS_LABEL = "org.ai-admin.test.inputs-sha256"
# Bump when the recipe below changes in a way the hashed inputs do not show.
_RECIPE_VERSION = "1"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MIB = 1024 * 1024


class HarnessError(RuntimeError):
    """The machine lacks something the harness needs; the message says what and how to fix it."""


class PushError(RuntimeError):
    """The engine reported an error while pushing (the message is the engine's own text)."""


# --- host files -----------------------------------------------------------------------------


def find_tool(name: str, package: str, candidates: Iterable[str] = ()) -> Path:
    """Locate a host binary the images are made of, or say which package provides it.

    A missing tool must fail the run loudly (the real-engine tests are never skipped), with the
    one command that fixes it.
    """
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which(name)
    if found:
        return Path(found)
    raise HarnessError(
        f"`{name}` not found (apt package {package}); run scripts/ensure-docker, which installs "
        "it as root on Debian/Ubuntu"
    )


def shared_libraries(binary: Path) -> list[Path]:
    """The loader and libraries ``binary`` needs, as ``ldd`` reports them.

    Asking ``ldd`` rather than hard-coding ``/lib/x86_64-linux-gnu/libc.so.6`` keeps the registry
    image right on another architecture or libc layout. The paths are the ones the binary
    looks for (its ELF interpreter included), so they go to the same place in the image.
    """
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []
        raise HarnessError(f"ldd {binary} failed: {result.stderr.strip() or result.stdout.strip()}")
    libraries: list[Path] = []
    for line in result.stdout.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
        # "/lib64/ld-linux-x86-64.so.2 (0x...)"
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)", line)
        if match:
            libraries.append(Path(match.group(1)))
        elif "not found" in line:
            raise HarnessError(f"{binary} needs a library that is missing: {line.strip()}")
    return libraries


def is_static(binary: Path) -> bool:
    """Whether ``binary`` runs without a loader (it must, alone in a scratch image)."""
    return not shared_libraries(binary)


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry, made by ``htpasswd -B`` (the registry accepts bcrypt only)."""
    htpasswd = find_tool("htpasswd", "apache2-utils")
    result = subprocess.run(
        [str(htpasswd), "-nbB", username, password], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise HarnessError(f"htpasswd failed: {result.stderr.strip()}")
    return result.stdout.strip() + "\n"


def registry_config(*, auth: bool) -> str:
    """A registry config serving HTTP on :5000, with htpasswd auth or without any.

    Storage is the container's own filesystem: the registry lives exactly as long as its
    container, so every test run starts from an empty one.
    """
    config = f"""\
version: 0.1
log:
  level: info
  fields:
    service: registry-{"auth" if auth else "open"}
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :{REGISTRY_PORT}
  secret: ai-admin-test-only
  headers:
    X-Content-Type-Options: [nosniff]
"""
    if auth:
        config += f"""\
auth:
  htpasswd:
    realm: ai-admin-test
    path: {HTPASSWD_PATH}
"""
    return config


# --- cached images --------------------------------------------------------------------------


def _hash_inputs(parts: Iterable[str | bytes | Path]) -> str:
    """sha256 over text and the contents of files: the identity of an image's inputs."""
    digest = hashlib.sha256(_RECIPE_VERSION.encode())
    for part in parts:
        if isinstance(part, Path):
            digest.update(b"\0file\0" + str(part).encode() + b"\0")
            with part.open("rb") as f:
                for block in iter(lambda: f.read(_MIB), b""):
                    digest.update(block)
        else:
            digest.update(b"\0text\0" + (part.encode() if isinstance(part, str) else part))
    return digest.hexdigest()


def _existing(client: docker.DockerClient, tag: str) -> Image | None:
    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None


def build_image(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    *,
    labels: Mapping[str, str] | None = None,
    nocache: bool = False,
) -> Image:
    """Build ``context`` (with its Dockerfile) through the SDK, leaving no container behind.

    ``rm``/``forcerm`` matter: the SDK's default keeps every intermediate container, which
    would pile up in ``docker ps -a`` run after run.
    """
    image, _logs = client.images.build(
        path=str(context),
        tag=tag,
        labels=dict(labels or {}),
        rm=True,
        forcerm=True,
        nocache=nocache,
        use_config_proxy=False,
    )
    return image


def ensure_image(
    client: docker.DockerClient,
    tag: str,
    inputs: Iterable[str | bytes | Path],
    assemble: Callable[[Path], None],
    workdir: Path,
) -> Image:
    """Build ``tag`` unless an image with the same input hash already carries it.

    ``assemble`` writes the build context (Dockerfile included) into a fresh directory under
    ``workdir``; it only runs when a build is needed. A stale image the tag moved away from is
    removed so repeated changes do not leave dangling images behind.
    """
    key = _hash_inputs(inputs)
    old = _existing(client, tag)
    if old is not None and (old.labels or {}).get(INPUTS_LABEL) == key:
        return old
    context = workdir / f"context-{uuid.uuid4().hex[:8]}"
    context.mkdir(parents=True)
    assemble(context)
    image = build_image(client, context, tag, labels={INPUTS_LABEL: key})
    if old is not None and old.id != image.id:
        # Still used by a container or another tag: leave it to its owner.
        with contextlib.suppress(APIError):
            client.images.remove(old.id, noprune=False)
    return image


def _copy_into(root: Path, source: Path, mode: int | None = None) -> None:
    """Copy ``source`` (following symlinks) to the same absolute path under ``root``."""
    target = root / source.relative_to(source.anchor)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode if mode is not None else source.stat().st_mode & 0o777)


def ensure_registry_image(client: docker.DockerClient, workdir: Path) -> str:
    """The reference registry (distribution 2.8) as ``ai-admin-test-registry:local``.

    Made of the host's ``/usr/bin/docker-registry`` and the libraries ``ldd`` names, plus two
    configs (open and htpasswd) and the password file for ``TEST_USERNAME``. The compose file
    chooses the config with ``command: [serve, CONFIG]``.
    """
    binary = find_tool("docker-registry", "docker-registry", ["/usr/bin/docker-registry"])
    libraries = shared_libraries(binary)
    open_config = registry_config(auth=False)
    auth_config = registry_config(auth=True)
    dockerfile = f"""\
FROM scratch
COPY rootfs/ /
ENV PATH={_DEFAULT_PATH}
EXPOSE {REGISTRY_PORT}
ENTRYPOINT ["/usr/bin/docker-registry"]
CMD ["serve", "{OPEN_CONFIG}"]
"""

    def assemble(context: Path) -> None:
        rootfs = context / "rootfs"
        target = rootfs / "usr/bin/docker-registry"
        target.parent.mkdir(parents=True)
        shutil.copyfile(binary, target)
        target.chmod(0o755)
        for library in libraries:
            _copy_into(rootfs, library, 0o755)
        configs = rootfs / OPEN_CONFIG.lstrip("/")
        configs.parent.mkdir(parents=True)
        configs.write_text(open_config)
        (rootfs / AUTH_CONFIG.lstrip("/")).write_text(auth_config)
        # bcrypt salts differ on every call, hence the password (not this file) in the hash.
        (rootfs / HTPASSWD_PATH.lstrip("/")).write_text(htpasswd_line(TEST_USERNAME, TEST_PASSWORD))
        (rootfs / "var/lib/registry").mkdir(parents=True)
        (context / "Dockerfile").write_text(dockerfile)

    inputs: list[str | bytes | Path] = [dockerfile, open_config, auth_config, binary, *libraries]
    inputs += [TEST_USERNAME, TEST_PASSWORD]
    ensure_image(client, REGISTRY_IMAGE, inputs, assemble, workdir)
    return REGISTRY_IMAGE


def ensure_busybox_image(client: docker.DockerClient, workdir: Path) -> str:
    """A tiny shell base, ``ai-admin-test-base:busybox``, for test Dockerfiles.

    ``FROM ai-admin-test-base:busybox`` then ``RUN sh -c '...'`` works like a normal base image,
    with no registry: the static busybox installs its applets as symlinks in ``/bin``.
    """
    busybox = find_tool("busybox", "busybox-static", ["/bin/busybox"])
    if not is_static(busybox):
        raise HarnessError(
            f"{busybox} is dynamically linked, it cannot run alone in a scratch image "
            "(apt package busybox-static); run scripts/ensure-docker"
        )
    dockerfile = f"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /root && chmod 1777 /tmp"]
ENV PATH={_DEFAULT_PATH}
CMD ["sh"]
"""

    def assemble(context: Path) -> None:
        shutil.copyfile(busybox, context / "busybox")
        (context / "busybox").chmod(0o755)
        (context / "Dockerfile").write_text(dockerfile)

    ensure_image(client, BUSYBOX_IMAGE, [dockerfile, busybox], assemble, workdir)
    return BUSYBOX_IMAGE


# --- per-test images and registry traffic ---------------------------------------------------


def build_random_data_image(
    client: docker.DockerClient,
    tag: str,
    size_mb: int,
    *,
    base: str = BUSYBOX_IMAGE,
    labels: Mapping[str, str] | None = None,
) -> Image:
    """An image whose top layer is ``size_mb`` MiB of fresh random data at ``/random.bin``.

    Push and pull only move real bytes (and report real progress) when the layer is new to the
    registry and does not compress away; ``nocache`` makes each call write different bytes, so
    no two tests (or runs) share a layer.
    """
    dockerfile = (
        f"FROM {base}\n"
        f"RUN head -c {size_mb * _MIB} /dev/urandom > /random.bin"
        f" && echo {uuid.uuid4().hex} > /nonce\n"
    )
    image, _logs = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        labels=dict(labels or {}),
        rm=True,
        forcerm=True,
        nocache=True,
        use_config_proxy=False,
    )
    return image


@dataclass(frozen=True)
class PushResult:
    """What the engine's push stream said: the manifest digest and every chunk, in order."""

    digest: str
    chunks: list[dict[str, Any]]


def push_image(
    client: docker.DockerClient,
    repository: str,
    tag: str,
    auth_config: Mapping[str, str] | None = None,
) -> PushResult:
    """Push ``repository:tag``, reading the whole stream; raise ``PushError`` on any error.

    The engine reports push failures inside the stream with HTTP 200, so a push that is not
    read to the end (or whose ``error`` chunks are ignored) looks like a success.
    """
    chunks: list[dict[str, Any]] = []
    digest: str | None = None
    for chunk in client.api.push(
        repository,
        tag=tag,
        stream=True,
        decode=True,
        auth_config=dict(auth_config) if auth_config is not None else None,
    ):
        chunks.append(chunk)
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise PushError(str(chunk.get("error") or detail.get("message") or chunk))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
    if digest is None:
        raise PushError(f"push of {repository}:{tag} ended without a digest: {chunks[-3:]}")
    return PushResult(digest=digest, chunks=chunks)


# --- fixture values -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthRegistry:
    """The htpasswd registry: where it listens and the one user it accepts."""

    address: str
    username: str
    password: str

    @property
    def auth_config(self) -> dict[str, str]:
        """Credentials in the form the Docker SDK takes (``auth_config=``)."""
        return {"username": self.username, "password": self.password}


class ImageCleanup:
    """Image references a test created; all removed (forced) when the test ends."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._refs: list[str] = []

    def add(self, ref: str) -> str:
        """Remember ``ref`` (a tag, digest reference or image id) and return it."""
        if ref not in self._refs:
            self._refs.append(ref)
        return ref

    def remove_all(self) -> None:
        """Remove newest first; a reference already gone (the test removed it) is fine."""
        while self._refs:
            ref = self._refs.pop()
            with contextlib.suppress(ImageNotFound):
                self._client.images.remove(ref, force=True)


def only_in_registry(
    client: docker.DockerClient,
    cleanup: ImageCleanup,
    repository: str,
    size_mb: int,
    *,
    base: str = BUSYBOX_IMAGE,
) -> tuple[str, str, PushResult]:
    """A fresh image of ``size_mb`` MiB pushed to ``repository`` under a new tag and removed
    locally, so that a pull really moves it: (tag, reference, what the push said)."""
    tag = f"t-{uuid.uuid4().hex[:12]}"
    ref = cleanup.add(f"{repository}:{tag}")
    build_random_data_image(client, ref, size_mb=size_mb, base=base)
    pushed = push_image(client, repository, tag)
    client.images.remove(ref, force=True)
    return tag, ref, pushed
