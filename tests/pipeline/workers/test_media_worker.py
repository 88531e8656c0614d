"""Uploads are probed and thumbnailed by a real media worker through the broker."""

from __future__ import annotations

import io

from PIL import Image

from tests.api.files_helpers import upload
from tests.support.media import jpeg_bytes, png_bytes
from tests.support.polling import until


async def _wait_processed(client, user, file_id: str, timeout_s: float = 60) -> dict:
    async def processed() -> dict | None:
        body = await (await client.get(f"/api/v1/files/{file_id}", headers=user.headers)).json()
        done = body["data"]["processing_status"] in ("completed", "failed")
        return body["data"] if done else None

    return await until(processed, f"{file_id} processed", timeout_s=timeout_s, interval_s=0.1)


async def test_uploads_get_metadata_and_thumbnails(client, make_user, start_worker):
    user = await make_user()
    start_worker(["media"])
    image_id = (await upload(client, user, jpeg_bytes(320, 200), "gradient.jpg"))["id"]
    broken = png_bytes()[:40]  # a PNG signature with nothing behind it
    broken_id = (await upload(client, user, broken, "broken.png"))["id"]

    image = await _wait_processed(client, user, image_id)
    assert image["processing_status"] == "completed"
    assert image["metadata"]["width"] == 320
    assert image["metadata"]["height"] == 200
    assert image["thumbnails"] == ["large", "medium", "small"]

    response = await client.get(
        f"/api/v1/files/{image_id}/thumbnail?size=small", headers=user.headers
    )
    assert response.status == 200
    thumb = Image.open(io.BytesIO(await response.read()))
    assert max(thumb.size) <= 160
    assert thumb.format in ("JPEG", "WEBP")

    failed = await _wait_processed(client, user, broken_id)
    assert failed["processing_status"] == "failed"
    assert failed["processing_error"]
    # A file the worker could not read stays downloadable.
    response = await client.get(f"/api/v1/files/{broken_id}/download", headers=user.headers)
    assert await response.read() == broken
    response = await client.get(f"/api/v1/files/{broken_id}/thumbnail", headers=user.headers)
    assert response.status == 404


async def test_the_media_worker_loads_the_sentence_model_when_it_starts(start_worker):
    worker = start_worker(["media"])
    # No upload at all: the model loads at boot.
    await until(
        lambda: "sentence model ready" in worker.log_text(),
        "the sentence model loaded",
        timeout_s=120,
        interval_s=0.1,
    )
