"""The MCP door: every registered command as an MCP tool, over stdio and streamable HTTP.

- ``server.build_server(agent)``: the SDK server; its tools, resources and prompt derive from
  the command registry and the queue (``tools``, ``calls``, ``results``, ``resources``,
  ``prompts``).
- ``stdio.serve_stdio(settings)``: ``ai-admin mcp``, a whole agent on stdin/stdout.
- ``http.mount_mcp(app, agent)``: ``/mcp`` inside the agent's aiohttp app.
- ``tools.export_tools(format)``: ``ai-admin tools``, the definitions as JSON.
- ``cli.register(app)``: adds ``mcp`` and ``tools`` to the typer CLI.

Nothing is imported here, so ``ai_admin.mcp.cli`` stays cheap for the CLI's other commands;
the SDK is loaded when a command needs it.
"""

MCP_PATH = "/mcp"
# Streamable HTTP: POST sends messages, GET opens the server stream, DELETE ends a session.
MCP_METHODS = ("GET", "POST", "DELETE")
