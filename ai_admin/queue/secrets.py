"""Credentials stay in memory: the one place where task params are split and redacted.

A task's ``auth`` (username with password or identity token) is handed to the executor but never
reaches the store, the logs, exports or any answer: those only ever see the redacted params.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

AUTH_KEY = "auth"
REDACTED = "***"
_SECRET_FIELDS = ("password", "identity_token", "registry_token")


def split_secrets(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return (params safe to store and show, the credentials or None)."""
    public = dict(params)
    auth = public.get(AUTH_KEY)
    if not isinstance(auth, Mapping):
        return public, None
    public[AUTH_KEY] = {k: (REDACTED if k in _SECRET_FIELDS and v else v) for k, v in auth.items()}
    return public, dict(auth)


def holds_secrets(public: Mapping[str, Any]) -> bool:
    """Whether the task was given credentials that live only in memory (so a restart loses
    them): the stored params keep their redacted place."""
    return isinstance(public.get(AUTH_KEY), Mapping)


def join_secrets(public: Mapping[str, Any], secret: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params an executor receives. Without the credentials (lost in a restart) it gets no
    ``auth`` at all and falls back to the agent's own Docker login."""
    params = dict(public)
    if secret is not None:
        params[AUTH_KEY] = dict(secret)
    else:
        params.pop(AUTH_KEY, None)
    return params


def merge_key(task_type: str, public: Mapping[str, Any], secret: Mapping[str, Any] | None) -> str:
    """Identical work has the same key: same type, same params, same credentials.

    Kept in memory only; a digest so the credentials are not held twice in clear."""
    body = json.dumps([task_type, public, secret], sort_keys=True, default=str)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
