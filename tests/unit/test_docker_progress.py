"""Progress accounting on chunk sequences recorded from the real engine (Docker 20.10, API 1.41).

Each sequence below is what docker-py decoded from the engine's stream for one real operation
against a local ``docker-registry`` (distribution 2.8), pasted as it came, except the
``progress`` bar strings, which nothing reads. ``PULL_INTERLEAVED`` went through a proxy slowed
to 2 MB/s so that, as with a real remote registry, the first (small) layer is extracted while
the others still download.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from ai_admin.docker.progress import (
    PUSHED,
    BuildSteps,
    Chunk,
    LayerBytes,
    LayerCount,
    error_of,
    pull_digest,
    push_digest,
)
from ai_admin.docker.pull import _PullProgress
from ai_admin.docker.push import PushProgress
from ai_admin.queue.models import TaskStatus

DIGEST = "sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f"

BUILD_OK: list[Chunk] = [
    {"stream": "Step 1/4 : FROM ai-admin-test-base:busybox"},
    {"stream": "\n"},
    {"stream": " ---> c6d5375b2d89\n"},
    {"stream": "Step 2/4 : RUN head -c 3000000 /dev/urandom > /blob"},
    {"stream": "\n"},
    {"stream": " ---> Running in 054e13247f25\n"},
    {"stream": "Removing intermediate container 054e13247f25\n"},
    {"stream": " ---> 3d1a6f05436b\n"},
    {"stream": "Step 3/4 : RUN echo hello && echo world"},
    {"stream": "\n"},
    {"stream": " ---> Running in fbf5af0d9aa8\n"},
    {"stream": "hello\nworld\n"},
    {"stream": "Removing intermediate container fbf5af0d9aa8\n"},
    {"stream": " ---> fc25dcc5d6c2\n"},
    {"stream": "Step 4/4 : LABEL a=b"},
    {"stream": "\n"},
    {"stream": " ---> Running in 74072969c630\n"},
    {"stream": "Removing intermediate container 74072969c630\n"},
    {"stream": " ---> 2c639d678619\n"},
    {"aux": {"ID": "sha256:2c639d6786197cfec37bdb044b1e8bf7cc6cfd7a6ee87d88a30c1255ddc3d345"}},
    {"stream": "Successfully built 2c639d678619\n"},
    {"stream": "Successfully tagged 127.0.0.1:5333/rec/app:1\n"},
]

BUILD_FAILED: list[Chunk] = [
    {"stream": "Step 1/2 : FROM ai-admin-test-base:busybox"},
    {"stream": "\n"},
    {"stream": " ---> c6d5375b2d89\n"},
    {"stream": "Step 2/2 : RUN echo line1 && echo line2 && exit 3"},
    {"stream": "\n"},
    {"stream": " ---> Running in defee19ea062\n"},
    {"stream": "line1\nline2\n"},
    {"stream": "Removing intermediate container defee19ea062\n"},
    {
        "errorDetail": {
            "code": 3,
            "message": "The command '/bin/sh -c echo line1 && echo line2 && exit 3' returned a "
            "non-zero code: 3",
        },
        "error": "The command '/bin/sh -c echo line1 && echo line2 && exit 3' returned a "
        "non-zero code: 3",
    },
]

PUSH: list[Chunk] = [
    {"status": "The push refers to repository [127.0.0.1:5333/rec/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "13e229451f14"},
    {"status": "Preparing", "progressDetail": {}, "id": "f3ce9680ed3a"},
    {"status": "Preparing", "progressDetail": {}, "id": "5168409e7549"},
    {"status": "Preparing", "progressDetail": {}, "id": "d4403acd3324"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 33280, "total": 3000000},
        "id": "13e229451f14",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 33792, "total": 1982256},
        "id": "d4403acd3324",
    },
    {"status": "Pushing", "progressDetail": {"current": 2048}, "id": "f3ce9680ed3a"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 3216}, "id": "5168409e7549"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 656384, "total": 1982256},
        "id": "d4403acd3324",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 1769984, "total": 3000000},
        "id": "13e229451f14",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 68608, "total": 3216},
        "id": "5168409e7549",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 2425344, "total": 3000000},
        "id": "13e229451f14",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 1344512, "total": 1982256},
        "id": "d4403acd3324",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 80384, "total": 3216},
        "id": "5168409e7549",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 1984512, "total": 1982256},
        "id": "d4403acd3324",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 138752, "total": 3216},
        "id": "5168409e7549",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 2884096, "total": 3000000},
        "id": "13e229451f14",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "f3ce9680ed3a"},
    {"status": "Pushed", "progressDetail": {}, "id": "5168409e7549"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 3001856, "total": 3000000},
        "id": "13e229451f14",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "d4403acd3324"},
    {"status": "Pushed", "progressDetail": {}, "id": "13e229451f14"},
    {
        "status": "1: digest: "
        "sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f size: 1154"
    },
    {
        "progressDetail": {},
        "aux": {
            "Tag": "1",
            "Digest": "sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f",
            "Size": 1154,
        },
    },
]

PUSH_LAYERS_EXIST: list[Chunk] = [
    {"status": "The push refers to repository [127.0.0.1:5333/rec/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "13e229451f14"},
    {"status": "Preparing", "progressDetail": {}, "id": "f3ce9680ed3a"},
    {"status": "Preparing", "progressDetail": {}, "id": "5168409e7549"},
    {"status": "Preparing", "progressDetail": {}, "id": "d4403acd3324"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "d4403acd3324"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "13e229451f14"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "f3ce9680ed3a"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "5168409e7549"},
    {
        "status": "1: digest: "
        "sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f size: 1154"
    },
    {
        "progressDetail": {},
        "aux": {
            "Tag": "1",
            "Digest": "sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f",
            "Size": 1154,
        },
    },
]

PULL: list[Chunk] = [
    {"status": "Pulling from rec/app", "id": "1"},
    {"status": "Already exists", "progressDetail": {}, "id": "8b5f3b564c31"},
    {"status": "Already exists", "progressDetail": {}, "id": "0f207832e4b7"},
    {"status": "Already exists", "progressDetail": {}, "id": "76a9352d7146"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bdc96a68afaf"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 36445, "total": 3001126},
        "id": "bdc96a68afaf",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "bdc96a68afaf"},
    {"status": "Download complete", "progressDetail": {}, "id": "bdc96a68afaf"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 32768, "total": 3001126},
        "id": "bdc96a68afaf",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 3001126, "total": 3001126},
        "id": "bdc96a68afaf",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "bdc96a68afaf"},
    {"status": "Digest: sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f"},
    {"status": "Status: Downloaded newer image for 127.0.0.1:5333/rec/app:1"},
]

PULL_UP_TO_DATE: list[Chunk] = [
    {"status": "Pulling from rec/app", "id": "1"},
    {"status": "Digest: sha256:e57e44162b35d0aa23a83e3f6f8e0f0c578a5e0b569cca80e8d0b44764cab66f"},
    {"status": "Status: Image is up to date for 127.0.0.1:5333/rec/app:1"},
]

PULL_INTERLEAVED: list[Chunk] = [
    {"status": "Pulling from rec/multi4", "id": "1"},
    {"status": "Already exists", "progressDetail": {}, "id": "8b5f3b564c31"},
    {"status": "Already exists", "progressDetail": {}, "id": "0f207832e4b7"},
    {"status": "Already exists", "progressDetail": {}, "id": "76a9352d7146"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "0c1fdf568c1b"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "0c2542ffa2d2"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "0662da563de8"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 3678, "total": 300285},
        "id": "0c1fdf568c1b",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 36445, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 20061, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 212574, "total": 300285},
        "id": "0c1fdf568c1b",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 233053, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 216669, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 300285, "total": 300285},
        "id": "0c1fdf568c1b",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "0c1fdf568c1b"},
    {"status": "Download complete", "progressDetail": {}, "id": "0c1fdf568c1b"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 32768, "total": 300285},
        "id": "0c1fdf568c1b",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 300285, "total": 300285},
        "id": "0c1fdf568c1b",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 300285, "total": 300285},
        "id": "0c1fdf568c1b",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "0c1fdf568c1b"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 429661, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 413277, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 626269, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 609885, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 773725, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 822877, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 970333, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1019485, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1183325, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1166941, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1347165, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1330781, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1543773, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1527389, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1707613, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1691229, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1871453, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 1855069, "total": 2000811},
        "id": "0662da563de8",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "0662da563de8"},
    {"status": "Download complete", "progressDetail": {}, "id": "0662da563de8"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 2035293, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 2231901, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 2395741, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "0c2542ffa2d2"},
    {"status": "Download complete", "progressDetail": {}, "id": "0c2542ffa2d2"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 32768, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 2500945, "total": 2500945},
        "id": "0c2542ffa2d2",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "0c2542ffa2d2"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 32768, "total": 2000811},
        "id": "0662da563de8",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 2000811, "total": 2000811},
        "id": "0662da563de8",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "0662da563de8"},
    {"status": "Digest: sha256:4d3bb880983378efd2169a1e91cd601fd46a796c5357159b9f0600f0b9e4adef"},
    {"status": "Status: Downloaded newer image for 127.0.0.1:5334/rec/multi4:1"},
]

# A failing RUN whose command also writes to stderr: the classic builder colours it.
BUILD_FAILED_STDERR: list[Chunk] = [
    {"stream": "Step 1/2 : FROM ai-admin-test-base:busybox"},
    {"stream": "\n"},
    {"stream": " ---> c6d5375b2d89\n"},
    {"stream": "Step 2/2 : RUN echo first-clue && echo second-clue >&2 && exit 3"},
    {"stream": "\n"},
    {"stream": " ---> Running in 5c00e73ad434\n"},
    {"stream": "\u001b[91msecond-clue\n\u001b[0m"},
    {"stream": "first-clue\n"},
    {"stream": "Removing intermediate container 5c00e73ad434\n"},
    {
        "errorDetail": {
            "code": 3,
            "message": "The command '/bin/sh -c echo first-clue && echo second-clue >&2 && "
            "exit 3' returned a non-zero code: 3",
        },
        "error": "The command '/bin/sh -c echo first-clue && echo second-clue >&2 && exit 3' "
        "returned a non-zero code: 3",
    },
]


class FakeContext:
    """Records what an executor reports, like the queue's context (progress only increases)."""

    def __init__(self) -> None:
        self.steps: list[TaskStatus] = []
        self.reported: list[float] = []
        self.shown: list[float] = []
        self.descriptions: list[str | None] = []
        self.numbers: list[dict[str, Any]] = []  # the counts given with each report
        self.lines: list[str] = []

    async def step(self, status: TaskStatus, description: str | None = None) -> None:
        self.steps.append(status)

    def progress(self, percent: float, description: str | None = None, **numbers: Any) -> None:
        self.numbers.append(numbers)
        self.reported.append(percent)
        self.shown.append(max([percent, *self.shown]))
        self.descriptions.append(description)

    def log(self, line: str) -> None:
        self.lines.append(line)


