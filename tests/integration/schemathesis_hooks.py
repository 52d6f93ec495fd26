"""Schemathesis hooks for tests/integration/test_schemathesis.py (loaded by ``st`` through
``SCHEMATHESIS_HOOKS``).

A few rules of the API depend on what no JSON schema can see, and their refusals are the
documented answer to a request that breaks them, so they are no failure. Any other refusal
of a request the schema allows still is. The rules (each told in its command's description):

- ``queue_configure`` refuses a ``retry_cap_s`` below ``retry_base_s``, counting the agent's
  current value of the one not given: a comparison between two fields, and with the agent's
  state.
- ``docker_build`` takes a ``context_path`` only under the agent's ``allowed_roots`` and
  holding a Dockerfile (``VALIDATION_PATH_NOT_ALLOWED``, or ``VALIDATION_INVALID_PARAMS``
  naming ``dockerfile_name`` or the ``.dockerignore``), and a ``network_mode`` only among its
  ``allowed_network_modes`` (``VALIDATION_OPTION_NOT_ALLOWED``): the agent's configuration
  and file system.
- ``depends_on`` (of a submit, or of a batch entry, by id or by index) names tasks that exist,
  and a batch entry only earlier entries (``QUEUE_DEPENDENCY_INVALID``): the agent's tasks.
"""

from __future__ import annotations

from typing import Any

import schemathesis

RETRY_RULE = "retry_cap_s must be >= retry_base_s"
# Refusals that only the agent's configuration or file system decide.
_CONFIGURED = frozenset({"VALIDATION_PATH_NOT_ALLOWED", "VALIDATION_OPTION_NOT_ALLOWED"})


def _retry_rule(error: dict[str, Any]) -> bool:
    problems = [e.get("problem") for e in error.get("details", {}).get("errors", [])]
    return error.get("code") == "VALIDATION_INVALID_PARAMS" and problems == [RETRY_RULE]


def _build_context(error: dict[str, Any]) -> bool:
    details = error.get("details", {})
    if error.get("code") in _CONFIGURED:
        return True
    return error.get("code") == "VALIDATION_INVALID_PARAMS" and (
        set(details) == {"dockerfile_name"} or details.get("file") == ".dockerignore"
    )


# (a batch's entries are submit messages: their builds follow the same rules)
_DOCUMENTED = {
    "queue_configure": _retry_rule,
    "docker_build": _build_context,
    "batch_submit": _build_context,
}


def is_documented_refusal(status: int, body: Any) -> bool:
    """The agent's answer to a request breaking one of the rules above."""
    if status != 400 or not isinstance(body, dict) or body.get("success") is not False:
        return False
    error = body.get("error")
    if not isinstance(error, dict):
        return False
    if error.get("code") == "QUEUE_DEPENDENCY_INVALID":
        return True
    rule = _DOCUMENTED.get(str(body.get("action")))
    return rule is not None and rule(error)


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused by a documented rule above."""
    if getattr(failure, "code", None) != "ST202":  # RejectedPositiveData
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not is_documented_refusal(response.status_code, body)
