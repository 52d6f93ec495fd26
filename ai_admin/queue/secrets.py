"""Credentials stay in memory: the one place where task params are split and redacted.

Secrets in a task's params, handed to the executor but never to the store, the logs, exports,
events or any answer (those only ever see the redacted params):

- ``auth``: the password and identity token (shown as ``***``), and the userinfo of
  ``auth.registry`` (``https://user:pass@host`` is shown as ``https://host``);
- ``build_args`` whose name looks secret (``NPM_TOKEN``, ``DB_PASSWORD``, ``API_KEY``, see
  ``SECRET_NAME_PARTS``) or whose value is a URL with a password in it: shown as ``***``.

Text from outside (Docker's error messages, which may quote a registry URL, a header or a
``docker login`` argument) has no known secret values to mask: ``scrub_credentials`` hides
whatever looks like one instead.

The secret part lives in the engine's memory only, so a restart loses it: ``holds_secrets``
tells from the stored params alone whether a task had any.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

AUTH_KEY = "auth"
BUILD_ARGS_KEY = "build_args"
REDACTED = "***"
_SECRET_FIELDS = ("password", "identity_token", "registry_token")
# Shorter values are not masked in free text: hiding every "ab" would only garble it.
_MIN_MASKED_CHARS = 4
# A build arg whose upper-cased name contains one of these holds a secret.
SECRET_NAME_PARTS = (
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "COOKIE",
    "DSN",
)
# ://user:password@ anywhere in a value (an index URL with its password, say). Anchored on
# "://" and bounded, so a long value costs linear time (an unbounded pattern backtracked for
# seconds on a 16 KB value); a password may hold "/".
_URL_WITH_PASSWORD = re.compile(r"://[^\s@:/]{0,256}:[^\s@]{0,256}@")


def is_secret_name(name: str) -> bool:
    """Whether a build arg called ``name`` holds a secret, by its name alone."""
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def is_secret_arg(name: str, value: Any) -> bool:
    """Whether a build arg is kept out of sight: a secret-looking name or a URL with a
    password, and a value to hide. A value that is already ``***`` counts too, so that
    ``holds_secrets`` reads stored params unambiguously."""
    if not isinstance(value, str) or not value:
        return False
    return (
        is_secret_name(name)
        or value == REDACTED
        or ("@" in value and _URL_WITH_PASSWORD.search(value) is not None)
    )


def strip_userinfo(address: str) -> tuple[str, str | None, str | None]:
    """``(address without userinfo, user, password)``, for ``https://user:pass@host/path`` as
    for ``user:pass@host``; user and password are percent-decoded, None when absent."""
    scheme, sep, rest = address.partition("://") if "://" in address else ("", "", address)
    userinfo, at, bare = rest.rpartition("@")
    # The userinfo ends at the last "@"; a "/" before it belongs to a password ("user:pa/ss@")
    # or, with no ":" ahead of it, to a path ("host/a@b"), which is no userinfo.
    if not at or "/" in userinfo.partition(":")[0]:
        return address, None, None
    user, colon, password = userinfo.partition(":")
    return f"{scheme}{sep}{bare}", unquote(user) or None, unquote(password) if colon else None


def split_secrets(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return (params safe to store and show, the secret part or None)."""
    public = dict(params)
    secret: dict[str, Any] = {}
    auth = public.get(AUTH_KEY)
    if isinstance(auth, Mapping):
        public[AUTH_KEY] = _shown_auth(auth)
        secret[AUTH_KEY] = dict(auth)
    args = public.get(BUILD_ARGS_KEY)
    if isinstance(args, Mapping):
        hidden = {k: v for k, v in args.items() if is_secret_arg(k, v)}
        if hidden:
            public[BUILD_ARGS_KEY] = shown_build_args(args)
            secret[BUILD_ARGS_KEY] = hidden
    return public, secret or None


