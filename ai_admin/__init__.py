"""ai-admin: a Docker task orchestration agent."""

__version__ = "0.1.0"
