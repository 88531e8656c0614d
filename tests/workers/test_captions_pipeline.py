"""A rendered job's caption files reach the caption endpoints (real broker,
real worker processes): the keys the render stage writes are the ones the
API serves, and the job's result lists them."""

from __future__ import annotations

from tests.workers.test_video_pipeline import VIDEO_QUEUES, wait_job


async def test_sidecar_captions_are_served_and_listed(client, make_user, start_worker):
    user = await make_user()
    start_worker(VIDEO_QUEUES)
    response = await client.post(
        "/api/v1/videos/generate",
        json={
            "script": "First card.\n\nSecond card, last.",
            "quality": "480p",
            "duration": 3,
            "subtitles": "sidecar",
        },
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    job_id = (await response.json())["data"]["id"]
    job = await wait_job(client, user, job_id, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    captions = job["result"]["captions"]
    assert captions == {
        "srt": f"/api/v1/videos/{job_id}/captions.srt",
        "vtt": f"/api/v1/videos/{job_id}/captions.vtt",
    }
    vtt = await client.get(captions["vtt"], headers=user.headers)
    assert vtt.status == 200
    assert vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    assert (await vtt.text()).startswith("WEBVTT") and "First card." in await vtt.text()
    file_id = job["result"]["file_id"]
    srt = await client.get(f"/api/v1/files/{file_id}/captions.srt", headers=user.headers)
    assert srt.status == 200 and "Second card, last." in await srt.text()
