"""Logging, set up once at start-up: readable lines on a terminal, JSON lines when asked.

Libraries that use the standard ``logging`` module (aiohttp, docker) are routed through loguru
so every line has one format and one destination.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message

_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message}"
)


def _json_sink(stream: TextIO) -> Any:
    def write(message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "logger": record["name"],
            "message": record["message"],
        }
        line.update({k: v for k, v in record["extra"].items() if _is_json(v)})
        if record["exception"] is not None:
            line["exception"] = repr(record["exception"].value)
        stream.write(json.dumps(line, default=str) + "\n")
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
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", stream: TextIO | None = None
) -> None:
    out = stream or sys.stderr
    logger.remove()
    if fmt == "json":
        logger.add(_json_sink(out), level=level)
    else:
        logger.add(out, level=level, format=_TEXT_FORMAT, colorize=out.isatty())
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for noisy in ("urllib3", "docker", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
