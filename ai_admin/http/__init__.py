"""The HTTP door: aiohttp routes over the shared dispatcher, and every other use of aiohttp.

``app.create_app`` assembles it: ``routes`` (REST and ``/cmd``), ``sse`` (event streams),
``mcp_route`` (the MCP server of ``ai_admin.mcp`` carried over streamable HTTP at ``/mcp``),
``openapi`` (``/openapi.json``), ``metrics`` (``/metrics``), ``guard`` and ``auth`` (hosts,
origins, tokens), ``listener`` (sockets and the connection cap); ``server`` runs it on real
sockets for ``ai-admin serve``.
"""
