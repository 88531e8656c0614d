"""Video jobs submitted through the API, as a client submits them."""

from __future__ import annotations

from typing import Any


async def submit_video(client: Any, user: Any, **body: Any) -> str:
    """``POST /api/v1/videos/generate`` as ``user`` with ``body``: the new job's
    id (202 asserted)."""
    response = await client.post("/api/v1/videos/generate", json=body, headers=user.headers)
    assert response.status == 202, await response.text()
    job_id: str = (await response.json())["data"]["id"]
    return job_id
