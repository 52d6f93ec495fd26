"""``python -m ai_admin``: the ``ai-admin`` command, for when its script is not on PATH."""

from ai_admin.cli.main import app

app(prog_name="ai-admin")
