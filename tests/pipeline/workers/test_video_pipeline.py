"""A script becomes a real MP4 through the real broker and worker processes."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import av
import m3u8

from t2m import queues
from t2m.scratch import scratch_root
from t2m.settings import Settings
from tests.samples import SCRIPTS
from tests.support import polling
from tests.support.jobs import submit_video

# The job's stages, and the package worker that follows a finished video.
VIDEO_QUEUES = [*queues.VIDEO_QUEUES, "package"]


async def wait_job(
    client, user, job_id: str, until: tuple[str, ...], timeout_s: float = 240
) -> dict:
    seen: list[int] = []

    async def reached() -> dict | None:
        body = await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json()
        job = body["data"]
        seen.append(job["progress"])
        return job if job["status"] in until else None

    job = await polling.until(
        reached, f"job {job_id} to be {' or '.join(until)}", timeout_s=timeout_s, interval_s=0.2
    )
    job["_progress_seen"] = seen
    return job


def scratch_dirs(settings: Settings, job_id: str) -> list[Path]:
    """The per-attempt scratch directories the render and thumbnail stages used."""
    return list(scratch_root(settings).glob(f"*{job_id}*"))


def top_level_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


async def test_sample_script_becomes_a_video(client, make_user, start_worker):
    user = await make_user()
    start_worker(VIDEO_QUEUES)
    request = {
        "json": {
            "script": (SCRIPTS / "sample_video_script.txt").read_text(),
            "title": "Product tour",
            "quality": "480p",
            "duration": 12,
            "narration": "none",
        },
        "headers": {**user.headers, "Idempotency-Key": "tour-1"},
    }
    response = await client.post("/api/v1/videos/generate", **request)
    assert response.status == 202, await response.text()
    job_id = (await response.json())["data"]["id"]
    # The same request again, with the same key: the same job.
    again = await client.post("/api/v1/videos/generate", **request)
    assert again.status == 200
    assert (await again.json())["data"]["id"] == job_id

    job = await wait_job(client, user, job_id, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    progress = job["_progress_seen"]
    assert progress == sorted(progress)  # never goes backwards
    storyboard = job["storyboard"]
    assert storyboard["scenes"] >= 5
    assert abs(storyboard["duration_s"] - 12) < 0.5
    result = job["result"]
    assert result["renditions"] == ["480p"]

    response = await client.get(f"/api/v1/videos/{job_id}/download", headers=user.headers)
    assert response.status == 200
    data = await response.read()
    boxes = top_level_boxes(data)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    with av.open(io.BytesIO(data), "r") as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert (video.codec_context.width, video.codec_context.height) == (854, 480)
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate is not None and container.duration is not None
        assert round(float(video.average_rate)) == 30
        duration = float(container.duration) / av.time_base
        assert abs(duration - storyboard["duration_s"]) <= 0.1

    meta = (
        await (await client.get(f"/api/v1/videos/{job_id}/metadata", headers=user.headers)).json()
    )["data"]
    assert meta["video"]["codec"] == "h264"
    assert meta["video"]["width"] == 854
    response = await client.get(
        f"/api/v1/videos/{job_id}/thumbnail?size=large", headers=user.headers
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/jpeg"

    # The video is an ordinary file of the user's on both surfaces.
    file_id = result["file_id"]
    listing = await (await client.get("/api/v1/files?file_type=video", headers=user.headers)).json()
    assert [f["id"] for f in listing["data"]["items"]] == [file_id]
    response = await client.get(
        f"/stream/{file_id}", headers={**user.headers, "Range": "bytes=0-99"}
    )
    assert response.status == 206

    logs = (await (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=user.headers)).json())[
        "data"
    ]
    messages = [entry["message"] for entry in logs["logs"]]
    assert messages[0] == "Job queued"
    assert messages[-1] == "Video ready"
    response = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=user.headers)
    assert response.status == 409

    # After the job: the package worker's HLS tree, re-using the 480p encode.
    async def packaged() -> m3u8.M3U8 | None:
        response = await client.get(
            f"/api/v1/videos/{job_id}/hls/master.m3u8", headers=user.headers
        )
        return m3u8.loads(await response.text()) if response.status == 200 else None

    master = await polling.until(packaged, "the HLS master playlist", interval_s=0.2)
    assert [p.uri for p in master.playlists] == ["480p/index.m3u8"]
    assert master.playlists[0].stream_info.resolution == (854, 480)
    assert master.playlists[0].stream_info.frame_rate == 30.0


async def test_cancel_stops_a_running_render(client, make_user, start_worker, settings):
    user = await make_user()
    start_worker(VIDEO_QUEUES)
    script = (SCRIPTS / "long_60_scenes.txt").read_text()
    job_id = await submit_video(client, user, script=script, quality="720p", narration="none")

    async def rendering() -> bool:
        job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())[
            "data"
        ]
        assert job["status"] in ("queued", "processing"), job
        return job["current_stage"] == "render" and job["progress"] > 10

    await polling.until(rendering, "the render past 10 %", interval_s=0.1)
    response = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=user.headers)
    assert response.status == 200
    assert (await response.json())["data"]["status"] == "cancelled"
    # The render really stops: its ffmpeg child is gone within 2 s.
    import psutil

    await asyncio.sleep(2.0)
    ffmpegs = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if "ffmpeg" in (p.info["name"] or "") and any(job_id in a for a in p.info["cmdline"] or [])
    ]
    assert ffmpegs == []
    job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())["data"]
    assert job["status"] == "cancelled"
    from api.keys import STORAGE

    assert [i.key async for i in client.app[STORAGE].list(f"videos/{job_id}/")] == []
    assert scratch_dirs(settings, job_id) == []


async def test_bad_generate_requests(client, make_user):
    user = await make_user()
    cases = [
        ({}, "script"),
        ({"script": "x", "quality": "4k"}, "quality"),
        ({"script": "x", "aspect": "4:3"}, "aspect"),
        ({"script": "x", "duration": -1}, "duration"),
        ({"script": "x", "subtitles": "maybe"}, "subtitles"),
        ({"script": "x", "assets": ["file_" + "0" * 24]}, "assets"),
        ({"script": "x", "style": {"text_color": "red"}}, "style"),
        ({"script": "x", "webhook_url": "ftp://example.com/hook"}, "webhook_url"),
        ({"script": "x" * (100 * 1024 + 1)}, "script"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/videos/generate", json=body, headers=user.headers)
        assert response.status == 400, (body, await response.text())
        assert field in (await response.json())["error"]["details"], body
    doc = await client.post(
        "/upload",
        data={"file": io.BytesIO(b"just text\n")},
        headers=user.headers,
    )
    doc_id = (await doc.json())["content_id"]
    response = await client.post(
        "/api/v1/videos/generate", json={"script": "x", "assets": [doc_id]}, headers=user.headers
    )
    assert response.status == 400
    assert "assets" in (await response.json())["error"]["details"]


async def test_killed_render_worker_is_redelivered_and_completes_once(
    client, make_user, start_worker, db, settings
):
    import signal

    user = await make_user()
    start_worker(["parse", "storyboard", "thumbnails"])
    render = start_worker(["render"])
    script = "\n\n".join(f"Scene {i}: a line of text for the card." for i in range(12))
    job_id = await submit_video(client, user, script=script, quality="720p", narration="none")

    async def rendering() -> dict | None:
        job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())[
            "data"
        ]
        return job if job["current_stage"] == "render" and job["progress"] >= 15 else None

    job = await polling.until(rendering, "the render at 15 %", interval_s=0.1)
    assert job["current_stage"] == "render", job
    render.kill(signal.SIGKILL)  # the whole process group, ffmpeg included
    render.process.wait()
    start_worker(["render"])  # the message comes back once the dead worker's lease lapses

    job = await wait_job(client, user, job_id, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    async with db.acquire() as conn:
        files = await conn.fetchval("SELECT count(*) FROM files WHERE job_id = $1", job_id)
    assert files == 1
    from api.keys import STORAGE

    keys = sorted([i.key async for i in client.app[STORAGE].list(f"videos/{job_id}/")])
    assert keys == [f"videos/{job_id}/{q}.mp4" for q in ("480p", "720p")]
    # The killed attempt's scratch space was cleared by the attempt that finished.
    assert scratch_dirs(settings, job_id) == []


async def test_a_plan_past_the_daily_render_quota_fails_before_rendering(
    client, make_user, start_worker
):
    """The worker's own check (the API's limit here is the suite's huge one):
    the storyboard knows the length, and the job fails there, never rendered."""
    user = await make_user()
    start_worker(["parse", "storyboard"], QUOTA_RENDER_SECONDS_PER_DAY="5")
    job_id = await submit_video(
        client,
        user,
        script="A first scene. A second scene.",
        quality="480p",
        duration=12,
        narration="none",
    )
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=120)
    assert job["status"] == "failed"
    assert "render quota" in job["error"]
    assert job["storyboard"] is None
    assert job["result"] is None


async def test_a_generated_video_gets_its_text_embedded_by_the_media_worker(
    client, make_user, start_worker, db
):
    user = await make_user()
    start_worker([*VIDEO_QUEUES, "media"])
    script = "A quiet harbour at dawn, fishing boats leaving for the open sea.\n"
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": script, "title": "Harbour", "quality": "480p", "duration": 4},
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    job = await wait_job(client, user, (await response.json())["data"]["id"], ("completed",))
    file_id = job["result"]["file_id"]
    vector = None
    for _ in range(600):  # the media worker embeds after the video is ready
        async with db.acquire() as conn:
            metadata = await conn.fetchval("SELECT metadata FROM files WHERE id = $1", file_id)
        vector = (metadata or {}).get("text_embedding")
        if vector is not None:
            break
        await asyncio.sleep(0.1)
    assert vector is not None, "the generated video was not embedded"
    assert len(vector) == 384
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-3  # a unit sentence vector
    assert "harbour" in metadata["script"].lower()  # the script text it describes
