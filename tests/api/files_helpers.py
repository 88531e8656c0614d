"""Helpers for the file endpoint tests."""

from __future__ import annotations

from typing import Any

import aiohttp


def form(
    content: bytes, filename: str = "picture.png", field: str = "file", **fields: str
) -> aiohttp.FormData:
    # quote_fields=False: send file names raw, as browsers and curl do.
    data = aiohttp.FormData(quote_fields=False)
    data.add_field(field, content, filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


async def upload(
    client: Any, user: Any, content: bytes, filename: str = "picture.png", **fields: str
) -> dict:
    response = await client.post(
        "/api/v1/files/upload", data=form(content, filename, **fields), headers=user.headers
    )
    assert response.status == 201, await response.text()
    return (await response.json())["data"]
