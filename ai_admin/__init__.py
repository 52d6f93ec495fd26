"""ai-admin: a Docker task orchestration agent."""

from loguru import logger

__version__ = "0.1.0"

# Silent as a library, as loguru asks of libraries: loguru's default sink prints the values of
# variables in tracebacks, credentials among them. ``ai-admin serve`` and ``mcp`` turn the log
# on with their own sinks (``ai_admin.logging.setup_logging``); a program using the Python API
# may call ``logger.enable("ai_admin")`` with a sink of its own (``diagnose=False``).
logger.disable("ai_admin")