def _feed(tracker: LayerBytes, chunks: list[Chunk]) -> list[tuple[int, int]]:
    """(bytes done, bytes total) after each chunk of the tracker's phase."""
    seen = []
    for chunk in chunks:
        tracker.update(chunk)
        seen.append((tracker.bytes_done, tracker.bytes_total))
    return seen


# --- LayerBytes ------------------------------------------------------------------------------


def test_push_bytes_count_every_layer_and_never_exceed_the_total() -> None:
    upload = LayerBytes("Pushing")
    seen = _feed(upload, PUSH)
    done = [d for d, _ in seen]
    assert done == sorted(done), "bytes pushed went down"
    assert all(d <= t for d, t in seen)
    # 3 layers with a size, one (2 kB) the engine gave none for, which counts what moved.
    assert set(upload.layers) == {"13e229451f14", "d4403acd3324", "f3ce9680ed3a", "5168409e7549"}
    assert upload.bytes_total == 3_000_000 + 1_982_256 + 3_216 + 2_048
    assert upload.bytes_done == upload.bytes_total
    assert upload.fraction() == 1.0
    assert all(layer.done for layer in upload.layers.values())
    assert upload.describe("Uploaded") == "Uploaded 5.0 MB of 5.0 MB (4 layers)"


def test_a_layer_reported_beyond_its_total_is_capped() -> None:
    upload = LayerBytes("Pushing")
    _feed(upload, PUSH[:12])  # 5168409e7549 reports 68608 of 3216
    assert upload.layers["5168409e7549"].current == 3_216
    assert 0 < upload.fraction() < 1


