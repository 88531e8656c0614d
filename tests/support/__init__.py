"""Helpers shared by the test packages: polling, error assertions, tokens,
media files, Server-Sent Events and webhook events (one of each)."""
