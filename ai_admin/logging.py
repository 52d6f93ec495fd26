"""Logging, set up once at start-up: readable lines on a terminal, JSON lines when asked.

Libraries that use the standard ``logging`` module (aiohttp, docker) are routed through loguru
so every line has one format and one destination.

No line may carry a secret, whatever fails:

- tracebacks show code, never the values of variables (loguru's ``diagnose`` is off in every
  sink: it would print the locals of each frame, a token or a password among them);
- the secrets the agent knows for its whole life (its tokens, see ``hide``) are replaced by
  ``***`` in every line, a traceback's exception message included;
- an HTTP parser error quotes the raw request line or header it choked on (a bearer token, a
  wrong one too), so it is logged by its type and status only;
- aiohttp's own access log quotes the request line, query string included, so it is off: the
  agent writes its own line per request (``ai_admin.http.access_log``), without the query.

Fields bound to a line (``logger.bind``/``contextualize``: a task's ``task_id``, an access
line's ``status``, ...) are fields of its JSON object; the text format shows the message only.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loguru import logger

from ai_admin.queue.secrets import REDACTED, mask

if TYPE_CHECKING:
    from loguru import Message

__all__ = ["REDACTED", "hide", "redact", "setup_logging"]

# Shorter values are not hidden: replacing every "ab" in the log would only garble it. The
# settings refuse tokens this short (config.MIN_TOKEN_CHARS), so every token is hidden.
_MIN_HIDDEN_CHARS = 6
# HTTP parser errors (aiohttp.http_exceptions) carry the raw bytes they refused.
_QUOTES_THE_REQUEST = "aiohttp.http_exceptions"
# aiohttp's access logger: replaced by the agent's own (ai_admin.http.access_log).
_AIOHTTP_ACCESS_LOG = "aiohttp.access"

_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message}"
)

_hidden: tuple[str, ...] = ()
_hidden_lock = threading.Lock()


def hide(*secrets: str) -> None:
    """Never write these values (the agent's tokens) to the log: each becomes ``***``."""
    global _hidden
    with _hidden_lock:
        known = set(_hidden) | {s for s in secrets if len(s) >= _MIN_HIDDEN_CHARS}
        # Longest first, so a secret that contains another is hidden whole.
        _hidden = tuple(sorted(known, key=len, reverse=True))


def _hidden_out(text: str) -> str:
    return mask(text, _hidden)


def redact(text: str) -> str:
    """``text`` with every hidden value replaced, and writable as UTF-8 (a lone surrogate
    from a client's input becomes an escape instead of failing the write)."""
    text = _hidden_out(text)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _text_sink(stream: TextIO) -> Callable[[Message], None]:
    def write(message: Message) -> None:
        stream.write(redact(str(message)))
        stream.flush()

    return write


def _json_sink(stream: TextIO) -> Callable[[Message], None]:
    def write(message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "logger": record["name"],
            "message": record["message"],
        }
        line.update({k: v for k, v in record["extra"].items() if _is_json(v)})
        exception = record["exception"]
        if exception is not None and exception.type is not None:
            line["exception"] = f"{exception.type.__name__}: {exception.value}"
            # The stack as the standard library prints it: file, line and code, no locals.
            line["traceback"] = "".join(
                traceback.format_exception(exception.type, exception.value, exception.traceback)
            )
        # Redacted before encoding: JSON escapes non-ASCII, quotes and backslashes, so a
        # token holding one would no longer be found in the encoded line.
        shown = {k: _hidden_out(v) if isinstance(v, str) else v for k, v in line.items()}
        stream.write(json.dumps(shown, default=str) + "\n")
        stream.flush()

    return write


def _is_json(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None))


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message, exc_info = record.getMessage(), record.exc_info
        error = exc_info[1] if exc_info else None
        if error is not None and type(error).__module__ == _QUOTES_THE_REQUEST:
            code = getattr(error, "code", "")
            message = f"{message}: {type(error).__name__} {code} (the request is not logged)"
            exc_info = None
        logger.opt(depth=6, exception=exc_info).log(level, message)


def setup_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", stream: TextIO | None = None
) -> None:
    """One sink on ``stream`` (stderr). ``backtrace`` stays off: a traceback ends where the
    error was caught, as Python prints it, without the event loop's frames above."""
    out = stream or sys.stderr
    logger.remove()
    logger.enable("ai_admin")  # silent as a library until a program sets its sinks
    if fmt == "json":
        logger.add(_json_sink(out), level=level, diagnose=False, backtrace=False)
    else:
        logger.add(
            _text_sink(out),
            level=level,
            format=_TEXT_FORMAT,
            colorize=out.isatty(),
            diagnose=False,
            backtrace=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for noisy in ("urllib3", "docker", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger(_AIOHTTP_ACCESS_LOG).disabled = True
