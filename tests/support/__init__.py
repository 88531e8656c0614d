"""Helpers shared by the test packages: polling, error assertions, tokens,
media files and Server-Sent Events (one of each)."""