def test_push_of_existing_layers_moves_no_bytes() -> None:
    upload = LayerBytes("Pushing")
    assert not any(upload.update(chunk) for chunk in PUSH_LAYERS_EXIST)
    assert upload.layers == {}
    assert upload.fraction() == 0.0


def test_pull_counts_only_the_layers_it_downloads() -> None:
    download = LayerBytes("Downloading")
    extract = LayerBytes("Extracting")
    moved = [(download.update(c), extract.update(c)) for c in PULL]
    assert [i for i, (d, _) in enumerate(moved) if d] == [5]
    assert [i for i, (_, e) in enumerate(moved) if e] == [8, 9]
    # Neither the "Pulling from" line (id: the tag) nor layers already present count.
    assert list(download.layers) == ["bdc96a68afaf"]
    assert download.bytes_done == download.bytes_total == 3_001_126
    assert extract.bytes_done == extract.bytes_total == 3_001_126
    assert download.describe("Downloaded") == "Downloaded 3.0 MB of 3.0 MB (1 layers)"


def test_tracker_ignores_chunks_without_a_layer() -> None:
    tracker = LayerBytes("Downloading")
    assert not tracker.update({"status": "Downloading"})
    assert not tracker.update({"id": "abc", "progressDetail": {"current": 1}})
    assert not tracker.update({"stream": "Step 1/2 : FROM x\n"})
    assert tracker.layers == {}


