"""Which directories a build may read: only under the configured ``allowed_roots``.

Paths are resolved (symlinks followed) before the check, so neither ``..`` nor a symlink can
lead a build outside the roots.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ai_admin.errors import ErrorCode, InvalidParams


def _refuse(message: str, path: str) -> InvalidParams:
    return InvalidParams(
        message, code=ErrorCode.VALIDATION_PATH_NOT_ALLOWED, details={"context_path": path}
    )


def resolve_context(path: str, allowed_roots: Sequence[Path]) -> Path:
    """The real directory to send as build context, or a refusal naming why."""
    if not allowed_roots:
        raise _refuse(
            "Builds from a directory are disabled: the agent has no allowed_roots configured.",
            path,
        )
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise _refuse(f"Build context {path!r} does not exist.", path) from None
    roots = [Path(root).resolve() for root in allowed_roots]
    if not any(real == root or real.is_relative_to(root) for root in roots):
        raise _refuse(
            f"Build context {path!r} is outside the allowed roots "
            f"({', '.join(str(r) for r in roots)}).",
            path,
        )
    if not real.is_dir():
        raise _refuse(f"Build context {path!r} is not a directory.", path)
    return real


def resolve_dockerfile(context: Path, name: str) -> str:
    """The Dockerfile's path relative to the context; it may not point outside it."""
    real = (context / name).resolve()
    if not real.is_relative_to(context):
        raise _refuse(f"Dockerfile {name!r} is outside the build context.", name)
    if not real.is_file():
        raise InvalidParams(
            f"Dockerfile {name!r} not found in the build context {context}.",
            code=ErrorCode.VALIDATION_INVALID_PARAMS,
            details={"dockerfile_name": name},
        )
    return str(real.relative_to(context))
