"""Helpers for the file endpoint tests."""

from __future__ import annotations

import io
from typing import Any

import aiohttp

# aiohttp warns (an error under the suite's filters) about raw bytes bodies
# larger than this; a file object of the same bytes is sent the same way.
_RAW_BYTES_LIMIT = 1024 * 1024


def form(
    content: bytes, filename: str = "picture.png", field: str = "file", **fields: str
) -> aiohttp.FormData:
    # quote_fields=False: send file names raw, as browsers and curl do.
    data = aiohttp.FormData(quote_fields=False)
    value = io.BytesIO(content) if len(content) > _RAW_BYTES_LIMIT else content
    data.add_field(field, value, filename=filename, content_type="application/octet-stream")
    for name, text in fields.items():
        data.add_field(name, text)
    return data


async def upload(
    client: Any, user: Any, content: bytes, filename: str = "picture.png", **fields: str
) -> dict:
    response = await client.post(
        "/api/v1/files/upload", data=form(content, filename, **fields), headers=user.headers
    )
    assert response.status == 201, await response.text()
    return (await response.json())["data"]