def shown_build_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Build args as they may be shown: the secret ones as ``***``."""
    return {k: REDACTED if is_secret_arg(k, v) else v for k, v in args.items()}


def _shown_auth(auth: Mapping[str, Any]) -> dict[str, Any]:
    shown = {k: (REDACTED if k in _SECRET_FIELDS and v else v) for k, v in auth.items()}
    registry = shown.get("registry")
    if isinstance(registry, str):
        shown["registry"] = strip_userinfo(registry)[0]
    return shown


def holds_secrets(public: Mapping[str, Any]) -> bool:
    """Whether the task was given secrets that live only in memory (so a restart loses them):
    the stored params keep their redacted place (``auth``, a build arg shown as ``***``)."""
    if isinstance(public.get(AUTH_KEY), Mapping):
        return True
    args = public.get(BUILD_ARGS_KEY)
    return isinstance(args, Mapping) and REDACTED in args.values()


def join_secrets(public: Mapping[str, Any], secret: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params an executor receives. Without the secret part it gets no ``auth`` and no
    redacted build arg (a build must never see ``***`` as a value); the engine never runs a
    task whose secrets a restart lost (``QUEUE_CREDENTIALS_LOST``)."""
    params = dict(public)
    secret = secret or {}
    if AUTH_KEY in secret:
        params[AUTH_KEY] = dict(secret[AUTH_KEY])
    else:
        params.pop(AUTH_KEY, None)
    args = params.get(BUILD_ARGS_KEY)
    if isinstance(args, Mapping):
        hidden = secret.get(BUILD_ARGS_KEY) or {}
        params[BUILD_ARGS_KEY] = {
            k: hidden.get(k, v) for k, v in args.items() if k in hidden or v != REDACTED
        }
    return params


def secret_values(secret: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every value in the secret part worth masking in text the task produces (a build's
    output may print a build arg): passwords, tokens, secret build args, and the password of a
    URL among them or in ``auth.registry``. Longest first, so ``mask`` hides a secret whole."""
    auth = (secret or {}).get(AUTH_KEY) or {}
    args = (secret or {}).get(BUILD_ARGS_KEY) or {}
    found = [v for k, v in auth.items() if k in _SECRET_FIELDS] + list(args.values())
    urls = [auth.get("registry"), *args.values()]
    found += [strip_userinfo(u)[2] for u in urls if isinstance(u, str) and "@" in u]
    values = {v for v in found if isinstance(v, str) and len(v) >= _MIN_MASKED_CHARS}
    return tuple(sorted(values, key=len, reverse=True))


def mask(text: str, values: tuple[str, ...]) -> str:
    """``text`` with each of ``values`` (from ``secret_values``) replaced by ``***``."""
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def mask_values(value: Any, values: tuple[str, ...]) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with ``values`` masked in every string."""
    if isinstance(value, str):
        return mask(value, values)
    if isinstance(value, Mapping):
        return {k: mask_values(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_values(v, values) for v in value]
    return value


# What a credential looks like in free text: an authorization header's value, a scheme's
# ``user:password@``, a bare ``user:password@host``, and ``password=…``-style pairs.
_CREDENTIAL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b((?:proxy-)?authorization|x-registry-auth|x-registry-config)(\s*[:=]\s*)"
            r"(?:(?:basic|bearer|token|digest|negotiate)\s+)?[^\s,;\"']+",
            re.IGNORECASE | re.DOTALL,
        ),
        rf"\1\2{REDACTED}",
    ),
    (
        re.compile(r"\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE | re.DOTALL),
        rf"\1 {REDACTED}",
    ),
    (
        re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE | re.DOTALL),
        rf"\1{REDACTED}@",
    ),
    (
        re.compile(
            r"(?<![\w/@:.%+-])[\w.%+-]+:[^\s/@:'\"]+@(?=[\w-]+(?:\.[\w-]+)*(?::\d+)?(?:[/\s'\"]|$))",
            re.IGNORECASE | re.DOTALL,
        ),
        f"{REDACTED}@",
    ),
    (
        re.compile(
            r"\b(password|passwd|pwd|secret|token|access_token|refresh_token|identitytoken|"
            r"registrytoken|auth|api[_-]?key)\b([\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]+",
            re.IGNORECASE | re.DOTALL,
        ),
        rf"\1\2{REDACTED}",
    ),
)


def scrub_credentials(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``***``: for text whose
    secrets are not known in advance (Docker's messages), where ``mask`` cannot be used."""
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def merge_key(
    task_type: str,
    public: Mapping[str, Any],
    secret: Mapping[str, Any] | None,
    scope: Sequence[Any] = (),
) -> str:
    """Identical work has the same key: same type, same params, same secrets (and the same
    ``scope``: where and when the work runs).

    Kept in memory only; a digest so the secrets are not held twice in clear."""
    body = json.dumps([task_type, public, secret, scope], sort_keys=True, default=str)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