# --- digests and errors ----------------------------------------------------------------------


def test_push_digest_comes_from_the_closing_aux_chunk() -> None:
    found = [d for d in map(push_digest, PUSH) if d is not None]
    assert found == [("1", DIGEST)]
    assert [d for d in map(push_digest, PUSH_LAYERS_EXIST) if d] == [("1", DIGEST)]


def test_pull_digest_is_the_one_pushed() -> None:
    for sequence in (PULL, PULL_UP_TO_DATE):
        assert [d for d in map(pull_digest, sequence) if d] == [DIGEST]
    assert pull_digest({"status": "Digest: not-a-digest"}) is None
    assert pull_digest({"status": "Pull complete", "id": "x"}) is None


def test_error_of_finds_only_the_error_chunk() -> None:
    for sequence in (BUILD_OK, PUSH, PULL, PULL_INTERLEAVED):
        assert not any(error_of(c) for c in sequence)
    assert [error_of(c) is not None for c in BUILD_FAILED] == [False] * 8 + [True]
    assert error_of({"errorDetail": {"message": "x"}}) is not None
    assert error_of({"error": "x"}) is not None


# --- BuildSteps ------------------------------------------------------------------------------


def test_build_steps_follow_the_step_lines() -> None:
    steps = BuildSteps()
    fractions, lines = [], []
    for chunk in BUILD_OK:
        lines += steps.update(chunk)
        fractions.append(steps.fraction())
    assert (steps.step, steps.total, steps.instruction) == (4, 4, "LABEL a=b")
    assert sorted(set(fractions)) == [0.0, 0.25, 0.5, 0.75]
    assert fractions == sorted(fractions)
    assert steps.image_id == (
        "sha256:2c639d6786197cfec37bdb044b1e8bf7cc6cfd7a6ee87d88a30c1255ddc3d345"
    )
    assert steps.describe() == "Step 4/4: LABEL a=b"
    assert "hello" in lines
    assert "world" in lines
    assert "Successfully tagged 127.0.0.1:5333/rec/app:1" in lines
    assert "" not in lines  # the bare newline chunks are not lines


