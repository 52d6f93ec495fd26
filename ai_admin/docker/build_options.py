"""Build options that reach outside the build: allowed only as the configuration says.

Of ``docker_build``'s options only ``network_mode`` does: ``host`` puts the build's ``RUN``
steps on the Docker host's own network (its loopback-only services included) and
``container:NAME`` joins another container's. The others (build args, labels, target,
platform, pull, no_cache, tags) stay inside the build. The check runs when a build is submitted
(the client gets its 400 at once) and again when it runs, for tasks that come in through the
Python API or were queued under another configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

from ai_admin.errors import ErrorCode, InvalidParams

NETWORK_MODES_SETTING = "allowed_network_modes"


def check_network_mode(mode: str | None, allowed: Sequence[str]) -> None:
    """Refuse a ``network_mode`` that is not, exactly, one of the configured ones."""
    if mode is None or mode in allowed:
        return
    listed = ", ".join(allowed)
    which = f"the allowed ones are {listed}" if allowed else "none is allowed"
    raise InvalidParams(
        f"network_mode {mode!r} is not allowed on this agent: {which}.",
        code=ErrorCode.VALIDATION_OPTION_NOT_ALLOWED,
        details={
            "option": "network_mode",
            "value": mode,
            "allowed": list(allowed),
            "setting": NETWORK_MODES_SETTING,
        },
        suggestions=[
            f"Use one of {listed}, or leave network_mode out for the engine's default."
            if allowed
            else "Leave network_mode out: the build gets the engine's default network.",
            f"To allow {mode!r}, the operator adds it to `{NETWORK_MODES_SETTING}` in the "
            "agent's configuration; 'host' gives builds the Docker host's own network, "
            "loopback services included.",
        ],
    )
