"""The harness itself, against the real engine: images build, registries move real bytes.

If these fail, every other real-engine test would fail for reasons that are not its own; they
are the first place to look.
"""

from __future__ import annotations

import uuid

import docker
import pytest
import requests
from docker.errors import APIError, ImageNotFound
from dockerenv import (
    AuthRegistry,
    ImageCleanup,
    PushError,
    build_random_data_image,
    push_image,
)

pytestmark = pytest.mark.docker

_MIB = 1024 * 1024
# Engine 20.10 says "no basic auth credentials" when none are sent and "unauthorized:
# authentication required" for wrong ones; newer engines word the first like the second.
_AUTH_REFUSED = r"(?i)unauthorized|authentication|no basic auth credentials"


def _unique_tag() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _repo_digests(client: docker.DockerClient, ref: str) -> list[str]:
    return list(client.images.get(ref).attrs.get("RepoDigests") or [])


def test_push_then_pull_round_trip_through_open_registry(
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/harness/app"
    tag = _unique_tag()
    ref = image_cleanup.add(f"{repository}:{tag}")

    built = build_random_data_image(docker_client, ref, size_mb=5, base=busybox_image)
    assert built.attrs["Size"] >= 5 * _MIB

    pushed = push_image(docker_client, repository, tag)
    assert pushed.digest.startswith("sha256:")
    assert any(c.get("status") == "Pushed" for c in pushed.chunks), "no layer was uploaded"

    with requests.Session() as http:
        http.trust_env = False
        tags = http.get(f"http://{open_registry}/v2/harness/app/tags/list", timeout=10).json()
    assert tag in tags["tags"]

    docker_client.images.remove(ref, force=True)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(ref)

    pulled = docker_client.images.pull(repository, tag=tag)
    assert pulled.id == built.id  # same config blob: the very image that was pushed
    assert f"{repository}@{pushed.digest}" in _repo_digests(docker_client, ref)

    output = docker_client.containers.run(ref, ["sh", "-c", "wc -c < /random.bin"], remove=True)
    assert int(output.decode().strip()) == 5 * _MIB


def test_auth_registry_refuses_anonymous_and_accepts_credentials(
    docker_client: docker.DockerClient,
    auth_registry: AuthRegistry,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{auth_registry.address}/harness/private"
    tag = _unique_tag()
    ref = image_cleanup.add(f"{repository}:{tag}")
    build_random_data_image(docker_client, ref, size_mb=1, base=busybox_image)

    with pytest.raises(PushError, match=_AUTH_REFUSED):
        push_image(docker_client, repository, tag)
    wrong = {"username": auth_registry.username, "password": auth_registry.password + "-wrong"}
    with pytest.raises(PushError, match=_AUTH_REFUSED):
        push_image(docker_client, repository, tag, auth_config=wrong)

    pushed = push_image(docker_client, repository, tag, auth_config=auth_registry.auth_config)
    assert pushed.digest.startswith("sha256:")

    docker_client.images.remove(ref, force=True)
    with pytest.raises(APIError, match=_AUTH_REFUSED):
        docker_client.images.pull(repository, tag=tag)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(ref)

    docker_client.images.pull(repository, tag=tag, auth_config=auth_registry.auth_config)
    assert f"{repository}@{pushed.digest}" in _repo_digests(docker_client, ref)
