"""The spec's error envelope, asserted once."""

from __future__ import annotations

from typing import Any

import aiohttp


async def assert_error(response: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    """The response is the error envelope with this status and code; its body."""
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body
