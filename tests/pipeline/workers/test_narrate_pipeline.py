"""The narrate stage through the real broker, real worker processes and real engines."""

from __future__ import annotations

import asyncio
import signal

import psutil

from tests.pipeline.workers.test_video_pipeline import wait_job
from tests.support.polling import until

QUEUES = ["parse", "narrate", "storyboard", "render", "thumbnails"]
SCRIPT = "# Hello\nThis video speaks. It has two sentences.\n\n[silent]\nA quiet card.\n\nThe end."


async def _tts_keys(client) -> list[str]:
    from api.keys import STORAGE

    return sorted([i.key async for i in client.app[STORAGE].list("tts/")])


async def _logs(client, user, job_id: str) -> list[dict]:
    body = await (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=user.headers)).json()
    return body["data"]["logs"]


async def _submit(client, user, script: str, **options) -> str:
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": script, "quality": "480p", **options},
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    return (await response.json())["data"]["id"]


async def _wait_stage(client, user, job_id: str, stage: str) -> dict:
    async def reached() -> dict | None:
        job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())[
            "data"
        ]
        if job["current_stage"] == stage:
            return job
        assert job["status"] in ("queued", "processing"), job
        return None

    return await until(reached, f"job {job_id} to reach {stage}", interval_s=0.05)


async def test_a_narrated_job_reuses_cached_speech(client, make_user, start_worker):
    user = await make_user()
    start_worker(QUEUES)
    job_id = await _submit(client, user, SCRIPT)
    job = await wait_job(client, user, job_id, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    keys = await _tts_keys(client)
    assert len(keys) == 2 * 3  # three sentences: a WAV and its words each
    messages = [e["message"] for e in await _logs(client, user, job_id)]
    assert any("3 synthesized, 0 from the cache" in m for m in messages), messages
    import json

    from api.keys import STORAGE

    board = json.loads(await client.app[STORAGE].get_bytes(f"storyboards/{job_id}.json"))
    assert [c["source_index"] for c in board["narration"]] == [0, 0, 2]
    assert all(c["words"] for c in board["narration"])

    second = await _submit(client, user, SCRIPT)
    job = await wait_job(client, user, second, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    messages = [e["message"] for e in await _logs(client, user, second)]
    assert any("0 synthesized, 3 from the cache" in m for m in messages), messages
    assert await _tts_keys(client) == keys


def _piper_children(worker_pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(worker_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if any("piper_child" in a for a in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


async def test_cancel_stops_synthesis(client, make_user, start_worker):
    user = await make_user()
    start_worker(["parse", "storyboard"])
    narrate = start_worker(["narrate"])
    script = "\n\n".join(
        f"Scene number {i} has a sentence for the voice to read." for i in range(60)
    )
    job_id = await _submit(client, user, script)
    await _wait_stage(client, user, job_id, "narrate")
    for _ in range(600):  # the engine child is up and speaking
        if _piper_children(narrate.pid):
            break
        await asyncio.sleep(0.05)
    assert _piper_children(narrate.pid)
    response = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=user.headers)
    assert response.status == 200
    await asyncio.sleep(2.0)
    assert _piper_children(narrate.pid) == []
    job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())["data"]
    assert job["status"] == "cancelled"
    assert job["storyboard"] is None


async def test_killed_narrate_worker_completes_without_duplicates(client, make_user, start_worker):
    user = await make_user()
    start_worker(["parse", "storyboard", "render", "thumbnails"])
    narrate = start_worker(["narrate"])
    script = "\n\n".join(f"Scene {i} is spoken once and only once." for i in range(12))
    job_id = await _submit(client, user, script)
    await _wait_stage(client, user, job_id, "narrate")
    for _ in range(600):
        if len(await _tts_keys(client)) >= 4:
            break
        await asyncio.sleep(0.05)
    narrate.kill(signal.SIGKILL)  # the whole process group, the engine child included
    narrate.process.wait()
    start_worker(["narrate"])
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=300)
    assert job["status"] == "completed", job["error"]
    keys = await _tts_keys(client)
    assert len(keys) == 2 * 12
    assert len({k.removesuffix(".wav").removesuffix(".json") for k in keys}) == 12


async def test_a_voice_sample_is_spoken_once_by_a_narrate_worker(client, make_user, start_worker):
    user = await make_user()
    start_worker(["narrate"])
    response = await client.get("/api/v1/voices/espeak-de/sample", headers=user.headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/wav"
    first = await response.read()
    assert first[:4] == b"RIFF" and len(first) > 10_000
    again = await client.get("/api/v1/voices/espeak-de/sample", headers=user.headers)
    assert await again.read() == first
    assert await _tts_keys(client) == ["tts/samples/espeak-de.wav"]