def test_build_image_id_falls_back_to_the_success_line() -> None:
    steps = BuildSteps()
    for chunk in BUILD_OK:
        if "aux" not in chunk:
            steps.update(chunk)
    assert steps.image_id == "2c639d678619"


def test_failed_build_keeps_the_failing_step_and_its_output() -> None:
    steps = BuildSteps()
    for chunk in BUILD_FAILED:
        steps.update(chunk)
    assert (steps.step, steps.total) == (2, 2)
    assert steps.instruction == "RUN echo line1 && echo line2 && exit 3"
    assert steps.image_id is None
    assert list(steps.last_lines) == [
        "Step 2/2 : RUN echo line1 && echo line2 && exit 3",
        " ---> Running in defee19ea062",
        "line1",
        "line2",
        "Removing intermediate container defee19ea062",
    ]


def test_stderr_of_a_step_loses_its_colour_codes() -> None:
    steps = BuildSteps()
    lines = [line for chunk in BUILD_FAILED_STDERR for line in steps.update(chunk)]
    assert "second-clue" in lines
    assert "first-clue" in lines
    assert not any("\x1b" in line for line in lines)
    assert "second-clue" in steps.last_lines


def test_build_steps_before_any_step() -> None:
    steps = BuildSteps()
    assert steps.fraction() == 0.0
    assert steps.describe() == "Building"
    assert steps.update({"aux": {"ID": "sha256:abc"}}) == []
    assert steps.image_id == "sha256:abc"


# --- the executors' progress on these sequences ----------------------------------------------


async def _pull(chunks: list[Chunk]) -> tuple[FakeContext, _PullProgress]:
    ctx = FakeContext()
    progress = _PullProgress(ctx)  # type: ignore[arg-type]
    for chunk in chunks:
        await progress.on_chunk(chunk)
    return ctx, progress


@pytest.mark.parametrize("chunks", [PULL, PULL_INTERLEAVED], ids=["one-layer", "interleaved"])
async def test_pull_goes_downloading_then_extracting_once(chunks: list[Chunk]) -> None:
    ctx, progress = await _pull(chunks)
    assert ctx.steps == [TaskStatus.DOWNLOADING, TaskStatus.PULLING]
    assert ctx.reported[-1] == pytest.approx(100.0)
    assert progress.digest is not None


async def test_interleaved_pull_stays_downloading_until_every_layer_is_fetched() -> None:
    ctx = FakeContext()
    progress = _PullProgress(ctx)  # type: ignore[arg-type]
    statuses = [c["status"] for c in PULL_INTERLEAVED]
    first_fetch = statuses.index("Pulling fs layer")
    last_download = len(statuses) - 1 - statuses[::-1].index("Downloading")
    assert statuses.index("Extracting") < last_download  # the first layer extracts meanwhile
    for i, chunk in enumerate(PULL_INTERLEAVED):
        await progress.on_chunk(chunk)
        if first_fetch <= i <= last_download:
            assert ctx.steps == [TaskStatus.DOWNLOADING], f"left downloading at chunk {i}"
    assert ctx.steps == [TaskStatus.DOWNLOADING, TaskStatus.PULLING]


