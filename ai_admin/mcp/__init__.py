"""The MCP door: every registered command as an MCP tool, over stdio and streamable HTTP.

- ``server.build_server(agent)``: the SDK server; its tools, resources and prompt derive from
  the command registry and the queue (``tools``, ``calls``, ``results``, ``resources``,
  ``prompts``).
- ``stdio.serve_stdio(settings)``: ``ai-admin mcp``, a whole agent on stdin/stdout.
- ``tools.export_tools(format)``: ``ai-admin tools``, the definitions as JSON.

The doors that carry it live with their kind: ``ai_admin.http.mcp_route.mount_mcp(app, agent)``
serves ``/mcp`` inside the agent's aiohttp app, and ``ai_admin.cli.mcp_commands`` adds
``ai-admin mcp`` and ``ai-admin tools`` to the command line. Nothing here imports them.

Nothing is imported here either, so the CLI's other commands and the OpenAPI document (which
names ``MCP_PATH``) stay cheap; the SDK's server is loaded when a command needs it.
"""

MCP_PATH = "/mcp"
# Streamable HTTP: POST sends messages, GET opens the server stream, DELETE ends a session.
MCP_METHODS = ("GET", "POST", "DELETE")
