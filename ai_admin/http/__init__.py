"""The HTTP door: aiohttp routes over the shared dispatcher."""