async def test_interleaved_pull_bar_is_not_filled_by_an_early_extraction() -> None:
    ctx = FakeContext()
    progress = _PullProgress(ctx)  # type: ignore[arg-type]
    first_done = [c["status"] for c in PULL_INTERLEAVED].index("Pull complete")
    for chunk in PULL_INTERLEAVED[: first_done + 1]:
        await progress.on_chunk(chunk)
    # The small first layer (6 % of the bytes) is extracted; most bytes are still to come.
    assert ctx.reported[-1] < 20.0
    for chunk in PULL_INTERLEAVED[first_done + 1 :]:
        await progress.on_chunk(chunk)
    assert max(b - a for a, b in pairwise(ctx.shown)) < 15.0  # the bar climbs steadily
    assert ctx.reported[-1] == pytest.approx(100.0)
    assert all(p <= 100.0 for p in ctx.reported)
    assert progress.download.bytes_done == 300_285 + 2_500_945 + 2_000_811
    assert len(progress.download.layers) == 3


async def test_pull_of_an_up_to_date_image_moves_nothing() -> None:
    ctx, progress = await _pull(PULL_UP_TO_DATE)
    assert ctx.steps == []
    assert ctx.reported == []
    assert progress.digest == DIGEST
    assert ctx.lines == [
        "Digest: " + DIGEST,
        "Status: Image is up to date for 127.0.0.1:5333/rec/app:1",
    ]


async def test_push_progress_maps_bytes_onto_its_share_of_the_bar() -> None:
    ctx = FakeContext()
    progress = PushProgress(ctx, 60.0, 80.0)  # type: ignore[arg-type]
    for chunk in PUSH:
        await progress.on_chunk(chunk)
    assert all(60.0 <= p <= 80.0 for p in ctx.reported)
    assert ctx.reported[-1] == pytest.approx(80.0)
    assert ctx.reported == sorted(ctx.reported)
    assert progress.digests == {"1": DIGEST}
    assert ctx.lines[0] == "The push refers to repository [127.0.0.1:5333/rec/app]"
    assert all(d and d.startswith("Uploaded") for d in ctx.descriptions)


# --- the numbers behind the bar ----------------------------------------------------------


async def test_pull_numbers_follow_the_step_and_end_with_every_byte_and_layer() -> None:
    ctx, _ = await _pull(PULL_INTERLEAVED)
    phases = [n["phase"] for n in ctx.numbers]
    assert phases == sorted(phases)  # "downloading" reports, then "extracting" ones, never back
    for phase in ("downloading", "extracting"):
        numbers = [n for n in ctx.numbers if n["phase"] == phase]
        done = [n["bytes_done"] for n in numbers]
        assert done == sorted(done), f"{phase}: bytes went down"
        assert all(n["bytes_done"] <= n["bytes_total"] for n in numbers)
        last = numbers[-1]
        assert last["bytes_done"] == last["bytes_total"] == 300_285 + 2_500_945 + 2_000_811
        assert last["layers_done"] == last["layers_total"] == 6  # 3 of them already there
    assert ctx.numbers[0]["layers_total"] >= 1


async def test_push_numbers_end_with_every_byte_and_layer() -> None:
    ctx = FakeContext()
    progress = PushProgress(ctx)  # type: ignore[arg-type]
    for chunk in PUSH:
        await progress.on_chunk(chunk)
    last = ctx.numbers[-1]
    assert last["phase"] == "uploading"
    assert last["bytes_done"] == last["bytes_total"] == progress.upload.bytes_total
    assert last["layers_done"] == last["layers_total"] == 4
    done = [n["bytes_done"] for n in ctx.numbers]
    assert done == sorted(done)


def test_layers_that_exist_or_were_mounted_count_as_done() -> None:
    layers = LayerCount(PUSHED)
    for chunk in [
        {"status": "The push refers to repository [r/app]"},
        {"status": "Preparing", "id": "a"},
        {"status": "Preparing", "id": "b"},
        {"status": "Preparing", "id": "c"},
        {"status": "Layer already exists", "id": "a"},
        {"status": "Mounted from library/busybox", "id": "b"},
        {"status": "Pushing", "id": "c", "progressDetail": {"current": 1, "total": 2}},
        {"status": "1: digest: sha256:x size: 1", "progressDetail": {}},
    ]:
        layers.update(chunk)
    assert (layers.done, layers.total) == (2, 3)
