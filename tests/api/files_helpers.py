"""Helpers for the file endpoint tests."""

from __future__ import annotations

import io
import secrets
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


async def completed_video_job(
    client: Any, db: Any, user: Any, picture: bytes, *, title: str | None = None
) -> tuple[str, str]:
    """A completed job of ``user`` and its generated video file (job id, file id);
    the file's bytes are ``picture``, what is in storage for the job is the caller's."""
    job_id = "job_" + secrets.token_hex(12)
    file_id = (await upload(client, user, picture, "v.png"))["id"]
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, owner_id, status, output_file_id, result)"
            " VALUES ($1, $2, 'completed', $3, '{}'::jsonb)",
            job_id,
            user.id,
            file_id,
        )
        await conn.execute(
            "UPDATE files SET file_type = 'video', source = 'generated', job_id = $2,"
            " title = coalesce($3, title) WHERE id = $1",
            file_id,
            job_id,
            title,
        )
    return job_id, file_id
